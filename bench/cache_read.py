"""Read latency of one cached 256px PNG: TileStache.getTile vs the bare client call.

For each cache backend (Disk, LimitedDisk, MBTiles, Memcache, Redis, S3) a
real server is started on loopback (tests/services.py), one tile of
examples/world.xml is rendered with Mapnik and cached, then the same cached
tile is read many times through ``TileStache.getTile`` and with the bare
client (open/read, sqlite3, python-memcached, redis-py, boto3) on the same
server, interleaved in rounds, in the same run. Prints the median latency of
each, the cache object's own ``read`` alone, and the ratios (target: getTile
at most 1.2x the bare call).

    .venv/bin/python bench/cache_read.py [--reads 2000]
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import memcache  # noqa: E402
import redis  # noqa: E402
import services  # noqa: E402
from ModestMaps.Core import Coordinate  # noqa: E402

import TileStache  # noqa: E402

COORD = Coordinate(3, 4, 3)  # z3 x4 y3: land and sea
WORLD = os.path.join(ROOT, "examples", "world.xml")


def layer_for(cache: dict):
    """The world layer in front of a cache, with its tile rendered and cached once."""
    config = TileStache.parseConfig({"cache": cache, "layers": {
        "world": {"provider": {"name": "mapnik", "mapfile": WORLD}}}})
    layer = config.layers["world"]
    TileStache.getTile(layer, COORD, "png")
    return layer


def backends(tmp: str, memcached, redis_server, s3_server):
    """(name, cache config, bare read function) for each backend."""
    disk = os.path.join(tmp, "disk")
    limited = os.path.join(tmp, "limited")
    mbtiles = os.path.join(tmp, "cache.mbtiles")

    def read_file(path):
        def read():
            with open(path, "rb") as file:
                return file.read()
        return read

    db = sqlite3.connect(mbtiles, check_same_thread=False)
    mc = memcache.Client([memcached.address])
    rd = redis.Redis(host=redis_server.host, port=redis_server.port)
    s3 = s3_server.client()
    s3_cache = {"name": "S3", "bucket": "bench", "endpoint url": s3_server.endpoint_url,
                "region": s3_server.region}
    return [
        ("Disk", {"name": "Disk", "path": disk, "dirs": "portable"},
         read_file(os.path.join(disk, "world/3/4/3.png"))),
        ("LimitedDisk", {"name": "LimitedDisk", "path": limited, "limit": 10**8, "dirs": "portable"},
         read_file(os.path.join(limited, "world/3/4/3.png"))),
        ("MBTiles", {"name": "MBTiles", "filename": mbtiles},
         lambda: db.execute("SELECT tile_data FROM tiles WHERE zoom_level = 3 AND tile_column = 4"
                            " AND tile_row = 4").fetchone()[0]),
        ("Memcache", {"name": "Memcache", "servers": [memcached.address]},
         lambda: mc.get("/0/world/3/4/3.PNG")),
        ("Redis", {"name": "Redis", "host": redis_server.host, "port": redis_server.port},
         lambda: rd.get("/world/3/4/3.PNG")),
        ("S3", s3_cache,
         lambda: s3.get_object(Bucket="bench", Key="world/3/4/3.png")["Body"].read()),
    ]


def timed(func, count: int) -> list[float]:
    """Seconds each of count calls took."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return times


def measure(layer, bare, reads: int, rounds: int = 5) -> tuple[float, float, float]:
    """Median seconds of getTile, of the cache's own read, and of the bare read, interleaved in rounds."""
    tile = TileStache.getTile(layer, COORD, "png")[1]
    assert bytes(bare()) == tile, "bare client and TileStache disagree"
    cache = layer.config.cache
    ours, backend, theirs = [], [], []
    per_round = max(1, reads // rounds)
    for _ in range(rounds):
        theirs += timed(bare, per_round)
        backend += timed(lambda: cache.read(layer, COORD, "PNG"), per_round)
        ours += timed(lambda: TileStache.getTile(layer, COORD, "png"), per_round)
    return statistics.median(ours), statistics.median(backend), statistics.median(theirs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000, help="reads of each kind per backend")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, services.Memcached() as mcd, \
            services.RedisServer() as rds, services.MotoS3() as s3d:
        print(f"{'backend':<12} {'getTile µs':>11} {'cache.read µs':>14} {'bare µs':>9} "
              f"{'getTile/bare':>13} {'read/bare':>10}  (medians; S3: {args.reads // 5} reads)")
        for name, cache, bare in backends(tmp, mcd, rds, s3d):
            layer = layer_for(cache)
            reads = args.reads if name != "S3" else max(1, args.reads // 5)
            ours, backend, theirs = measure(layer, bare, reads)
            print(f"{name:<12} {ours * 1e6:>11.1f} {backend * 1e6:>14.1f} {theirs * 1e6:>9.1f} "
                  f"{ours / theirs:>13.2f} {backend / theirs:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
