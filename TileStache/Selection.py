"""Which tiles a command-line tool works on, and how they group into metatiles.

A selection is a bounding box and zoom levels (optionally padded by whole
tiles), a list of ``z/x/y`` lines, a coverage polygon from a GeoJSON file, or
a box and a polygon together. Everything here is plain tile math: nothing
renders and nothing touches a cache.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ModestMaps.Core import Coordinate
from ModestMaps.Geo import Location

from .Geography import grid_size

# Deepest zoom level any selection may name.
MAX_ZOOM = 31


class SelectionError(ValueError):
    """A selection that makes no sense (bad box, zoom or tile line); its message names the problem."""


class BBox(NamedTuple):
    """A geographic box in degrees, in the original's argument order."""

    south: float
    west: float
    north: float
    east: float


def world_bbox(projection) -> BBox | None:
    """The whole world a projection's tile grid covers, in degrees; None for a grid without edges."""
    grid = grid_size(projection, 0)
    if grid is None:
        return None
    columns, rows = grid
    nw = projection.coordinateLocation(Coordinate(0, 0, 0))
    se = projection.coordinateLocation(Coordinate(rows, columns, 0))
    return BBox(se.lat, nw.lon, nw.lat, se.lon)


def whole_world(projection) -> BBox:
    """The world of a projection's grid, or SelectionError for a grid without edges."""
    world = world_bbox(projection)
    if world is None:
        raise SelectionError("this layer's grid has no world edges: give a bounding box")
    return world


def check_bbox(projection, bbox: BBox) -> BBox:
    """The box itself, or SelectionError when it is upside down or outside the projection's world."""
    south, west, north, east = bbox
    if any(math.isnan(v) or math.isinf(v) for v in bbox):
        raise SelectionError("bounding box values must be finite numbers")
    if south > north:
        raise SelectionError(f"bounding box south ({south}) is above north ({north})")
    if west > east:
        raise SelectionError(f"bounding box west ({west}) is east of east ({east})")
    world = world_bbox(projection)
    slack = 1e-6
    if world is not None and (south < world.south - slack or north > world.north + slack
            or west < world.west - slack or east > world.east + slack):
        raise SelectionError(
            f"bounding box {south} {west} {north} {east} is outside the projection's world "
            f"({world.south:.6f} {world.west:.6f} {world.north:.6f} {world.east:.6f})")
    return BBox(*bbox)


def check_zooms(zooms: Iterable[int], low: int = 0, high: int = MAX_ZOOM) -> list[int]:
    """Zoom levels sorted and deduplicated, or SelectionError when one is outside low..high."""
    result = sorted({int(z) for z in zooms})
    for zoom in result:
        if zoom < low or zoom > high:
            raise SelectionError(f"zoom {zoom} is outside the layer's zoom range {low}..{high}")
    return result


def bbox_tile_range(projection, bbox: BBox, zoom: int, padding: int = 0) -> tuple[int, int, int, int]:
    """(min column, min row, max column, max row), inclusive, of the tiles a box touches at a zoom."""
    south, west, north, east = bbox
    corners = [projection.locationCoordinate(Location(lat, lon)).zoomTo(zoom)
               for lat, lon in ((north, west), (south, east), (north, east), (south, west))]
    low_column, high_column = min(c.column for c in corners), max(c.column for c in corners)
    low_row, high_row = min(c.row for c in corners), max(c.row for c in corners)
    col0, row0 = math.floor(low_column + 1e-9), math.floor(low_row + 1e-9)
    col1 = max(col0, math.ceil(high_column - 1e-9) - 1)
    row1 = max(row0, math.ceil(high_row - 1e-9) - 1)
    col0, row0, col1, row1 = col0 - padding, row0 - padding, col1 + padding, row1 + padding
    grid = grid_size(projection, zoom)
    if grid is None:
        return col0, row0, col1, row1
    return max(0, col0), max(0, row0), min(grid[0] - 1, col1), min(grid[1] - 1, row1)


def bbox_tiles(projection, bbox: BBox, zooms: Iterable[int], padding: int = 0) -> Iterator[Coordinate]:
    """Every tile a box touches at each zoom, padded by whole tiles, row by row."""
    for zoom in zooms:
        col0, row0, col1, row1 = bbox_tile_range(projection, bbox, zoom, padding)
        for row in range(row0, row1 + 1):
            for column in range(col0, col1 + 1):
                yield Coordinate(row, column, zoom)


def parse_tile_list(lines: Iterable[str], source: str = "tile list") -> list[Coordinate]:
    """Coordinates from ``z/x/y`` lines (an extension is allowed; blank and # lines are skipped)."""
    coords = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.rsplit(".", 1)[0].split("/") if "." in text.rsplit("/", 1)[-1] else text.split("/")
        try:
            zoom, column, row = (int(p) for p in parts)
        except ValueError:
            raise SelectionError(f"{source} line {number}: expected z/x/y, got {text!r}") from None
        coords.append(Coordinate(row, column, zoom))
    return coords


def load_coverage(path: str):
    """A prepared shapely geometry (degrees) from a GeoJSON geometry, Feature or FeatureCollection."""
    try:
        import shapely
        from shapely.geometry import shape
    except ModuleNotFoundError:
        raise SelectionError("--coverage needs shapely: pip install 'TileStache[vector]'") from None
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except OSError as error:
        raise SelectionError(f"cannot read coverage {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise SelectionError(f"coverage {path} is not valid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise SelectionError(f"coverage {path} is not a GeoJSON object")
    if data.get("type") == "FeatureCollection":
        geometries = [f.get("geometry") for f in data.get("features", [])]
    elif data.get("type") == "Feature":
        geometries = [data.get("geometry")]
    else:
        geometries = [data]
    try:
        shapes = [shape(g) for g in geometries if g]
    except (AttributeError, TypeError, ValueError, shapely.errors.GeometryTypeError) as error:
        raise SelectionError(f"coverage {path}: bad geometry: {error}") from None
    if not shapes:
        raise SelectionError(f"coverage {path} has no geometry")
    union = shapely.union_all(shapes)
    shapely.prepare(union)
    return union


def _tile_box(projection, coord: Coordinate):
    import shapely

    nw = projection.coordinateLocation(coord)
    se = projection.coordinateLocation(Coordinate(coord.row + 1, coord.column + 1, coord.zoom))
    return shapely.box(min(nw.lon, se.lon), min(nw.lat, se.lat), max(nw.lon, se.lon), max(nw.lat, se.lat))


def touches_area(geometry, box) -> bool:
    """True when a tile box shares more than a boundary with the coverage geometry."""
    return geometry.intersects(box) and not geometry.touches(box)


def coverage_tiles(projection, geometry, zooms: Iterable[int]) -> Iterator[Coordinate]:
    """Tiles touching a coverage geometry at each zoom, found by descending from zoom 0."""
    wanted = sorted(set(zooms))
    if not wanted:
        return
    grid = grid_size(projection, 0)
    if grid is None:  # no world to descend from: the tiles of the geometry's box, kept if they touch it
        west, south, east, north = geometry.bounds
        for zoom in wanted:
            col0, row0, col1, row1 = bbox_tile_range(projection, BBox(south, west, north, east), zoom)
            yield from (Coordinate(r, c, zoom) for r in range(row0, row1 + 1) for c in range(col0, col1 + 1)
                        if touches_area(geometry, _tile_box(projection, Coordinate(r, c, zoom))))
        return
    columns, rows = grid
    level = [Coordinate(r, c, 0) for r in range(rows) for c in range(columns)]
    for zoom in range(0, wanted[-1] + 1):
        level = [c for c in level if touches_area(geometry, _tile_box(projection, c))]
        if zoom in wanted:
            yield from sorted(level, key=lambda c: (c.row, c.column))
        level = [Coordinate(c.row * 2 + dr, c.column * 2 + dc, zoom + 1)
                 for c in level for dr in (0, 1) for dc in (0, 1)]


def select_tiles(projection, zooms: Iterable[int], bbox: BBox | None = None, padding: int = 0,
                 coverage=None) -> Iterator[Coordinate]:
    """Tiles of a box (default: the world) at zooms, kept to a coverage geometry when given."""
    zooms = list(zooms)
    if coverage is None:
        yield from bbox_tiles(projection, bbox or whole_world(projection), zooms, padding)
        return
    ranges = {z: bbox_tile_range(projection, bbox, z, padding) for z in zooms} if bbox else None
    for coord in coverage_tiles(projection, coverage, zooms):
        if ranges is not None:
            col0, row0, col1, row1 = ranges[coord.zoom]
            if not (col0 <= coord.column <= col1 and row0 <= coord.row <= row1):
                continue
        yield coord


def group_by_metatile(metatile, coords: Iterable[Coordinate]) -> list[Coordinate]:
    """The first (top-left) coordinate of each metatile the tiles fall in, in first-seen order."""
    seen: dict[tuple[int, int, int], Coordinate] = {}
    for coord in coords:
        first = metatile.firstCoord(coord)
        key = (int(first.zoom), int(first.column), int(first.row))
        if key not in seen:
            seen[key] = first
    return list(seen.values())


def metatile_tiles(layer, first: Coordinate) -> list[Coordinate]:
    """Every tile of a layer's metatile starting at first, clipped to the world grid."""
    return layer.metatile.allCoords(first, grid_size(layer.projection, int(first.zoom)))


def tile_name(coord) -> str:
    """``z/x/y`` of a coordinate."""
    return f"{int(coord.zoom)}/{int(coord.column)}/{int(coord.row)}"


def bbox_metatiles(projection, metatile, bbox: BBox | None, zooms: Iterable[int],
                   padding: int = 0) -> Iterator[Coordinate]:
    """First coordinates of the metatiles holding a box's (padded) tiles, without listing the tiles.

    Memory stays flat however many tiles the box covers.
    """
    bbox = bbox or whole_world(projection)
    for zoom in zooms:
        yield from window_metatiles(metatile, zoom, bbox_tile_range(projection, bbox, zoom, padding))


def window_metatiles(metatile, zoom: int, window: tuple[int, int, int, int]) -> Iterator[Coordinate]:
    """First coordinates of the metatiles holding a window's tiles (min col, min row, max col, max row)."""
    col0, row0, col1, row1 = window
    for row in range(row0 // metatile.rows * metatile.rows, row1 + 1, metatile.rows):
        for column in range(col0 // metatile.columns * metatile.columns, col1 + 1, metatile.columns):
            yield Coordinate(row, column, zoom)


def expand_to_zooms(coords: Iterable[Coordinate], zooms: Iterable[int]) -> Iterator[Coordinate]:
    """The tiles covering each listed tile at each zoom: its ancestor above, itself, its descendants below.

    This turns an expire list (e.g. osm2pgsql's, all at one zoom) into the
    tiles to refresh at the zooms asked for.
    """
    zooms = sorted(set(zooms))
    for coord in coords:
        zoom, column, row = int(coord.zoom), int(coord.column), int(coord.row)
        for target in zooms:
            if target <= zoom:
                shift = zoom - target
                yield Coordinate(row >> shift, column >> shift, target)
                continue
            scale = 1 << (target - zoom)
            for r in range(row * scale, (row + 1) * scale):
                for c in range(column * scale, (column + 1) * scale):
                    yield Coordinate(r, c, target)


def root_zoom(zooms: list[int], levels: int) -> int:
    """The zoom of a seeding job's sub-pyramid roots: ``levels`` zooms up from its deepest zoom."""
    return max(min(zooms), max(zooms) - levels + 1)


def pyramid_root(metatile, first: Coordinate, root: int) -> tuple[int, int, int]:
    """(zoom, column, row) of the metatile at zoom ``root`` whose tiles hold a deeper metatile's first tile."""
    shift = int(first.zoom) - root
    ancestor = metatile.firstCoord(Coordinate(int(first.row) >> shift, int(first.column) >> shift, root))
    return root, int(ancestor.column), int(ancestor.row)


def metatile_size(layer, first: Coordinate) -> int:
    """How many tiles the layer's metatile starting at first holds, clipped to the world grid."""
    return len(metatile_tiles(layer, first))
