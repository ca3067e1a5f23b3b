"""tilestache-list: print the z/x/y of every tile a selection covers, or of an MBTiles file's or PMTiles
archive's tiles."""
from __future__ import annotations

import argparse
import os
import sys

from ..Errors import ConfigError
from ..Geography import SphericalMercator
from ..MBTiles import list_tiles
from ..PMTiles import open_archive, stored_tiles
from ..Selection import MAX_ZOOM, tile_name
from .common import EXIT_OK, UsageError, add_selection_options, load_layer, run, selected_metatiles, selected_tiles


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-list."""
    p = argparse.ArgumentParser(prog="tilestache-list", usage="%(prog)s [options] [zoom...]",
                                description="Print z/x/y of each tile of a bounding box at zoom levels "
                                            "(spherical mercator, or a layer's projection and zoom range), "
                                            "in the form tilestache-seed --tile-list reads.",
                                epilog="example: tilestache-list -b 52.55 13.28 52.46 13.51 11 12 13")
    add_selection_options(p)
    p.add_argument("--from-mbtiles", metavar="FILE",
                   help="print the tiles stored in this MBTiles file instead (overrides --bbox and --padding)")
    p.add_argument("--from-pmtiles", metavar="FILE",
                   help="print the tiles stored in this PMTiles archive instead, in tile-id order "
                        "(overrides --bbox and --padding)")
    p.add_argument("-c", "--config", help="TileStache configuration file (with --layer)")
    p.add_argument("-l", "--layer", help="use this layer's projection, zoom range and bounds")
    p.add_argument("--metatiles", action="store_true",
                   help="print only the first tile of each of the layer's metatiles")
    return p


def archive_tiles(archive):
    """The archive's tiles as they are read (memory stays flat); an unreadable directory is a UsageError."""
    try:
        yield from stored_tiles(archive)
    except ConfigError as error:
        raise UsageError(f"--from-pmtiles: {error}") from None


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-list; returns the exit code."""
    return run("tilestache-list", _main, argv)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    if bool(args.config) != bool(args.layer):
        raise UsageError("--config and --layer go together")
    if args.metatiles and not args.layer:
        raise UsageError("--metatiles needs --config and --layer")
    if args.from_mbtiles and args.from_pmtiles:
        raise UsageError("--from-mbtiles and --from-pmtiles can not be combined")
    if args.from_pmtiles:
        try:
            tiles = archive_tiles(open_archive(args.from_pmtiles, os.getcwd()))
        except ConfigError as error:
            raise UsageError(f"--from-pmtiles: {error}") from None
    elif args.from_mbtiles:
        if not os.path.isfile(args.from_mbtiles):
            raise UsageError(f"MBTiles file {args.from_mbtiles} does not exist")
        try:
            tiles = list_tiles(args.from_mbtiles)
        except ConfigError as error:
            raise UsageError(str(error)) from None
    elif args.layer:
        _, layer = load_layer(args.config, args.layer)
        if args.metatiles:
            tiles = selected_metatiles(args, layer)()
        else:
            tiles = (c for c in selected_tiles(args, layer.projection, layer.zoom_range()) if layer.in_bounds(c))
    else:
        tiles = selected_tiles(args, SphericalMercator(), (0, MAX_ZOOM))
    out = sys.stdout
    try:
        for coord in tiles:
            out.write(tile_name(coord) + "\n")
        out.flush()
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
