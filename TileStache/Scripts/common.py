"""What the command-line tools share: selection options, loading a layer, usage errors."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from .. import parseConfig
from ..Errors import BadRequest, ConfigError
from ..Geography import grid_size
from ..Selection import (BBox, SelectionError, bbox_metatiles, bbox_tile_range, check_bbox, check_zooms,
                         group_by_metatile, load_coverage, metatile_tiles, parse_tile_list, select_tiles,
                         world_bbox)

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input; the message names the problem and the tool exits with 2."""


def add_config_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """-c/--config and -l/--layer."""
    parser.add_argument("-c", "--config", required=required, help="TileStache configuration file")
    parser.add_argument("-l", "--layer", required=required, help="layer name in the configuration")


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """The options choosing tiles: bbox, padding, tile list, coverage, zoom levels."""
    parser.add_argument("-b", "--bbox", nargs=4, type=float, metavar=("SOUTH", "WEST", "NORTH", "EAST"),
                        help="bounding box in degrees (default: the whole world)")
    parser.add_argument("-p", "--padding", type=int, default=0,
                        help="extra tiles to add around the bounding box at each zoom (default: 0)")
    parser.add_argument("-i", "--tile-list", metavar="FILE",
                        help="file of z/x/y lines to use instead of a bounding box and zooms")
    parser.add_argument("--coverage", metavar="FILE.geojson",
                        help="only tiles touching the polygons of this GeoJSON file (degrees)")
    parser.add_argument("zooms", nargs="*", type=int, metavar="ZOOM", help="zoom levels")


def load_layer(config_path: str, layer_name: str):
    """(configuration, layer), or UsageError naming a missing config or an unknown layer."""
    if not os.path.exists(config_path) and "://" not in config_path:
        raise UsageError(f"configuration file {config_path} does not exist")
    try:
        config = parseConfig(config_path)
    except ConfigError as error:
        raise UsageError(f"{config_path}: {error}") from None
    if layer_name not in config.layers:
        known = ", ".join(sorted(config.layers)) or "none"
        raise UsageError(f"layer {layer_name!r} is not in {config_path} (layers: {known})")
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
            if args.bbox or args.zooms or args.coverage:
                raise UsageError("--tile-list can not be combined with --bbox, --coverage or zoom levels")
            try:
                with open(args.tile_list, encoding="utf-8") as file:
                    coords = parse_tile_list(file, args.tile_list)
            except OSError as error:
                raise UsageError(f"cannot read tile list {args.tile_list}: {error.strerror}") from None
            for coord in coords:
                check_zooms([coord.zoom], *zoom_range)
                columns, rows = grid_size(projection, int(coord.zoom))
                if not (0 <= coord.column < columns and 0 <= coord.row < rows):
                    raise UsageError(f"tile {coord.zoom}/{coord.column}/{coord.row} is outside the world")
            return Selection(coords, [], None, 0, None)
        if not args.zooms:
            raise UsageError("give at least one zoom level (or --tile-list)")
        zooms = check_zooms(args.zooms, *zoom_range)
        bbox = check_bbox(projection, BBox(*args.bbox)) if args.bbox else None
        coverage = load_coverage(args.coverage) if args.coverage else None
        return Selection(None, zooms, bbox, args.padding, coverage)
    except SelectionError as error:
        raise UsageError(str(error)) from None


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
    bbox = sel.bbox or world_bbox(layer.projection)

    def in_bounds() -> Iterator:
        for first in bbox_metatiles(layer.projection, layer.metatile, bbox, sel.zooms, sel.padding):
            col0, row0, col1, row1 = bbox_tile_range(layer.projection, bbox, int(first.zoom), sel.padding)
            if any(layer.in_bounds(c) for c in metatile_tiles(layer, first)
                   if col0 <= c.column <= col1 and row0 <= c.row <= row1):
                yield first
    return in_bounds


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
