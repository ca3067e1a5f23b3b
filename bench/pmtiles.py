"""Tile reads per second from a PMTiles archive: our provider against MBTiles, Disk and the bare reader.

One set of small distinct tiles (enough that the archive has leaf directories)
is written three ways: a PMTiles archive by the ``pmtiles`` package's writer,
an MBTiles file, and a Disk cache. Each round reads the same random sample of
tiles, in the same order, four ways, alternating:

- ``pmtiles``: ``TileStache.getTile`` on a layer with our PMTiles provider;
- ``mbtiles``: ``TileStache.getTile`` on a layer with the MBTiles provider;
- ``disk``: ``TileStache.getTile`` on a layer whose Disk cache holds the tiles;
- ``bare``: ``pmtiles.reader.Reader.get`` over an mmap of the same archive (it
  parses the header and every directory on the way at each read: no caching).

Prints each way's median reads per second, and the medians of the per-round
ratios with their spread (min-max). Targets (issue 16): pmtiles >= 0.9x
mbtiles, >= 1.0x bare.

    .venv/bin/python bench/pmtiles.py [--tiles 20000] [--reads 3000] [--rounds 7]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# This file's own folder must not be on the path: its name would hide the pmtiles package.
sys.path[:] = [ROOT, os.path.join(ROOT, "tests")] + [p for p in sys.path if os.path.abspath(p or ".") != HERE]

from ModestMaps.Core import Coordinate  # noqa: E402
from pmtiles.reader import MmapSource, Reader  # noqa: E402
from pmtiles.tile import TileType  # noqa: E402

import TileStache  # noqa: E402
from formats_helpers import sparse_tiles, write_archive  # noqa: E402
from TileStache.MBTiles import Cache as MBTilesCache  # noqa: E402


def layers(folder: str, tiles: dict):
    """(pmtiles layer, mbtiles layer, disk layer) over the same tiles."""
    archive = write_archive(os.path.join(folder, "t.pmtiles"), tiles, TileType.PNG)
    mbtiles = MBTilesCache(os.path.join(folder, "t.mbtiles"), format="png")
    db = mbtiles.tileset.db()
    db.execute("BEGIN")
    for (z, x, y), body in tiles.items():
        mbtiles.tileset.put(Coordinate(y, x, z), body)
    db.execute("COMMIT")
    config = TileStache.parseConfig({
        "cache": {"name": "Test"},
        "layers": {"pm": {"provider": {"name": "pmtiles", "tileset": str(archive)}},
                   "mb": {"provider": {"name": "mbtiles", "tileset": os.path.join(folder, "t.mbtiles")}}}})
    disk = TileStache.parseConfig({
        "cache": {"name": "Disk", "path": os.path.join(folder, "disk"), "dirs": "portable"},
        "layers": {"d": {"provider": {"name": "mbtiles", "tileset": os.path.join(folder, "t.mbtiles")}}}})
    for (z, x, y), body in tiles.items():
        disk.cache.save(body, disk.layers["d"], Coordinate(y, x, z), "PNG")
    return config.layers["pm"], config.layers["mb"], disk.layers["d"], str(archive)


def rate(read, sample) -> float:
    """Reads per second of read(z, x, y) over the sample."""
    start = time.perf_counter()
    for z, x, y in sample:
        read(z, x, y)
    return len(sample) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=20000)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    tiles = sparse_tiles(args.tiles)
    with tempfile.TemporaryDirectory() as folder:
        pm, mb, disk, archive = layers(folder, tiles)
        sample = random.Random(1).sample(sorted(tiles), min(args.reads, len(tiles)))
        for layer in (pm, mb, disk):  # every way returns the stored bytes
            z, x, y = sample[0]
            assert TileStache.getTile(layer, Coordinate(y, x, z), "png")[1] == tiles[(z, x, y)]
        with open(archive, "rb") as file:
            reader = Reader(MmapSource(file))
            assert reader.get(*sample[0]) == tiles[sample[0]]
            ways = {
                "pmtiles": lambda z, x, y: TileStache.getTile(pm, Coordinate(y, x, z), "png"),
                "mbtiles": lambda z, x, y: TileStache.getTile(mb, Coordinate(y, x, z), "png"),
                "disk": lambda z, x, y: TileStache.getTile(disk, Coordinate(y, x, z), "png"),
                "bare": reader.get,
            }
            for read in ways.values():  # warm up: pages, connections, the leaf cache
                rate(read, sample[:200])
            rates = {name: [] for name in ways}
            for round_ in range(args.rounds):
                order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
                for name in order:
                    rates[name].append(rate(ways[name], sample))
    header = f"{len(tiles)} tiles, {len(sample)} reads a round, {args.rounds} rounds"
    print(header)
    for name, values in rates.items():
        print(f"  {name:8s} {statistics.median(values):10.0f} reads/s (min {min(values):.0f}, max {max(values):.0f})")
    for other, target in (("mbtiles", 0.9), ("bare", 1.0), ("disk", None)):
        ratios = [a / b for a, b in zip(rates["pmtiles"], rates[other])]
        goal = f"  target >= {target}" if target else ""
        print(f"  pmtiles / {other:8s} median {statistics.median(ratios):.2f}  "
              f"(spread {min(ratios):.2f}-{max(ratios):.2f}){goal}")


if __name__ == "__main__":
    main()
