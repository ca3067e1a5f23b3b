"""Projections and tile math for the layers' tile grids.

The projections are ModestMaps projections (they do the tile arithmetic),
with the extra methods TileStache needs to talk in projected units:
``coordinateProj``, ``projCoordinate``, ``locationProj``, ``projLocation``.
"""
from __future__ import annotations

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


def grid_size(projection: object, zoom: int) -> tuple[int, int]:
    """Columns and rows of the world at a zoom, for any projection (square by default)."""
    sizer = getattr(projection, "grid_size", None)
    return sizer(zoom) if sizer else (2 ** zoom, 2 ** zoom)


def getProjectionByName(name: str) -> object:
    """A projection from its name ("spherical mercator", "WGS84") or "Module:Object[()]"."""
    key = name.strip().lower()
    if key in ("spherical mercator", "mercator", "epsg:3857", "epsg:900913"):
        return SphericalMercator()
    if key in ("wgs84", "epsg:4326"):
        return WGS84()
    if ":" not in name:
        raise ValueError(f"unknown projection {name!r}: use 'spherical mercator', 'WGS84' or 'Module:Object'")
    module_name, _, attr = name.partition(":")
    call = attr.endswith("()")
    obj = getattr(importlib.import_module(module_name), attr[:-2] if call else attr)
    return obj() if call else obj
