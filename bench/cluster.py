#!/usr/bin/env python3
"""Cluster seeding benchmark: tilestache-seed --cluster on 2 Celery worker processes vs tilestache-seed -j 2.

Both seed zooms 0-7 of examples/world.xml (21845 tiles, 1367 metatiles of 4x4
tiles with a 64 px buffer) into an empty Disk cache. The runs take turns over
several rounds, so a busy machine hurts both alike:

- local: ``tilestache-seed -j 2``;
- cluster: ``tilestache-seed --cluster URL`` feeding one ``tilestache-worker
  --concurrency 2`` (started once, before the rounds), on a redis-server of
  its own on a free loopback port. The time runs from the producer's start to
  its exit, when the job is done.

Prints median tiles/s with the range, the ratio cluster / local within each
round (target >= 0.95: the engine costs at most 5 %), and the cluster's
per-task overhead: the median over jobs of the mean milliseconds from a task's
enqueue to its start (the job's ``task:wait_ms`` / ``task:runs``), and
commands the broker served per metatile (Redis ``INFO commandstats`` over the
run, everyone's: producer, worker, Celery's own polling).

Usage: .venv/bin/python bench/cluster.py [--zooms 0-7] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import redis

from seed import count_pngs, median_spread, parse_zooms  # bench/seed.py, beside this script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = os.path.join(ROOT, "examples", "world.xml")
BIN = os.path.dirname(sys.executable)
META, BUFFER = 4, 64
BBOX = ["-b", "-85.0511", "-180", "85.0511", "180"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder: str) -> tuple[subprocess.Popen, str]:
    """A redis-server of the benchmark's own; (process, redis:// URL)."""
    program = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    process = subprocess.Popen([program, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", folder],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return process, url
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)


def start_worker(cfg: str, url: str, folder: str) -> subprocess.Popen:
    """One tilestache-worker with 2 processes, returned once it has announced itself."""
    client = redis.Redis.from_url(url, decode_responses=True)
    name = f"bench-{os.getpid()}@localhost"
    log = open(os.path.join(folder, "worker.log"), "w")
    process = subprocess.Popen([os.path.join(BIN, "tilestache-worker"), "-c", cfg, "--cluster", url,
                                "--concurrency", "2", "-n", name],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    while True:
        item = client.blpop("tilestache:workers:ready", timeout=1)
        if item and item[1] == name:
            return process
        if process.poll() is not None:
            raise SystemExit("tilestache-worker died:\n" + open(log.name).read()[-2000:])


def commands_served(client: redis.Redis) -> int:
    """Commands the Redis server has answered so far (all clients)."""
    return sum(stats["calls"] for stats in client.info("commandstats").values())


def run_seed(argv: list[str], cwd: str) -> float:
    """Run a seeder; its wall seconds."""
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} ... failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zooms", default="0-7", help="zoom range (default: 0-7)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3)")
    args = p.parse_args()
    zooms = parse_zooms(args.zooms)
    expected = sum(4 ** z for z in zooms)
    metatiles = sum(max(1, (2 ** z // META)) ** 2 for z in zooms)

    work = tempfile.mkdtemp(prefix="tilestache-cluster-bench-")
    cfg = os.path.join(work, "bench.cfg")
    with open(cfg, "w") as file:
        json.dump({"cache": {"name": "Disk", "path": "cache"}, "layers": {"world": {
            "provider": {"name": "mapnik", "mapfile": WORLD},
            "metatile": {"rows": META, "columns": META, "buffer": BUFFER}}}}, file)
    cache = os.path.join(work, "cache")
    seed = [os.path.join(BIN, "tilestache-seed"), "-q", "-c", cfg, "-l", "world", *BBOX]
    zoom_args = [str(z) for z in zooms]

    redis_process, url = start_redis(work)
    worker = None
    rates: dict[str, list[float]] = {"local": [], "cluster": []}
    waits, commands = [], []
    try:
        worker = start_worker(cfg, url, work)
        client = redis.Redis.from_url(url, decode_responses=True)
        for round_number in range(args.rounds):
            order = ["local", "cluster"] if round_number % 2 == 0 else ["cluster", "local"]
            for kind in order:
                shutil.rmtree(cache, ignore_errors=True)
                os.sync()  # the previous run's files are written out first, not during this run
                if kind == "local":
                    seconds = run_seed([*seed, "-j", "2", *zoom_args], work)
                else:
                    jobs_before = client.smembers("tilestache:jobs")
                    served = commands_served(client)
                    seconds = run_seed([*seed, "--cluster", url, *zoom_args], work)
                    commands.append((commands_served(client) - served - 1) / metatiles)
                    (job,) = client.smembers("tilestache:jobs") - jobs_before
                    counts = client.hgetall(f"tilestache:job:{job}:counts")
                    waits.append(float(counts["task:wait_ms"]) / int(counts["task:runs"]))
                tiles = count_pngs(cache)
                if tiles != expected:
                    raise SystemExit(f"{kind} wrote {tiles} tiles, expected {expected}")
                rates[kind].append(tiles / seconds)
                print(f"  round {round_number + 1} {kind:8s}: {seconds:6.2f} s, {tiles / seconds:7.1f} tiles/s",
                      flush=True)
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, 9)
            worker.wait()
        redis_process.kill()
        redis_process.wait()
        shutil.rmtree(work, ignore_errors=True)

    ratios = [c / l for c, l in zip(rates["cluster"], rates["local"])]
    print(f"\nzooms {args.zooms} of world.xml, {expected} tiles, {metatiles} metatiles {META}x{META} + {BUFFER} px, "
          f"{os.cpu_count()} cores, {args.rounds} rounds; medians (range)")
    print(f"local   -j 2         {median_spread(rates['local'], 1):>24s} tiles/s")
    print(f"cluster 2 processes  {median_spread(rates['cluster'], 1):>24s} tiles/s")
    print(f"cluster / local      {median_spread(ratios):>24s}   target >= 0.95")
    print(f"enqueue to start     {median_spread(waits, 1):>24s} ms per task (mean within each job)")
    print(f"broker commands      {median_spread(commands, 1):>24s} per metatile")


if __name__ == "__main__":
    main()
