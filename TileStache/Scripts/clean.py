"""tilestache-clean: remove the tiles of a selection from a layer's cache (or every layer's)."""
from __future__ import annotations

import argparse
import logging
import sys

from ..Errors import BadRequest
from ..Selection import tile_name
from .common import (EXIT_OK, UsageError, add_include_path_option, add_selection_options, apply_include_path,
                     load_config, run, selected_tiles, setup_logging, unknown_layer)
from .progress import Progress

log = logging.getLogger("tilestache-clean")

# -l ALL (or "ALL LAYERS", for when a layer is really called ALL) cleans every layer in turn,
# unless a layer has that very name.
ALL_LAYERS = ("ALL", "ALL LAYERS")


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-clean."""
    p = argparse.ArgumentParser(prog="tilestache-clean", usage="%(prog)s [options] [zoom...]",
                                description="Remove the tiles of a selection (bbox and zooms, or a tile list) "
                                            "from a layer's cache.",
                                epilog="example: tilestache-clean -c tilestache.cfg -l osm -b 37.7 -122.5 37.8 -122.3 10 11")
    p.add_argument("-c", "--config", required=True, help="TileStache configuration file")
    p.add_argument("-l", "--layer", required=True,
                   help='layer name in the configuration; "ALL" cleans every layer in turn (when a layer is '
                        'really named ALL, -l ALL cleans that one and "ALL LAYERS" cleans every layer)')
    add_selection_options(p)
    p.add_argument("-e", "--extension", default="png", help="tile extension (default: %(default)s)")
    p.add_argument("-f", "--progress-file", help="JSON file rewritten as tiles are removed: tile, offset, total")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    add_include_path_option(p)
    return p


def chosen_layers(config, name: str, config_path: str) -> list:
    """The layers -l names: one, or all of them for "ALL" / "ALL LAYERS" when no layer has that name."""
    if name in config.layers:
        return [config.layers[name]]
    if name in ALL_LAYERS:
        return list(config.layers.values())
    raise unknown_layer(config, name, config_path)


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-clean; returns the exit code."""
    return run("tilestache-clean", _main, argv)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.quiet)
    apply_include_path(args.include_path)
    _, config = load_config(args.config)
    layers = chosen_layers(config, args.layer, args.config)
    plans = []
    for layer in layers:
        try:
            format = layer.getTypeByExtension(args.extension)[1]
        except BadRequest as error:
            if len(layers) == 1:
                raise UsageError(str(error)) from None
            log.info("skipping layer %s: %s", layer.name(), error)  # as the original: no such tiles to remove
            continue
        count = sum(1 for _ in selected_tiles(args, layer.projection, layer.zoom_range()))  # checks it too
        plans.append((layer, format, count))
    removed = 0
    for layer, format, count in plans:
        progress = Progress(count, True, args.progress_file, tile_format=f"{layer.name()}/{{}}.{args.extension}")
        last = None
        for coord in selected_tiles(args, layer.projection, layer.zoom_range()):
            config.cache.remove(layer, coord, format)
            last = tile_name(coord)
            progress.advance(1, last)
        progress.close(last)
        removed += count
    if not args.quiet:
        names = ", ".join(layer.name() for layer, _, _ in plans) or "no layer"
        print(f"tilestache-clean: removed {removed} tiles of {names}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
