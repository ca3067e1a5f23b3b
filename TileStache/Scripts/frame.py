"""Where an image of a given size sits in a tile grid: its zoom and top-left tile coordinate.

Like ModestMaps' mapByExtent / mapByCenterZoom (the largest whole zoom at
which the extent fits, centred), with a tolerance so that an extent exactly
covering whole tiles lands on their zoom despite floating point.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from ModestMaps.Core import Coordinate
from ModestMaps.Geo import Location


class Frame(NamedTuple):
    """An image of width x height pixels whose top-left corner is at (row, column) of a zoom."""

    zoom: int
    row: float
    column: float
    width: int
    height: int
    tile_size: int

    def tiles(self, columns: int | None = None, rows: int | None = None) -> list[Coordinate]:
        """The world's tiles (columns x rows grid; None: a grid without edges) the image overlaps, row by row."""
        ts = self.tile_size
        col0, row0 = math.floor(self.column + 1e-9), math.floor(self.row + 1e-9)
        col1 = math.ceil(self.column + self.width / ts - 1e-9)
        row1 = math.ceil(self.row + self.height / ts - 1e-9)
        if columns is not None and rows is not None:
            col0, row0, col1, row1 = max(0, col0), max(0, row0), min(columns, col1), min(rows, row1)
        return [Coordinate(r, c, self.zoom) for r in range(row0, row1) for c in range(col0, col1)]

    def pixel(self, coord) -> tuple[int, int]:
        """Pixel position of a tile's top-left corner in the image."""
        return (round((coord.column - self.column) * self.tile_size),
                round((coord.row - self.row) * self.tile_size))

    def corners(self) -> tuple[Coordinate, Coordinate]:
        """Fractional tile coordinates of the image's top-left and bottom-right corners."""
        ts = self.tile_size
        return (Coordinate(self.row, self.column, self.zoom),
                Coordinate(self.row + self.height / ts, self.column + self.width / ts, self.zoom))


def _centered(center: Coordinate, zoom: int, width: int, height: int, tile_size: int) -> Frame:
    c = center.zoomTo(zoom)
    return Frame(zoom, c.row - height / 2 / tile_size, c.column - width / 2 / tile_size,
                 width, height, tile_size)


def frame_by_extent(projection, width: int, height: int, north: float, west: float, south: float,
                    east: float, tile_size: int = 256, zoom_range: tuple[int, int] = (0, 31)) -> Frame:
    """The frame at the deepest zoom (within zoom_range) where the extent fits in the image, centred."""
    a = projection.locationCoordinate(Location(north, west)).zoomTo(0)
    b = projection.locationCoordinate(Location(south, east)).zoomTo(0)
    span_c, span_r = abs(b.column - a.column), abs(b.row - a.row)
    fits = []
    if span_c > 0:
        fits.append(math.log2(width / tile_size / span_c))
    if span_r > 0:
        fits.append(math.log2(height / tile_size / span_r))
    zoom = math.floor(min(fits) + 1e-9) if fits else zoom_range[1]
    zoom = max(zoom_range[0], min(zoom_range[1], zoom))
    center = Coordinate((a.row + b.row) / 2, (a.column + b.column) / 2, 0)
    return _centered(center, zoom, width, height, tile_size)


def frame_by_center(projection, width: int, height: int, lat: float, lon: float, zoom: int,
                    tile_size: int = 256) -> Frame:
    """The frame centred on a location at a zoom."""
    return _centered(projection.locationCoordinate(Location(lat, lon)), int(zoom), width, height, tile_size)


def frame_by_extent_zoom(projection, north: float, west: float, south: float, east: float, zoom: int,
                         tile_size: int = 256) -> Frame:
    """The frame covering exactly the extent at a zoom, at whatever pixel size that takes."""
    a = projection.locationCoordinate(Location(north, west)).zoomTo(zoom)
    b = projection.locationCoordinate(Location(south, east)).zoomTo(zoom)
    width = max(1, int((b.column - a.column) * tile_size))
    height = max(1, int((b.row - a.row) * tile_size))
    return Frame(int(zoom), a.row, a.column, width, height, tile_size)
