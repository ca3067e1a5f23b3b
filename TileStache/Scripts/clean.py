"""tilestache-clean: remove the tiles of a selection from a layer's cache (or every layer's).

With ``--older-than`` only tiles saved longer ago than that go, for caches that
know a tile's age; without a box, tile list or coverage it looks at every tile
the cache holds for the layer. ``--dry-run`` lists what would go and removes nothing.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import time

from ..Errors import BadRequest, KnownUnknown
from ..Selection import SelectionError, check_zooms, tile_name
from .common import (EXIT_FAILURES, EXIT_OK, UsageError, add_include_path_option, add_selection_options,
                     apply_include_path, load_config, run, selected_tiles, setup_logging, unknown_layer)
from .progress import Progress

log = logging.getLogger("tilestache-clean")

# -l ALL (or "ALL LAYERS", for when a layer is really called ALL) cleans every layer in turn,
# unless a layer has that very name.
ALL_LAYERS = ("ALL", "ALL LAYERS")

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def duration(text: str) -> float:
    """Seconds of a duration such as 7d, 12h, 30m, 45s, 2w or 1d12h."""
    value = text.strip().lower()
    if not DURATION.match(value):
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: give a number and a unit "
                                         "(s, m, h, d or w), e.g. 7d, 12h, 30m or 1d12h")
    return sum(float(number) * UNITS[unit] for number, unit in DURATION_PART.findall(value))


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
    p.add_argument("--older-than", type=duration, metavar="DURATION",
                   help="only tiles saved longer ago than this (7d, 12h, 30m, 45s, 2w, 1d12h), for caches that "
                        "know a tile's age (Disk, LimitedDisk, S3, MBTiles); without -b, --tile-list or "
                        "--coverage every tile the cache holds for the layer (at the zooms given, if any)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the tiles that would be removed (layer/z/x/y.ext) and how many; remove nothing")
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


def walks_cache(args) -> bool:
    """True when --older-than has no box, tile list or coverage to look in: the cache's own tiles then."""
    return args.older_than is not None and not (args.bbox or args.tile_list or args.coverage)


def age_tier(cache):
    """The cache that tells when tiles were saved: the cache itself, or a Multi cache's last tier that
    can (its most lasting one); None when none can."""
    for tier in reversed(getattr(cache, "tiers", [cache])):
        if callable(getattr(tier, "saved_time", None)) and callable(getattr(tier, "saved_tiles", None)):
            return tier
    return None


def check_age_cache(cache) -> None:
    """UsageError unless the cache can tell when a tile was saved."""
    if age_tier(cache) is None:
        raise UsageError(f"--older-than needs a cache that records when tiles were saved (Disk, LimitedDisk, "
                         f"S3, MBTiles, or a Multi cache with one of them), not {type(cache).__name__}")


def candidates(args, cache, layer, format: str, zooms: list[int] | None):
    """(tile, saved time or None when not looked up yet) to look at: the selection, or with --older-than
    alone the cache's own tiles of the layer."""
    if walks_cache(args):
        return ((coord, saved) for coord, saved in age_tier(cache).saved_tiles(layer, format)
                if not zooms or coord.zoom in zooms)
    return ((coord, None) for coord in selected_tiles(args, layer.projection, layer.zoom_range()))


def _main(argv) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.quiet)
    apply_include_path(args.include_path)
    _, config = load_config(args.config)
    cache = config.cache
    if args.older_than is not None:
        check_age_cache(cache)
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
        zooms = None
        if walks_cache(args):
            try:
                zooms = check_zooms(args.zooms, *layer.zoom_range()) if args.zooms else None
            except SelectionError as error:
                raise UsageError(str(error)) from None
        else:
            selected_tiles(args, layer.projection, layer.zoom_range())  # checks the selection, reads a coverage
        plans.append((layer, format, zooms))
    cutoff = None if args.older_than is None else time.time() - args.older_than
    try:
        removed, names = clean(args, cache, plans, cutoff)
    except KnownUnknown as error:  # a cache that cannot be reached or listed
        print(f"tilestache-clean: {error}", file=sys.stderr)
        return EXIT_FAILURES
    if not args.quiet:
        verb = "would remove" if args.dry_run else "removed"
        print(f"tilestache-clean: {verb} {removed} tiles of {', '.join(names) or 'no layer'}", file=sys.stderr)
    return EXIT_OK


def clean(args, cache, plans: list, cutoff: float | None) -> tuple[int, list[str]]:
    """Remove (or with --dry-run print) each plan's tiles, old enough ones only with a cutoff; the count."""
    removed = 0
    for layer, format, zooms in plans:
        count = sum(1 for _ in candidates(args, cache, layer, format, zooms))
        tile_format = f"{layer.name()}/{{}}.{args.extension}"
        progress = Progress(count, args.quiet or args.dry_run, args.progress_file, tile_format=tile_format)
        last = None
        for coord, saved in candidates(args, cache, layer, format, zooms):
            last = tile_name(coord)
            progress.advance(1, last)
            if cutoff is not None:
                if saved is None:
                    saved = age_tier(cache).saved_time(layer, coord, format)
                if saved is None or saved >= cutoff:
                    continue
            if args.dry_run:
                print(tile_format.format(last))
            else:
                cache.remove(layer, coord, format)
            removed += 1
        progress.close(last)
    return removed, [layer.name() for layer, _, _ in plans]


if __name__ == "__main__":
    sys.exit(main())
