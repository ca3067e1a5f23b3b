#!/usr/bin/env python3
"""Seeding benchmark: tilestache-seed vs a zero-overhead Mapnik reference vs mapproxy-seed.

All three seed zooms 0-7 of examples/world.xml (21845 tiles) with metatiles of
4x4 tiles and a 64 px buffer, into empty disk folders, with 1 and 2
processes, in the same run (interleaved, so a busy machine hurts all alike):

- reference: plain Mapnik renders each metatile, Pillow cuts it and encodes each
  tile with TileStache.Formats' PNG encoder and settings, and it is written to a
  file; metatiles are handed to 1 or 2 forked processes one at a time.
- split: the same, with the metatiles dealt out up front in a checkerboard
  (process i of N takes those whose column + row is i modulo N): no messages
  at all, the real limit of N processes.
- tilestache: ``tilestache-seed -j N``.
- mapproxy: ``mapproxy-seed -c N`` (MapProxy 7.0.0 from PyPI in its own venv
  under /tmp, patched for Mapnik 4 as issue 6 explains, paletted: false).

Runs alternate over rounds; prints median tiles/s with the range, the ratios
(taken within each round), and the peak RSS of the largest process of each run.
Usage: .venv/bin/python bench/seed.py [--zooms 0-7] [--jobs 1,2] [--no-mapproxy] [--rounds 3]
"""
from __future__ import annotations

import argparse
import glob
import math
import multiprocessing
import os
import shutil
import statistics
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


def reference_main(jobs: int, out: str, zooms: list[int], split: bool = False) -> None:
    """Render every metatile of the zooms into out/z/x/y.png with `jobs` processes.

    Handed out one at a time through a pool, or with ``split`` dealt out up
    front and rendered with no messages at all, the real limit of N processes:
    process i takes the metatiles whose (column + row) in metatiles is i modulo
    N, a checkerboard, so land and sea (slow and fast) fall to each alike.
    """
    tasks = list(metatiles(zooms))
    if jobs == 1:
        _ref_init(out)
        for task in tasks:
            _ref_render(task)
        return
    if split:
        children = []
        for i in range(jobs):
            pid = os.fork()
            if pid == 0:
                try:
                    _ref_init(out)
                    for task in tasks:
                        if (task[1] // META + task[2] // META) % jobs == i:
                            _ref_render(task)
                finally:
                    os._exit(0)
            children.append(pid)
        for pid in children:
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"reference process {pid} failed")
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
    if kind in ("reference", "split"):
        argv = [sys.executable, __file__, "--reference-worker", str(jobs), folder, "--zooms", zoom_arg,
                *(["--split"] if kind == "split" else [])]
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
    os.sync()  # the previous run's files are written out first, not during this run
    seconds, rss = timed(argv, folder)
    tiles = count_pngs(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return seconds, rss, tiles


def parse_zooms(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def median_spread(values: list[float], digits: int = 2) -> str:
    """A list's median with its range, as 'median (low-high)'."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zooms", default="0-7", help="zoom range (default: 0-7)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3); medians are reported")
    p.add_argument("--jobs", default="1,2", help="process counts to compare (default: 1,2)")
    p.add_argument("--no-mapproxy", action="store_true", help="skip mapproxy-seed")
    p.add_argument("--reference-worker", nargs=2, metavar=("JOBS", "OUT"), help=argparse.SUPPRESS)
    p.add_argument("--split", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    zooms = parse_zooms(args.zooms)
    if args.reference_worker:
        reference_main(int(args.reference_worker[0]), args.reference_worker[1], zooms, args.split)
        return

    mapproxy = None if args.no_mapproxy else ensure_mapproxy()
    job_counts = [int(j) for j in args.jobs.split(",")]

    def kinds(jobs: int) -> list[str]:
        return (["reference"] + (["split"] if jobs > 1 else []) + ["tilestache"]
                + ([] if mapproxy is None else ["mapproxy"]))

    expected = sum(4 ** z for z in zooms)
    work = tempfile.mkdtemp(prefix="tilestache-seed-bench-")
    rates: dict[tuple[str, int], list[float]] = {}
    peaks: dict[tuple[str, int], int] = {}
    try:
        for round_number in range(args.rounds):
            for jobs in job_counts:
                order = kinds(jobs)
                if round_number % 2:
                    order.reverse()  # alternate who goes first
                for kind in order:
                    seconds, rss, tiles = run_one(kind, jobs, zooms, work, mapproxy)
                    if tiles != expected:
                        raise SystemExit(f"{kind} -j {jobs} wrote {tiles} tiles, expected {expected}")
                    print(f"  round {round_number + 1} {kind:10s} -j {jobs}: {seconds:7.2f} s, "
                          f"{tiles / seconds:7.1f} tiles/s, peak RSS {rss / 1024:.0f} MiB", flush=True)
                    rates.setdefault((kind, jobs), []).append(tiles / seconds)
                    peaks[(kind, jobs)] = max(rss, peaks.get((kind, jobs), 0))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def ratios(kind: str, jobs: int, against: str, against_jobs: int | None = None) -> str:
        pairs = zip(rates[(kind, jobs)], rates[(against, against_jobs or jobs)])
        return median_spread([a / b for a, b in pairs])  # within each round

    print(f"\nzooms {args.zooms} of world.xml, {expected} tiles, metatiles {META}x{META} + {BUFFER} px, "
          f"{os.cpu_count()} cores, {args.rounds} rounds; medians (range)")
    for jobs in job_counts:
        limit = "split" if jobs > 1 else "reference"
        for kind in kinds(jobs):
            line = (f"{kind + ' -j ' + str(jobs):16s} {median_spread(rates[(kind, jobs)]):>24s} tiles/s"
                    f"  vs {limit}: {ratios(kind, jobs, limit):>18s}")
            if mapproxy and kind != "mapproxy":
                line += f"  vs mapproxy: {ratios(kind, jobs, 'mapproxy'):>18s}"
            if jobs > 1 and 1 in job_counts:
                line += f"  speedup over -j 1: {ratios(kind, jobs, 'reference' if kind == 'split' else kind, 1):>18s}"
            print(line + f"  peak RSS {peaks[(kind, jobs)] / 1024:.0f} MiB")
    print("targets: tilestache -j 1 >= 0.95x the reference; -j N >= 0.90x the up-front split (the real limit "
          "of N processes); >= 2.5x mapproxy at equal -j")


if __name__ == "__main__":
    main()
