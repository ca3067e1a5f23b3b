"""Cold-render benchmark: TileStache.getTile vs plain Mapnik on the same metatiles, in one run.

    .venv/bin/python bench/render.py                       # world style, zooms 0-6
    .venv/bin/python bench/render.py --style X.xml --zooms 12-16 --bbox 24.80,60.10,25.10,60.25
    .venv/bin/python bench/render.py --memory 20000        # RSS after 1k and after N tile renders

TileStache renders metatiles of 4x4 tiles with a 64 px buffer into a Disk
cache. The reference loads the style once with Mapnik, renders the same
metatiles (the same boxes), cuts them and encodes each tile with the same
encoder and settings (Pillow, TileStache.Formats defaults) into files. Both
skip nothing and do nothing else. Each side runs --rounds times, alternating;
the best round of each is compared.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import mapnik  # noqa: E402
from ModestMaps.Core import Coordinate  # noqa: E402
from ModestMaps.Geo import Location  # noqa: E402
from PIL import Image  # noqa: E402

import TileStache  # noqa: E402
from TileStache import Formats  # noqa: E402
from TileStache.Geography import SphericalMercator  # noqa: E402

META, BUFFER, SIZE = 4, 64, 256


def metatiles(projection, zooms: range, bbox: tuple | None) -> list[tuple[Coordinate, int, int]]:
    """(first tile, columns, rows) of every metatile covering the bbox (or the world) at each zoom."""
    found = []
    for zoom in zooms:
        count = 2 ** zoom
        low_col, low_row, high_col, high_row = 0, 0, count - 1, count - 1
        if bbox:
            west, south, east, north = bbox
            nw = projection.locationCoordinate(Location(north, west)).zoomTo(zoom)
            se = projection.locationCoordinate(Location(south, east)).zoomTo(zoom)
            low_col, low_row, high_col, high_row = int(nw.column), int(nw.row), int(se.column), int(se.row)
        for row in range(low_row // META * META, high_row + 1, META):
            for col in range(low_col // META * META, high_col + 1, META):
                found.append((Coordinate(row, col, zoom), min(META, count - col), min(META, count - row)))
    return found


def run_tilestache(style: str, blocks, folder: str) -> int:
    config = TileStache.parseConfig({
        "cache": {"name": "Disk", "path": folder, "dirs": "portable"},
        "layers": {"bench": {"provider": {"name": "mapnik", "mapfile": style},
                             "metatile": {"rows": META, "columns": META, "buffer": BUFFER}}}})
    layer = config.layers["bench"]
    tiles = 0
    for first, columns, rows in blocks:
        TileStache.getTile(layer, first, "png")
        tiles += columns * rows
    return tiles


def run_reference(style: str, blocks, folder: str, projection) -> int:
    m = mapnik.Map(SIZE, SIZE)
    mapnik.load_map(m, style, True)
    options = Formats.encoder_options("PNG")
    tiles = 0
    for first, columns, rows in blocks:
        ul = projection.coordinateProj(first)
        lr = projection.coordinateProj(Coordinate(first.row + rows, first.column + columns, first.zoom))
        width, height = columns * SIZE + 2 * BUFFER, rows * SIZE + 2 * BUFFER
        dx = (lr.x - ul.x) / (columns * SIZE) * BUFFER
        dy = (ul.y - lr.y) / (rows * SIZE) * BUFFER
        m.resize(width, height)
        m.zoom_to_box(mapnik.Box2d(ul.x - dx, lr.y - dy, lr.x + dx, ul.y + dy))
        canvas = mapnik.Image(width, height)
        mapnik.render(m, canvas)
        image = Image.frombuffer("RGBA", (width, height), canvas.to_string(), "raw", "RGBA", 0, 1)
        for r in range(rows):
            for c in range(columns):
                x, y = BUFFER + c * SIZE, BUFFER + r * SIZE
                body = Formats.encode(image.crop((x, y, x + SIZE, y + SIZE)), "PNG", options)
                path = os.path.join(folder, str(first.zoom), str(first.column + c), f"{first.row + r}.png")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as file:
                    file.write(body)
                tiles += 1
    return tiles


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def speed(style, zooms, bbox, rounds):
    projection = SphericalMercator()
    blocks = metatiles(projection, zooms, bbox)
    best = {"tilestache": 0.0, "mapnik": 0.0}
    tiles = 0
    for round_number in range(rounds):
        for side in ("mapnik", "tilestache") if round_number % 2 == 0 else ("tilestache", "mapnik"):
            folder = tempfile.mkdtemp(prefix=f"bench-{side}-")
            try:
                start = time.perf_counter()
                if side == "tilestache":
                    tiles = run_tilestache(style, blocks, folder)
                else:
                    tiles = run_reference(style, blocks, folder, projection)
                rate = tiles / (time.perf_counter() - start)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            best[side] = max(best[side], rate)
            print(f"  round {round_number + 1} {side:10s} {rate:8.1f} tiles/s", flush=True)
    print(f"{os.path.basename(style)} zooms {zooms.start}-{zooms.stop - 1}: {tiles} tiles in {len(blocks)} metatiles")
    print(f"  plain Mapnik + cut + encode: {best['mapnik']:.1f} tiles/s")
    print(f"  TileStache.getTile (Disk):   {best['tilestache']:.1f} tiles/s")
    print(f"  ratio: {best['tilestache'] / best['mapnik']:.3f}x (target >= 0.95)")
    print(f"  peak RSS: {peak_rss_mb():.0f} MB")


def memory(style: str, count: int) -> None:
    """RSS after 1k and after count single-tile renders through getTile (Test cache: nothing kept)."""
    config = TileStache.parseConfig({"cache": {"name": "Test"}, "layers": {
        "bench": {"provider": {"name": "mapnik", "mapfile": style}}}})
    layer = config.layers["bench"]
    zoom = 10
    start, marks = time.perf_counter(), {}
    for n in range(count):
        coord = Coordinate(300 + (n // 64) % 400, 500 + n % 64, zoom)
        TileStache.getTile(layer, coord, "png", ignore_cached=True)
        if n + 1 in (100, 1000, count):
            marks[n + 1] = current_rss_mb()
            print(f"  after {n + 1:7d} tiles: RSS {marks[n + 1]:.1f} MB ({time.perf_counter() - start:.0f} s)", flush=True)
    if 1000 in marks:
        print(f"  growth from 1k to {count}: {marks[count] - marks[1000]:+.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--style", default=os.path.join(os.path.dirname(HERE), "examples", "world.xml"))
    parser.add_argument("--zooms", default="0-6", help="low-high")
    parser.add_argument("--bbox", help="west,south,east,north in degrees (default: the world)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", type=int, default=0, help="instead: RSS over this many tile renders")
    args = parser.parse_args()
    style = os.path.abspath(args.style)
    if args.memory:
        memory(style, args.memory)
        return
    low, high = (int(z) for z in args.zooms.split("-"))
    bbox = tuple(float(v) for v in args.bbox.split(",")) if args.bbox else None
    speed(style, range(low, high + 1), bbox, args.rounds)


if __name__ == "__main__":
    main()
