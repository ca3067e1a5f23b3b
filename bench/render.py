"""Cold-render benchmark: TileStache.getTile vs plain Mapnik on the same metatiles, in one run.

    .venv/bin/python bench/render.py                       # world style, zooms 0-6
    .venv/bin/python bench/render.py --style X.xml --zooms 12-16 --bbox 24.80,60.10,25.10,60.25
    .venv/bin/python bench/render.py --osm                 # Helsinki OSM style, zooms 12-16
    .venv/bin/python bench/render.py --memory 20000        # RSS after 1k and after N tile renders

TileStache renders metatiles of 4x4 tiles with a 64 px buffer into a Disk
cache. The reference loads the style once with Mapnik, renders the same
metatiles (the same boxes), cuts them and encodes each tile with the same
encoder and settings (Pillow, TileStache.Formats defaults) into files. Both
skip nothing and do nothing else. After --warmup untimed rounds, each side
runs --rounds times, alternating; the best and the median round of each are
compared.

--osm uses ../shared/tools/workload/styles/osm.xml at zooms 12-16 over the
Helsinki extract: it starts the kit's PostGIS cluster (/tmp/ts-bench-render-pg,
port 55434), imports the extract when its tables are missing, points the style
at it through PGHOST/PGPORT/PGUSER, and stops the cluster at the end.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
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
OSM_BBOX = (24.935, 60.164, 24.953, 60.179)  # lon/lat of the Helsinki extract
OSM_CLUSTER, OSM_PORT = "/tmp/ts-bench-render-pg", "55434"


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


def speed(style, zooms, bbox, rounds, warmup=1):
    """Print best and median tiles/s of each side over rounds, after warmup untimed rounds, and their ratios."""
    projection = SphericalMercator()
    blocks = metatiles(projection, zooms, bbox)
    rates = {"tilestache": [], "mapnik": []}
    tiles = 0
    for round_number in range(-warmup, rounds):
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
            if round_number >= 0:
                rates[side].append(rate)
            label = f"round {round_number + 1}" if round_number >= 0 else "warm-up"
            print(f"  {label:8s} {side:10s} {rate:8.1f} tiles/s", flush=True)
    best = {side: max(values) for side, values in rates.items()}
    median = {side: statistics.median(values) for side, values in rates.items()}
    print(f"{os.path.basename(style)} zooms {zooms.start}-{zooms.stop - 1}: {tiles} tiles in {len(blocks)} metatiles,"
          f" {rounds} rounds after {warmup} warm-up")
    print(f"  plain Mapnik + cut + encode: best {best['mapnik']:.1f}, median {median['mapnik']:.1f} tiles/s")
    print(f"  TileStache.getTile (Disk):   best {best['tilestache']:.1f}, median {median['tilestache']:.1f} tiles/s")
    print(f"  ratio: best {best['tilestache'] / best['mapnik']:.3f}x, median "
          f"{median['tilestache'] / median['mapnik']:.3f}x (target >= 0.95)")
    print(f"  peak RSS: {peak_rss_mb():.0f} MB")


def memory(style: str, count: int) -> None:
    """RSS after 100, 1k, every 10k and count single-tile renders through getTile (Test cache: nothing kept)."""
    config = TileStache.parseConfig({"cache": {"name": "Test"}, "layers": {
        "bench": {"provider": {"name": "mapnik", "mapfile": style}}}})
    layer = config.layers["bench"]
    zoom = 10  # 512 rows x 256 columns (lat +-66, lon -45..45): 131072 distinct tiles before any repeats
    start, marks = time.perf_counter(), {}
    for n in range(count):
        coord = Coordinate(256 + (n // 256) % 512, 384 + n % 256, zoom)
        TileStache.getTile(layer, coord, "png", ignore_cached=True)
        if n + 1 in (100, 1000, count) or (n + 1) % 10000 == 0:
            marks[n + 1] = current_rss_mb()
            print(f"  after {n + 1:7d} tiles: RSS {marks[n + 1]:.1f} MB ({time.perf_counter() - start:.0f} s)", flush=True)
    if 1000 in marks:
        print(f"  growth from 1k to {count}: {marks[count] - marks[1000]:+.1f} MB")
    print(f"  peak RSS: {peak_rss_mb():.1f} MB")


def start_osm() -> str:
    """Start the workload kit's PostGIS, import Helsinki if missing, and set PG* for osm.xml; its style path."""
    from mvt import KIT, ensure_osm  # the workload kit's location and importer, shared with the MVT benchmark

    conn = subprocess.run([os.path.join(KIT, "start-postgis.sh"), OSM_CLUSTER, OSM_PORT], check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    ensure_osm(conn)
    params = dict(item.split("=", 1) for item in conn.split())
    for key in ("host", "port", "user"):
        os.environ["PG" + key.upper()] = params[key]
    return os.path.join(KIT, "styles", "osm.xml")


def stop_osm() -> None:
    """Stop the cluster start_osm started (its data stays for the next run)."""
    from mvt import KIT

    subprocess.run([os.path.join(KIT, "stop-postgis.sh"), OSM_CLUSTER], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--style", default=os.path.join(os.path.dirname(HERE), "examples", "world.xml"))
    parser.add_argument("--zooms", default="0-6", help="low-high")
    parser.add_argument("--bbox", help="west,south,east,north in degrees (default: the world)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (cold caches, first queries)")
    parser.add_argument("--memory", type=int, default=0, help="instead: RSS over this many tile renders")
    parser.add_argument("--osm", action="store_true",
                        help="the workload kit's Helsinki OSM style, zooms 12-16 over the extract (starts PostGIS)")
    args = parser.parse_args()
    if args.osm:
        try:
            speed(start_osm(), range(12, 17), OSM_BBOX, args.rounds, args.warmup)
        finally:
            stop_osm()
        return
    style = os.path.abspath(args.style)
    if args.memory:
        memory(style, args.memory)
        return
    low, high = (int(z) for z in args.zooms.split("-"))
    bbox = tuple(float(v) for v in args.bbox.split(",")) if args.bbox else None
    speed(style, range(low, high + 1), bbox, args.rounds, args.warmup)


if __name__ == "__main__":
    main()
