"""tilestache-clean: remove the tiles of a selection from a layer's cache."""
from __future__ import annotations

import argparse
import logging
import sys

from .common import (EXIT_OK, add_config_options, add_selection_options, check_extension, load_layer,
                     run, selected_tiles, setup_logging)

log = logging.getLogger("tilestache-clean")


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-clean."""
    p = argparse.ArgumentParser(prog="tilestache-clean",
                                description="Remove the tiles of a selection (bbox and zooms, or a tile list) "
                                            "from a layer's cache.",
                                epilog="example: tilestache-clean -c tilestache.cfg -l osm -b 37.7 -122.5 37.8 -122.3 10 11")
    add_config_options(p)
    add_selection_options(p)
    p.add_argument("-e", "--extension", default="png", help="tile extension (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-clean; returns the exit code."""
    return run("tilestache-clean", _main, argv)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.quiet)
    config, layer = load_layer(args.config, args.layer)
    format = check_extension(layer, args.extension)
    tiles = selected_tiles(args, layer.projection, layer.zoom_range())
    count = 0
    for coord in tiles:
        config.cache.remove(layer, coord, format)
        count += 1
    if not args.quiet:
        print(f"tilestache-clean: removed {count} tiles of {args.layer}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
