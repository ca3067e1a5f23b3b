"""tilestache-seed: fill a layer's cache for a selection of tiles, in parallel, resumably."""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from ..Caches import Multi
from ..Config import build_cache, buildConfiguration
from ..Core import Metatile
from ..Errors import ConfigError
from ..MBTiles import tileset_format
from ..PMTiles import WRITE_TYPES, finish_archives, open_archive, staging_path, stored_tiles, tile_extension
from ..PMTiles import Cache as PMTilesCache
from ..PMTiles import Source as PMTilesSource
from ..MBTiles import list_tiles, tileset_info
from ..TileJSON import vector_layers
from ..Seed import CACHED, FAILED, MISSING, RENDERED, UNCACHEABLE, CacheSource, seed
from ..Selection import metatile_size, metatile_tiles, parse_tile_list
from .common import (EXIT_FAILURES, EXIT_OK, UsageError, add_include_path_option, add_selection_options,
                     apply_include_path, check_extension, load_config, run, selected_metatiles, setup_logging,
                     unknown_layer)
from . import cluster_seed
from .progress import Progress

log = logging.getLogger("tilestache-seed")

# The layer name the original gives a tileset copied without a configuration and without -l.
COPY_LAYER = "tiles-layer"

# A JSONP callback: a dotted JavaScript identifier path.
CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*")


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-seed."""
    p = argparse.ArgumentParser(
        prog="tilestache-seed", usage="%(prog)s [options] [zoom...]",
        description="Seed a layer's cache: render every metatile of a selection once and save its tiles. "
                    "Re-running skips metatiles whose tiles are all cached, so an interrupted run resumes.",
        epilog="examples: tilestache-seed -c tilestache.cfg -l osm -b 37.79 -122.35 37.83 -122.25 12 13 14; "
               "tilestache-seed --from-mbtiles in.mbtiles --output-directory tiles (no configuration needed)")
    p.add_argument("-c", "--config", help="TileStache configuration file (needed unless a tileset is copied "
                                           "with --from-mbtiles or --from-pmtiles to --output-directory, "
                                           "--to-mbtiles or --to-pmtiles)")
    p.add_argument("-l", "--layer", help="layer name in the configuration (the copied tileset's layer name "
                                          f"without a configuration, default {COPY_LAYER})")
    add_selection_options(p)
    p.add_argument("-e", "--extension",
                   help="tile extension (default: png; json for a \"mapnik grid\" provider, geojson for "
                        "\"vector\"; the tileset's own format with --from-mbtiles)")
    p.add_argument("-f", "--progress-file", help="JSON file rewritten as tiles are done: tile, offset, total")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    add_include_path_option(p)
    p.add_argument("-d", "--output-directory", metavar="DIR",
                   help='save tiles into this folder instead of the configured cache (a Disk cache with '
                        '"dirs": "portable" and no gzip)')
    p.add_argument("--to-mbtiles", metavar="FILE", help="save tiles into this MBTiles file instead of the configured cache")
    p.add_argument("--to-s3", nargs=3, metavar=("KEY", "SECRET", "BUCKET"),
                   help="save tiles into this S3 bucket instead of the configured cache")
    p.add_argument("--from-mbtiles", metavar="FILE",
                   help="copy tiles from this MBTiles file instead of rendering (all its tiles unless zoom "
                        "levels or --tile-list are given)")
    p.add_argument("--to-pmtiles", metavar="FILE",
                   help="save tiles into this PMTiles archive instead of the configured cache (staged in "
                        "FILE.staging.mbtiles; the archive appears, complete, when the run succeeds)")
    p.add_argument("--from-pmtiles", metavar="FILE",
                   help="copy tiles from this PMTiles archive instead of rendering, as --from-mbtiles")
    p.add_argument("--error-list", metavar="FILE",
                   help="append the z/x/y of each tile that fails to this file; the run goes on and exits 0")
    p.add_argument("--enable-retries", action="store_true",
                   help="retry a failing metatile up to 3 more times, waiting 1, 2, 4 seconds")
    p.add_argument("-x", "--ignore-cached", action="store_true",
                   help="render every metatile, even when its tiles are already cached")
    p.add_argument("--jsonp-callback", metavar="NAME",
                   help="also save each JSON tile wrapped in this callback, as a .js tile (ignored for other "
                        "formats)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug output")
    p.add_argument("-j", "--jobs", type=int, default=available_cores(),
                   help="number of rendering processes (default: number of cores, %(default)s)")
    cluster_seed.add_cluster_options(p)
    return p


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def guess_extension(layer_spec: dict) -> str:
    """The original's default extension for a layer's config: by its provider's name."""
    provider = layer_spec.get("provider", {})
    name = str(provider.get("name", "")).strip().lower() if isinstance(provider, dict) else ""
    return {"mapnik grid": "json", "vector": "geojson"}.get(name, "png")


def prepare_layer(args):
    """(configuration, layer, extension) for the options; no configuration file is needed to copy an
    MBTiles file (--from-mbtiles) into --output-directory or --to-mbtiles."""
    if args.from_mbtiles and not os.path.isfile(args.from_mbtiles):
        raise UsageError(f"MBTiles file {args.from_mbtiles} does not exist")
    if args.from_mbtiles and args.from_pmtiles:
        raise UsageError("--from-mbtiles and --from-pmtiles can not be combined")
    source = args.from_mbtiles or args.from_pmtiles
    copy_only = source and (args.output_directory or args.to_mbtiles or args.to_pmtiles)
    if copy_only and not args.config:
        name = args.layer or COPY_LAYER
        kind = "mbtiles" if args.from_mbtiles else "pmtiles"
        spec = {"provider": {"name": kind, "tileset": os.path.abspath(source)}}
        try:
            config = buildConfiguration({"cache": {"name": "Test"}, "layers": {name: spec}}, os.getcwd())
        except ConfigError as error:
            raise UsageError(str(error)) from None
    elif not args.config:
        raise UsageError("missing required configuration (--config)")
    elif not args.layer:
        raise UsageError("missing required layer (--layer)")
    else:
        config_dict, config = load_config(args.config)
        name = args.layer
        if name not in config.layers:
            raise unknown_layer(config, name, args.config)
        spec = config_dict["layers"][name]
    layer = config.layers[name]
    layer.write_cache = True  # seeding is for filling the cache
    extension = args.extension
    if args.from_mbtiles:
        extension = tileset_info(args.from_mbtiles)[4] or extension
    if args.from_pmtiles:
        args.pmtiles_source = from_pmtiles(args.from_pmtiles)
        extension = tile_extension(args.pmtiles_source)
    return config, layer, extension or guess_extension(spec)


def from_pmtiles(tileset: str):
    """The archive --from-pmtiles names, opened; UsageError if it is not a readable PMTiles archive."""
    try:
        return open_archive(tileset, os.getcwd())
    except ConfigError as error:
        raise UsageError(f"--from-pmtiles: {error}") from None


def output_cache(args, dirpath: str, layer_name: str):
    """The cache the options ask to write to, or None to keep the configured one."""
    caches = []
    try:
        if args.to_pmtiles:
            target = os.path.abspath(args.to_pmtiles)
            if os.path.exists(staging_path(target)):
                log.warning("going on with the tiles an unfinished run staged in %s (remove it to start over)",
                            staging_path(target))
            caches.append(PMTilesCache(target, name=layer_name))
        if args.to_mbtiles:
            caches.append(build_cache({"class": "TileStache.MBTiles:Cache",  # a class: "name" is a kwarg here
                                       "kwargs": {"filename": os.path.abspath(args.to_mbtiles),
                                                  "name": layer_name}}, dirpath))
        if args.output_directory:
            caches.append(build_cache({"name": "Disk", "path": os.path.abspath(args.output_directory),
                                       "dirs": "portable", "gzip": []}, dirpath))
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


def jsonp_saver(layer, format: str, callback: str):
    """A function saving the tiles of a finished metatile again, wrapped in the callback, as "JS" tiles."""
    cache = layer.config.cache
    prefix = callback.encode("ascii") + b"("

    def save(first) -> None:
        for coord in metatile_tiles(layer, first):
            body = cache.read(layer, coord, format)
            if body is not None:
                cache.save(prefix + bytes(body) + b");", layer, coord, "JS")
    return save


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-seed; returns the exit code."""
    return run("tilestache-seed", _main, argv)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.quiet, args.verbose)
    apply_include_path(args.include_path)
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.jsonp_callback is not None and not CALLBACK.fullmatch(args.jsonp_callback):
        raise UsageError(f"--jsonp-callback {args.jsonp_callback!r} is not a JavaScript identifier")
    if cluster_seed.wanted(args):
        return cluster_seed.main(args, prepare_layer)
    config, layer, extension = prepare_layer(args)
    format = check_extension(layer, extension)
    mimetype = layer.getTypeByExtension(extension)[0]
    if args.to_pmtiles and tileset_format(extension) not in WRITE_TYPES:
        raise UsageError(f"--to-pmtiles archives hold mvt, png, jpg or webp tiles, not {extension}")
    if args.to_pmtiles and getattr(layer.projection, "name", "") != "spherical mercator":
        raise UsageError("--to-pmtiles archives hold spherical mercator tiles; "
                         f"layer {layer.name()!r} is in another projection")
    archive_metadata = {"name": layer.name()}
    if format == "MVT":
        archive_metadata["vector_layers"] = vector_layers(layer, *layer.zoom_range())

    if args.from_mbtiles:
        try:
            source = build_cache({"name": "MBTiles", "filename": os.path.abspath(args.from_mbtiles)},
                                 config.dirpath)
        except ConfigError as error:
            raise UsageError(str(error)) from None
        layer.provider = CacheSource(layer, source, format)
        layer.metatile = Metatile()  # copies go tile by tile
    if args.from_pmtiles:
        layer.provider = CacheSource(layer, PMTilesSource(args.pmtiles_source), format)
        layer.metatile = Metatile()
    if args.from_mbtiles and not args.zooms and not args.tile_list:
        stored = [c for c in list_tiles(args.from_mbtiles) if layer.in_bounds(c)]
        metatiles = lambda: iter(stored)  # noqa: E731 - the tileset's own tiles, as the original copies
    elif args.from_pmtiles and not args.zooms and not args.tile_list:
        archive = args.pmtiles_source
        metatiles = lambda: (c for c in stored_tiles(archive) if layer.in_bounds(c))  # noqa: E731
    else:
        metatiles = selected_metatiles(args, layer)
    cache = output_cache(args, config.dirpath, layer.name())
    if cache is not None:
        config.cache = cache

    count = total = 0
    for first in metatiles():
        count += 1
        total += metatile_size(layer, first)
    progress = Progress(total, args.quiet, args.progress_file, tile_format=f"{layer.name()}/{{}}.{extension}")
    last = [None]
    wrap = None
    if args.jsonp_callback is not None:
        if "json" in mimetype:
            wrap = jsonp_saver(layer, format, args.jsonp_callback)
        else:
            log.warning("--jsonp-callback ignored: %s tiles are not JSON", extension)

    def report(outcome):
        last[0] = outcome.first
        if outcome.status == FAILED:
            log.warning("metatile %s failed: %s", outcome.first, outcome.error)
            if args.error_list:
                first = parse_tile_list([outcome.first])[0]
                with open(args.error_list, "a", encoding="ascii") as file:
                    file.writelines(f"{int(c.zoom)}/{int(c.column)}/{int(c.row)}\n"
                                    for c in metatile_tiles(layer, first))
        elif wrap is not None and outcome.status in (RENDERED, CACHED):
            wrap(parse_tile_list([outcome.first])[0])
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
              + (f", {t.get(MISSING, 0)} missing in source" if args.from_mbtiles or args.from_pmtiles else "")
              + (f", {t.get(UNCACHEABLE, 0)} not cacheable" if t.get(UNCACHEABLE) else ""),
              file=sys.stderr)
    if summary.worker_maxrss_kb and args.verbose:
        peaks = ", ".join(f"{kb / 1024:.0f} MiB" for kb in summary.worker_maxrss_kb.values())
        print(f"tilestache-seed: peak RSS per worker: {peaks}", file=sys.stderr)
    if summary.interrupted:
        print("tilestache-seed: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    if args.to_pmtiles and (not summary.failures or args.error_list):
        try:
            finish_archives(config.cache, archive_metadata)
        except ConfigError as error:
            print(f"tilestache-seed: {args.to_pmtiles} not written: {error}", file=sys.stderr)
            return EXIT_FAILURES
    elif args.to_pmtiles:
        print(f"tilestache-seed: {args.to_pmtiles} not written; run the same command again to render the "
              f"failed metatiles and write it", file=sys.stderr)
    if summary.failures:
        print(f"tilestache-seed: {len(summary.failures)} metatiles failed"
              + (f", their tiles listed in {args.error_list}:" if args.error_list else ":"), file=sys.stderr)
        for name, error in summary.failures[:50]:
            print(f"  {name}: {error}", file=sys.stderr)
        if len(summary.failures) > 50:
            print(f"  ... and {len(summary.failures) - 50} more", file=sys.stderr)
        return EXIT_OK if args.error_list else EXIT_FAILURES
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
