"""Projections and tile math for the layers' tile grids.

The projections are ModestMaps projections (they do the tile arithmetic),
with the extra methods TileStache needs to talk in projected units:
``coordinateProj``, ``projCoordinate``, ``locationProj``, ``projLocation``.
"""
from __future__ import annotations

import ast
import importlib
import math

from ModestMaps.Core import Coordinate, Point
from ModestMaps.Geo import LinearProjection, Location, MercatorProjection, deriveTransformation

# Half the circumference of the spherical-mercator world, in metres.
MERCATOR_HALF_WORLD = math.pi * 6378137


class SphericalMercator(MercatorProjection):
    """Spherical mercator (EPSG:3857), the OSM/Google tile layout: one tile at zoom 0."""

    srs = "+proj=merc +a=6378137 +b=6378137 +lat_ts=0.0 +lon_0=0.0 +x_0=0.0 +y_0=0 +k=1.0 +units=m +nadgrids=@null +no_defs"
    name = "spherical mercator"

    def __init__(self) -> None:
        pi = math.pi
        t = deriveTransformation(-pi, pi, 0, 0, pi, pi, 1, 0, -pi, -pi, 0, 1)
        MercatorProjection.__init__(self, 0, t)

    def coordinateProj(self, coord: Coordinate) -> Point:
        """Top-left corner of a tile coordinate, in metres."""
        scale = 2 * MERCATOR_HALF_WORLD / 2 ** coord.zoom
        return Point(coord.column * scale - MERCATOR_HALF_WORLD, MERCATOR_HALF_WORLD - coord.row * scale)

    def projCoordinate(self, point: Point, zoom: float = 0) -> Coordinate:
        """Tile coordinate (fractional) of a point in metres, at a zoom level."""
        scale = 2 * MERCATOR_HALF_WORLD / 2 ** zoom
        return Coordinate((MERCATOR_HALF_WORLD - point.y) / scale, (point.x + MERCATOR_HALF_WORLD) / scale, zoom)

    def locationProj(self, location: Location) -> Point:
        """A latitude/longitude in metres."""
        return self.coordinateProj(self.locationCoordinate(location))

    def projLocation(self, point: Point) -> Location:
        """A point in metres as latitude/longitude."""
        return self.coordinateLocation(self.projCoordinate(point))

    def grid_size(self, zoom: int) -> tuple[int, int]:
        """Number of (columns, rows) of tiles covering the world at a zoom."""
        return 2 ** zoom, 2 ** zoom


class WGS84(LinearProjection):
    """Unprojected longitude/latitude (EPSG:4326): two tiles side by side at zoom 0."""

    srs = "+proj=longlat +ellps=WGS84 +datum=WGS84 +no_defs"
    name = "WGS84"

    def __init__(self) -> None:
        pi = math.pi
        t = deriveTransformation(-pi, pi / 2, 0, 0, pi, pi / 2, 2, 0, -pi, -pi / 2, 0, 1)
        LinearProjection.__init__(self, 0, t)

    def coordinateProj(self, coord: Coordinate) -> Point:
        """Top-left corner of a tile coordinate, in degrees (x=lon, y=lat)."""
        scale = 180.0 / 2 ** coord.zoom
        return Point(coord.column * scale - 180.0, 90.0 - coord.row * scale)

    def projCoordinate(self, point: Point, zoom: float = 0) -> Coordinate:
        """Tile coordinate (fractional) of a point in degrees, at a zoom level."""
        scale = 180.0 / 2 ** zoom
        return Coordinate((90.0 - point.y) / scale, (point.x + 180.0) / scale, zoom)

    def locationProj(self, location: Location) -> Point:
        """A latitude/longitude as a point (x=lon, y=lat)."""
        return Point(location.lon, location.lat)

    def projLocation(self, point: Point) -> Location:
        """A point (x=lon, y=lat) as a latitude/longitude."""
        return Location(point.y, point.x)

    def grid_size(self, zoom: int) -> tuple[int, int]:
        """Number of (columns, rows) of tiles covering the world at a zoom."""
        return 2 ** (zoom + 1), 2 ** zoom


def grid_size(projection: object, zoom: int) -> tuple[int, int] | None:
    """Columns and rows of the world at a zoom (square by default), or None for a grid without
    world limits (e.g. a Proj4Projection), where any whole column and row, negative too, is a tile."""
    sizer = getattr(projection, "grid_size", None)
    return sizer(zoom) if sizer else (2 ** zoom, 2 ** zoom)


def getProjectionByName(name: str) -> object:
    """A projection from its name ("spherical mercator", "WGS84"), "Module:Expression" or "module.Object".

    The expression is a name in the module, or a call of one with literal arguments and calls of
    other names of the module, as in the original's
    ``Module:Proj4Projection('+proj=...', [8192, 4096], transformation=Transformation(1, 0, 0, 0, -1, 0))``.
    """
    key = name.strip().lower()
    if key in ("spherical mercator", "mercator", "epsg:3857", "epsg:900913"):
        return SphericalMercator()
    if key in ("wgs84", "epsg:4326"):
        return WGS84()
    if ":" not in name and "." in name:  # the original's older "package.module.Object" form
        module_name, _, attribute = name.strip().rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except ImportError as error:
            raise ValueError(f"cannot import {module_name}: {error}") from None
        except AttributeError:
            raise ValueError(f"{module_name} has no {attribute!r}") from None
    if ":" not in name:
        raise ValueError(f"unknown projection {name!r}: use 'spherical mercator', 'WGS84' or 'Module:Object'")
    module_name, _, expression = name.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
    except ImportError as error:
        raise ValueError(f"cannot import {module_name.strip()}: {error}") from None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"cannot read projection {expression.strip()!r}: {error.msg}") from None
    return _evaluate(tree.body, vars(module), expression.strip())


def _evaluate(node: ast.AST, names: dict, text: str) -> object:
    """The value of a literal, a module name, or a call of a module name with such arguments."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_evaluate(each, names, text) for each in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        return {_evaluate(k, names, text): _evaluate(v, names, text) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, names, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ValueError(f"{node.id} is not a name in the projection's module")
        return names[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        function = _evaluate(node.func, names, text)
        args = [_evaluate(each, names, text) for each in node.args]
        kwargs = {each.arg: _evaluate(each.value, names, text) for each in node.keywords if each.arg}
        try:
            return function(*args, **kwargs)
        except Exception as error:
            raise ValueError(f"{node.func.id}(...) failed: {error}") from None
    raise ValueError(f"projection {text!r}: only names, literals and calls are allowed")
