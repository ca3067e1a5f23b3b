"""Tile grids in any projection Proj can express: the original's Proj4Projection goodie, on pyproj.

A layer names it with the original's syntax::

    "projection": "TileStache.Goodies.Proj4Projection:Proj4Projection('+proj=tmerc +lat_0=0 +lon_0=15.80827777777778 +k=1 +x_0=1500000 +y_0=0 +ellps=bessel +units=m +no_defs', [8192, 4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1], transformation=Transformation(1, 0, 0, 0, -1, 0))"

``resolutions`` are projected units per pixel, zoom 0 first; one of them
must be 1 (the base zoom) and each should halve the one before, as tile
coordinates zoom by powers of two. The transformation maps projected
units, divided by a tile's size in them, to tile columns and rows: with
``Transformation(1, 0, 0, 0, -1, 0)`` the origin is the projection's (0, 0)
and rows grow southwards, so tile (column c, row r) at zoom z has its top-left
corner at x = c * size * res[z], y = -r * size * res[z]. Such a grid has no
world edges: any whole column or row, negative ones too, is a tile.
"""
from __future__ import annotations

from ModestMaps.Core import Coordinate, Point
from ModestMaps.Geo import LinearProjection, Location, Transformation
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from ..Errors import KnownUnknown

__all__ = ["Proj4Projection", "Transformation"]  # Transformation: for the config's expression

# How far (in tiles) a point may be from a tile corner and still count as on the grid.
GRID_THRESHOLD = 1e-3


class Proj4Projection(LinearProjection):
    """A tile grid in a Proj projection, with the zoom levels' resolutions and a tile size."""

    def __init__(self, srs: str, resolutions: list[float], tile_size: int = 256,
                 transformation: Transformation = Transformation(1, 0, 0, 0, 1, 0)) -> None:
        try:
            crs = CRS.from_user_input(srs)
        except CRSError as error:
            raise ValueError(f"Proj cannot read {srs!r}: {error}") from None
        if not resolutions or any(not isinstance(r, (int, float)) or r <= 0 for r in resolutions):
            raise ValueError("resolutions must be a list of positive numbers, zoom 0 first")
        if tile_size <= 0:
            raise ValueError("tile_size must be a positive number of pixels")
        self.srs = srs
        self.resolutions = [float(r) for r in resolutions]
        self.tile_size = int(tile_size)
        self.tile_dimensions = [self.tile_size * r for r in self.resolutions]
        try:
            self.base_zoom = self.resolutions.index(1.0)
        except ValueError:
            raise ValueError("no zoom level has resolution 1.0") from None
        self._forward = Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True)
        self._inverse = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
        self.name = f"Proj4Projection({srs})"
        LinearProjection.__init__(self, self.base_zoom, transformation)

    def grid_size(self, zoom: int) -> None:
        """None: the grid has no world edges."""
        return None

    def _dimension(self, zoom: float) -> float:
        if zoom != int(zoom) or not 0 <= zoom < len(self.tile_dimensions):
            raise KnownUnknown(f"zoom level {zoom} is outside the projection's {len(self.resolutions)} resolutions")
        return self.tile_dimensions[int(zoom)]

    def locationProj(self, location: Location) -> Point:
        """A latitude/longitude in projected units."""
        x, y = self._forward.transform(location.lon, location.lat)
        return Point(x, y)

    def projLocation(self, point: Point) -> Location:
        """A point in projected units as latitude/longitude."""
        lon, lat = self._inverse.transform(point.x, point.y)
        return Location(lat, lon)

    def coordinateProj(self, coord: Coordinate) -> Point:
        """Top-left corner of a tile coordinate, in projected units."""
        size = self._dimension(coord.zoom)
        point = self.transformation.untransform(Point(coord.column, coord.row))
        return Point(point.x * size, point.y * size)

    def projCoordinate(self, point: Point, zoom: int | None = None) -> Coordinate:
        """The tile coordinate whose corner is this point, at a zoom (the base zoom by default);
        KnownUnknown when the point is not on that zoom's grid."""
        zoom = self.base_zoom if zoom is None else zoom
        size = self._dimension(zoom)
        tile = self.transformation.transform(Point(point.x / size, point.y / size))
        row, column = round(tile.y), round(tile.x)
        if abs(tile.y - row) > GRID_THRESHOLD or abs(tile.x - column) > GRID_THRESHOLD:
            raise KnownUnknown(f"Point({point.x:f}, {point.y:f}) is not on the grid of zoom {zoom} "
                               f"(resolution {self.resolutions[int(zoom)]:f})")
        return Coordinate(int(row), int(column), zoom)

    def locationCoordinate(self, location: Location) -> Coordinate:
        """The (fractional) tile coordinate of a latitude/longitude, at the base zoom."""
        point = self.locationProj(location)
        size = self.tile_dimensions[self.zoom]
        tile = self.transformation.transform(Point(point.x / size, point.y / size))
        return Coordinate(tile.y, tile.x, self.zoom)

    def coordinateLocation(self, coord: Coordinate) -> Location:
        """The latitude/longitude of a tile coordinate's top-left corner."""
        if coord.zoom != int(coord.zoom) or not 0 <= coord.zoom < len(self.tile_dimensions):
            coord = coord.zoomTo(self.zoom)
        return self.projLocation(self.coordinateProj(coord))

    def findZoom(self, resolution: float) -> int:
        """The zoom level of a resolution; KnownUnknown when none has it."""
        try:
            return self.resolutions.index(float(resolution))
        except ValueError:
            raise KnownUnknown(f"no zoom level has resolution {resolution:f}") from None
