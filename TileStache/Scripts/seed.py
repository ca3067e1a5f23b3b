"""tilestache-seed: fill a layer's cache for a selection of tiles, in parallel, resumably."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from ..Caches import Multi
from ..Config import build_cache
from ..Core import Metatile
from ..Errors import ConfigError
from ..Seed import CACHED, FAILED, MISSING, RENDERED, UNCACHEABLE, CacheSource, seed
from ..Selection import metatile_size
from .common import (EXIT_FAILURES, EXIT_OK, UsageError, add_config_options, add_selection_options,
                     check_extension, load_layer, run, selected_metatiles, setup_logging)
from .progress import Progress

log = logging.getLogger("tilestache-seed")


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-seed."""
    p = argparse.ArgumentParser(
        prog="tilestache-seed",
        description="Seed a layer's cache: render every metatile of a selection once and save its tiles. "
                    "Re-running skips metatiles whose tiles are all cached, so an interrupted run resumes.",
        epilog="example: tilestache-seed -c tilestache.cfg -l osm -b 37.7 -122.5 37.8 -122.3 10 11 12")
    add_config_options(p)
    add_selection_options(p)
    p.add_argument("-e", "--extension", default="png", help="tile extension (default: %(default)s)")
    p.add_argument("-f", "--progress-file", help="JSON file updated with the seeding progress")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("-v", "--verbose", action="store_true", help="debug output")
    p.add_argument("-x", "--ignore-cached", action="store_true",
                   help="render every metatile, even when its tiles are already cached")
    p.add_argument("--enable-retries", action="store_true",
                   help="retry a failing metatile up to 3 more times, waiting 1, 2, 4 seconds")
    p.add_argument("-j", "--jobs", type=int, default=available_cores(),
                   help="number of rendering processes (default: number of cores, %(default)s)")
    p.add_argument("--from-mbtiles", metavar="FILE", help="copy tiles from this MBTiles file instead of rendering")
    p.add_argument("--to-mbtiles", metavar="FILE", help="save tiles into this MBTiles file instead of the configured cache")
    p.add_argument("--to-s3", nargs=3, metavar=("KEY", "SECRET", "BUCKET"),
                   help="save tiles into this S3 bucket instead of the configured cache")
    return p


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def output_cache(args, dirpath: str):
    """The cache the options ask to write to, or None to keep the configured one."""
    caches = []
    try:
        if args.to_mbtiles:
            caches.append(build_cache({"name": "MBTiles", "filename": os.path.abspath(args.to_mbtiles)}, dirpath))
        if args.to_s3:
            key, secret, bucket = args.to_s3
            caches.append(build_cache({"name": "S3", "bucket": bucket, "access": key, "secret": secret}, dirpath))
    except ConfigError as error:
        raise UsageError(str(error)) from None
    if not caches:
        return None
    if len(caches) == 1:
        return caches[0]
    return Multi(caches)


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-seed; returns the exit code."""
    return run("tilestache-seed", _main, argv)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.quiet, args.verbose)
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    config, layer = load_layer(args.config, args.layer)
    format = check_extension(layer, args.extension)
    metatiles = selected_metatiles(args, layer)

    if args.from_mbtiles:
        if not os.path.isfile(args.from_mbtiles):
            raise UsageError(f"MBTiles file {args.from_mbtiles} does not exist")
        try:
            source = build_cache({"name": "MBTiles", "filename": os.path.abspath(args.from_mbtiles)},
                                 config.dirpath)
        except ConfigError as error:
            raise UsageError(str(error)) from None
        layer.provider = CacheSource(layer, source, format)
        layer.metatile = Metatile()  # copies go tile by tile
        metatiles = selected_metatiles(args, layer)
    cache = output_cache(args, config.dirpath)
    if cache is not None:
        config.cache = cache

    count = total = 0
    for first in metatiles():
        count += 1
        total += metatile_size(layer, first)
    progress = Progress(total, args.quiet, args.progress_file)
    last = [None]

    def report(outcome):
        last[0] = outcome.first
        if outcome.status == FAILED:
            log.warning("metatile %s failed: %s", outcome.first, outcome.error)
        progress.update(outcome)

    retries = 3 if args.enable_retries else 0
    try:
        summary = seed(layer, metatiles(), format, jobs=min(args.jobs, max(1, count)),
                       ignore_cached=args.ignore_cached, retries=retries, report=report)
    finally:
        progress.close(last[0])

    t = summary.tiles
    if not args.quiet or summary.failures:
        print(f"tilestache-seed: {count} metatiles, {total} tiles: {t.get(RENDERED, 0)} rendered, "
              f"{t.get(CACHED, 0)} already cached, {t.get(FAILED, 0)} failed"
              + (f", {t.get(MISSING, 0)} missing in source" if args.from_mbtiles else "")
              + (f", {t.get(UNCACHEABLE, 0)} not cacheable" if t.get(UNCACHEABLE) else ""),
              file=sys.stderr)
    if summary.worker_maxrss_kb and args.verbose:
        peaks = ", ".join(f"{kb / 1024:.0f} MiB" for kb in summary.worker_maxrss_kb.values())
        print(f"tilestache-seed: peak RSS per worker: {peaks}", file=sys.stderr)
    if summary.interrupted:
        print("tilestache-seed: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    if summary.failures:
        print(f"tilestache-seed: {len(summary.failures)} metatiles failed:", file=sys.stderr)
        for name, error in summary.failures[:50]:
            print(f"  {name}: {error}", file=sys.stderr)
        if len(summary.failures) > 50:
            print(f"  ... and {len(summary.failures) - 50} more", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
