"""What the command-line tools share: selection options, loading a layer, usage errors."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from ..Config import buildConfiguration, read_config_file
from ..Errors import BadRequest, ConfigError
from ..Geography import grid_size
from ..Selection import (BBox, SelectionError, bbox_metatiles, bbox_tile_range, check_bbox, check_zooms,
                         expand_to_zooms, group_by_metatile, load_coverage, metatile_tiles, parse_tile_list,
                         select_tiles, whole_world)

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2

# The original's box when -b is not given: West Oakland, California (south west north east).
DEFAULT_BBOX = BBox(37.777, -122.352, 37.839, -122.226)

log = logging.getLogger("tilestache")


class UsageError(Exception):
    """Bad command-line input; the message names the problem and the tool exits with 2."""


def add_config_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """-c/--config and -l/--layer."""
    parser.add_argument("-c", "--config", required=required, help="TileStache configuration file")
    parser.add_argument("-l", "--layer", required=required, help="layer name in the configuration")


def add_include_path_option(parser: argparse.ArgumentParser, short: bool = True) -> None:
    """-i/--include-path: folders put first on sys.path, so plug-in classes named in a config load."""
    names = ("-i", "--include-path") if short else ("--include-path",)
    parser.add_argument(*names, dest="include_path", metavar="DIR[:DIR...]",
                        help="colon-separated folders to put first on Python's sys.path")


def apply_include_path(value: str | None) -> None:
    """Put each folder of a colon-separated list first on sys.path, in the original's order."""
    for folder in (value or "").split(":"):
        if folder:
            sys.path.insert(0, folder)


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """The options choosing tiles: bbox, padding, tile list, coverage, zoom levels."""
    parser.add_argument("-b", "--bbox", nargs=4, type=float, metavar=("SOUTH", "WEST", "NORTH", "EAST"),
                        help="bounding box in degrees, two opposite corners in either order "
                             "(default: %s %s %s %s, West Oakland, as the original)" % DEFAULT_BBOX)
    parser.add_argument("-p", "--padding", type=int, default=0,
                        help="extra tiles to add around the bounding box at each zoom (default: 0)")
    parser.add_argument("--tile-list", metavar="FILE",
                        help="file of z/x/y lines to use instead of the bounding box and padding; with zoom "
                             "levels it is an expire list: the tiles covering each listed tile at those zooms")
    parser.add_argument("--coverage", metavar="FILE.geojson",
                        help="only tiles touching the polygons of this GeoJSON file (degrees)")
    parser.add_argument("zooms", nargs="*", type=int, metavar="ZOOM", help="zoom levels")


def load_config(config_path: str) -> tuple[dict, object]:
    """(the config's JSON, the Configuration built from it), or UsageError naming the problem."""
    if not os.path.exists(config_path) and "://" not in config_path:
        raise UsageError(f"configuration file {config_path} does not exist")
    try:
        config_dict, dirpath = read_config_file(config_path)
        return config_dict, buildConfiguration(config_dict, dirpath)
    except ConfigError as error:
        raise UsageError(f"{config_path}: {error}") from None


def unknown_layer(config, layer_name: str, config_path: str) -> UsageError:
    """The usage error for a layer name the configuration does not have, listing the ones it has."""
    known = ", ".join(sorted(config.layers)) or "none"
    return UsageError(f"layer {layer_name!r} is not in {config_path} (layers: {known})")


def load_layer(config_path: str, layer_name: str):
    """(configuration, layer), or UsageError naming a missing config or an unknown layer."""
    _, config = load_config(config_path)
    if layer_name not in config.layers:
        raise unknown_layer(config, layer_name, config_path)
    return config, config.layers[layer_name]


def check_extension(layer, extension: str) -> str:
    """The layer's format name for an extension, or UsageError."""
    try:
        return layer.getTypeByExtension(extension)[1]
    except BadRequest as error:
        raise UsageError(str(error)) from None


class Selection(NamedTuple):
    """Validated selection options: a tile list, or zooms with an optional box, padding and coverage."""

    tiles: list | None
    zooms: list
    bbox: BBox | None
    padding: int
    coverage: object


def parse_selection(args, projection, zoom_range: tuple[int, int]) -> Selection:
    """Check the selection options (UsageError on bad input) and read a tile list or coverage file."""
    if args.padding < 0:
        raise UsageError("padding must not be negative")
    try:
        if args.tile_list:
            if args.coverage:
                raise UsageError("--tile-list can not be combined with --coverage")
            if args.bbox or args.padding:
                log.warning("--tile-list overrides --bbox and --padding")
            try:
                with open(args.tile_list, encoding="utf-8") as file:
                    coords = parse_tile_list(file, args.tile_list)
            except OSError as error:
                raise UsageError(f"cannot read tile list {args.tile_list}: {error.strerror}") from None
            if args.zooms:  # an expire list: refresh the tiles covering each listed one at these zooms
                zooms = check_zooms(args.zooms, *zoom_range)
                coords = list(expand_to_zooms(coords, zooms))
            for coord in coords:
                check_zooms([coord.zoom], *zoom_range)
                grid = grid_size(projection, int(coord.zoom))
                if grid is not None and not (0 <= coord.column < grid[0] and 0 <= coord.row < grid[1]):
                    raise UsageError(f"tile {coord.zoom}/{coord.column}/{coord.row} is outside the world")
            return Selection(coords, [], None, 0, None)
        if not args.zooms:
            raise UsageError("give at least one zoom level (or --tile-list)")
        zooms = check_zooms(args.zooms, *zoom_range)
        coverage = load_coverage(args.coverage) if args.coverage else None
        bbox = corners_bbox(args.bbox) if args.bbox else (None if coverage is not None else DEFAULT_BBOX)
        bbox = check_bbox(projection, bbox) if bbox else None
        return Selection(None, zooms, bbox, args.padding, coverage)
    except SelectionError as error:
        raise UsageError(str(error)) from None


def corners_bbox(values) -> BBox:
    """The box of two opposite corners (lat, lon, lat, lon) given in either order."""
    lat1, lon1, lat2, lon2 = values
    return BBox(min(lat1, lat2), min(lon1, lon2), max(lat1, lat2), max(lon1, lon2))


def selected_tiles(args, projection, zoom_range: tuple[int, int]) -> Iterable:
    """The tiles the selection options pick (validated now, generated as they are used)."""
    sel = parse_selection(args, projection, zoom_range)
    if sel.tiles is not None:
        return sel.tiles
    return select_tiles(projection, sel.zooms, sel.bbox, sel.padding, sel.coverage)


def selected_metatiles(args, layer) -> Callable[[], Iterator]:
    """A function giving, each time it is called, the first coordinates of the selection's metatiles.

    Metatiles without a selected tile inside the layer's bounds are left out. A
    plain box is walked metatile by metatile, so memory stays flat for any size.
    """
    sel = parse_selection(args, layer.projection, layer.zoom_range())
    if sel.tiles is not None or sel.coverage is not None:
        tiles = sel.tiles if sel.tiles is not None else select_tiles(
            layer.projection, sel.zooms, sel.bbox, sel.padding, sel.coverage)
        firsts = group_by_metatile(layer.metatile, (c for c in tiles if layer.in_bounds(c)))
        return lambda: iter(firsts)
    if layer.bounds is None:
        return lambda: bbox_metatiles(layer.projection, layer.metatile, sel.bbox, sel.zooms, sel.padding)
    bbox = sel.bbox or whole_world(layer.projection)

    def in_bounds() -> Iterator:
        for first in bbox_metatiles(layer.projection, layer.metatile, bbox, sel.zooms, sel.padding):
            if metatile_in_bounds(layer, first, bbox_tile_range(layer.projection, bbox, int(first.zoom),
                                                                sel.padding)):
                yield first
    return in_bounds


def metatile_in_bounds(layer, first, window: tuple[int, int, int, int]) -> bool:
    """True when one of the metatile's tiles inside the window (cols and rows, inclusive) is in the layer's bounds."""
    if layer.bounds is None:
        return True
    col0, row0, col1, row1 = window
    return any(layer.in_bounds(c) for c in metatile_tiles(layer, first)
               if col0 <= c.column <= col1 and row0 <= c.row <= row1)


def setup_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Log to stderr: warnings only when quiet, info normally, debug when verbose."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s: %(message)s", stream=sys.stderr)


def run(prog: str, body, argv) -> int:
    """Call body(argv) and turn a UsageError into a message on stderr and exit code 2."""
    try:
        return body(argv)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
