#!/usr/bin/env python3
"""Seeding benchmark: tilestache-seed vs a zero-overhead Mapnik reference vs mapproxy-seed.

All three seed zooms 0-7 of examples/world.xml (21845 tiles) with metatiles of
4x4 tiles and a 64 px buffer, into empty disk folders, with 1 and 2
processes, in the same run (interleaved, so a busy machine hurts all alike):

- reference: plain Mapnik renders each metatile, Pillow cuts it and encodes each
  tile with TileStache.Formats' PNG encoder and settings, and it is written to a
  file; metatiles are handed to 1 or 2 forked processes one at a time.
- tilestache: ``tilestache-seed -j N``.
- mapproxy: ``mapproxy-seed -c N`` (MapProxy 7.0.0 from PyPI in its own venv
  under /tmp, patched for Mapnik 4 as issue 6 explains, paletted: false).

Prints tiles/s, the ratios, and the peak RSS of the largest process of each run.
Usage: .venv/bin/python bench/seed.py [--zooms 0-7] [--no-mapproxy] [--rounds 1]
"""
from __future__ import annotations

import argparse
import glob
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = os.path.join(ROOT, "examples", "world.xml")
BIN = os.path.dirname(sys.executable)
MAPPROXY_VENV = "/tmp/mapproxy-venv"
META, BUFFER, SIZE = 4, 64, 256
HALF = math.pi * 6378137


# -- the zero-overhead reference ----------------------------------------------

def metatiles(zooms):
    """(zoom, first column, first row, columns, rows) of each 4x4 metatile, clipped to the world."""
    for z in zooms:
        n = 2 ** z
        for row in range(0, n, META):
            for col in range(0, n, META):
                yield z, col, row, min(META, n - col), min(META, n - row)


_ref = {}


def _ref_init(out):
    import mapnik

    m = mapnik.Map(SIZE, SIZE)
    mapnik.load_map(m, WORLD, True)
    _ref.update(map=m, out=out)


def _ref_render(task):
    import mapnik
    from PIL import Image

    from TileStache import Formats

    z, col, row, cols, rows = task
    m, out = _ref["map"], _ref["out"]
    scale = 2 * HALF / 2 ** z
    b = scale / SIZE * BUFFER
    x0, y0 = col * scale - HALF, HALF - row * scale
    x1, y1 = x0 + cols * scale, y0 - rows * scale
    width, height = cols * SIZE + 2 * BUFFER, rows * SIZE + 2 * BUFFER
    m.resize(width, height)
    m.zoom_to_box(mapnik.Box2d(x0 - b, y1 - b, x1 + b, y0 + b))
    canvas = mapnik.Image(width, height)
    mapnik.render(m, canvas)
    image = Image.frombuffer("RGBA", (width, height), canvas.to_string(), "raw", "RGBA", 0, 1)
    options = Formats.encoder_options("PNG")
    for dx in range(cols):
        folder = os.path.join(out, str(z), str(col + dx))
        os.makedirs(folder, exist_ok=True)
        for dy in range(rows):
            x, y = BUFFER + dx * SIZE, BUFFER + dy * SIZE
            body = Formats.encode(image.crop((x, y, x + SIZE, y + SIZE)), "PNG", options)
            with open(os.path.join(folder, f"{row + dy}.png"), "wb") as file:
                file.write(body)
    return cols * rows


def reference_main(jobs: int, out: str, zooms: list[int]) -> None:
    """Render every metatile of the zooms into out/z/x/y.png with `jobs` processes."""
    tasks = list(metatiles(zooms))
    if jobs == 1:
        _ref_init(out)
        for task in tasks:
            _ref_render(task)
        return
    with multiprocessing.get_context("fork").Pool(jobs, _ref_init, (out,)) as pool:
        for _ in pool.imap_unordered(_ref_render, tasks, chunksize=1):
            pass


# -- MapProxy -----------------------------------------------------------------

def ensure_mapproxy() -> str:
    """The mapproxy-seed of a venv under /tmp with MapProxy 7.0.0, patched for Mapnik 4."""
    seed = os.path.join(MAPPROXY_VENV, "bin", "mapproxy-seed")
    if not os.path.exists(seed):
        subprocess.run([sys.executable, "-m", "venv", MAPPROXY_VENV], check=True)
        subprocess.run([os.path.join(MAPPROXY_VENV, "bin", "pip"), "install", "-q", "MapProxy==7.0.0",
                        "mapnik>=4.3.2,<4.4", "Pillow", "PyYAML"], check=True)
    (source,) = glob.glob(os.path.join(MAPPROXY_VENV, "lib", "python3*", "site-packages", "mapproxy",
                                       "source", "mapnik.py"))
    with open(source) as file:
        text = file.read()
    patched = (text.replace("img.tostring(", "img.to_string(")
               .replace("m.srs = '+init=%s' % ", "m.srs = '%s' % ")
               .replace("        m.map_obj_pid = process_id\n", "")
               .replace("if m.map_obj_pid == process_id:", "if getattr(m, 'map_obj_pid', None) == process_id:"))
    if patched != text:
        with open(source, "w") as file:
            file.write(patched)
    return seed


def mapproxy_config(folder: str, zooms: list[int]) -> tuple[str, str]:
    """Write mapproxy.yaml and seed.yaml for the world style; return their paths."""
    conf = os.path.join(folder, "mapproxy.yaml")
    with open(conf, "w") as file:
        file.write(textwrap.dedent(f"""\
            services:
              tms:
            layers:
              - name: world
                title: world
                sources: [world_cache]
            caches:
              world_cache:
                grids: [webmercator]
                sources: [world_mapnik]
                meta_size: [{META}, {META}]
                meta_buffer: {BUFFER}
                format: image/png
                cache:
                  type: file
                  directory_layout: tms
                  directory: {folder}/tiles
            sources:
              world_mapnik:
                type: mapnik
                mapfile: {WORLD}
                transparent: true
            grids:
              webmercator:
                base: GLOBAL_WEBMERCATOR
            globals:
              cache:
                base_dir: {folder}/cache_data
                lock_dir: {folder}/locks
              image:
                paletted: false
            """))
    seed = os.path.join(folder, "seed.yaml")
    with open(seed, "w") as file:
        file.write(textwrap.dedent(f"""\
            seeds:
              world:
                caches: [world_cache]
                levels:
                  from: {min(zooms)}
                  to: {max(zooms)}
            """))
    return conf, seed


# -- running and measuring ------------------------------------------------------

def timed(argv: list[str], cwd: str) -> tuple[float, int]:
    """Run a command; (wall seconds, peak RSS in KiB of its largest process)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    err = process.stderr.read().decode(errors="replace")
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({process.returncode}):\n{err[-2000:]}")
    return seconds, usage.ru_maxrss


def count_pngs(folder: str) -> int:
    return sum(1 for _, _, files in os.walk(folder) for f in files if f.endswith(".png"))


def run_one(kind: str, jobs: int, zooms: list[int], work: str, mapproxy: str | None) -> tuple[float, int, int]:
    """Seed into a fresh folder; (seconds, peak RSS KiB, tiles written)."""
    folder = tempfile.mkdtemp(prefix=f"{kind}-j{jobs}-", dir=work)
    zoom_arg = f"{min(zooms)}-{max(zooms)}"
    if kind == "reference":
        argv = [sys.executable, __file__, "--reference-worker", str(jobs), folder, "--zooms", zoom_arg]
    elif kind == "tilestache":
        cfg = os.path.join(folder, "bench.cfg")
        with open(cfg, "w") as file:
            file.write('{"cache": {"name": "Disk", "path": "cache"}, "layers": {"world": {'
                       '"provider": {"name": "mapnik", "mapfile": "%s"}, '
                       '"metatile": {"rows": %d, "columns": %d, "buffer": %d}}}}' % (WORLD, META, META, BUFFER))
        argv = [os.path.join(BIN, "tilestache-seed"), "-q", "-c", cfg, "-l", "world", "-j", str(jobs),
                "-b", "-85.0511", "-180", "85.0511", "180", *map(str, zooms)]
    else:
        conf, seed = mapproxy_config(folder, zooms)
        argv = [mapproxy, "-q", "-f", conf, "-s", seed, "-c", str(jobs), "--seed", "world"]
    seconds, rss = timed(argv, folder)
    tiles = count_pngs(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return seconds, rss, tiles


def parse_zooms(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zooms", default="0-7", help="zoom range (default: 0-7)")
    p.add_argument("--rounds", type=int, default=1, help="repeat each run; the best time counts")
    p.add_argument("--no-mapproxy", action="store_true", help="skip mapproxy-seed")
    p.add_argument("--reference-worker", nargs=2, metavar=("JOBS", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    zooms = parse_zooms(args.zooms)
    if args.reference_worker:
        reference_main(int(args.reference_worker[0]), args.reference_worker[1], zooms)
        return

    mapproxy = None if args.no_mapproxy else ensure_mapproxy()
    kinds = ["reference", "tilestache"] + ([] if mapproxy is None else ["mapproxy"])
    expected = sum(4 ** z for z in zooms)
    work = tempfile.mkdtemp(prefix="tilestache-seed-bench-")
    results: dict[tuple[str, int], tuple[float, int]] = {}
    try:
        for _ in range(args.rounds):
            for jobs in (1, 2):
                for kind in kinds:
                    seconds, rss, tiles = run_one(kind, jobs, zooms, work, mapproxy)
                    if tiles != expected:
                        raise SystemExit(f"{kind} -j {jobs} wrote {tiles} tiles, expected {expected}")
                    print(f"  {kind:10s} -j {jobs}: {seconds:7.2f} s, {tiles / seconds:7.1f} tiles/s, "
                          f"peak RSS {rss / 1024:.0f} MiB", flush=True)
                    best = results.get((kind, jobs))
                    if best is None or seconds < best[0]:
                        results[(kind, jobs)] = (seconds, rss)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nzooms {args.zooms} of world.xml, {expected} tiles, metatiles {META}x{META} + {BUFFER} px, "
          f"{os.cpu_count()} cores")
    print(f"{'run':16s} {'tiles/s':>9s} {'vs reference':>13s} {'vs mapproxy':>12s} {'peak RSS/worker':>16s}")
    for jobs in (1, 2):
        ref = expected / results[("reference", jobs)][0]
        mp = expected / results[("mapproxy", jobs)][0] if mapproxy else None
        for kind in kinds:
            seconds, rss = results[(kind, jobs)]
            rate = expected / seconds
            vs_mp = f"{rate / mp:11.2f}x" if mp else f"{'-':>12s}"
            print(f"{kind + ' -j ' + str(jobs):16s} {rate:9.1f} {rate / ref:12.2f}x {vs_mp} {rss / 1024:13.0f} MiB")
    print("targets: tilestache -j 1 >= 0.95x and -j 2 >= 0.90x the reference; >= 2.5x mapproxy at equal -j")


if __name__ == "__main__":
    main()
