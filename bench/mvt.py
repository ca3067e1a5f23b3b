"""MVT tiles/s from PostGIS through TileStache.getTile vs the bare ST_AsMVT query; GeoJSON tiles/s from a shapefile.

Usage (from the project root; ../shared is the workload kit's parent folder):

    .venv/bin/python bench/mvt.py [--pg CONNSTR] [--rounds 5]

Without --pg it starts a throwaway cluster with ../shared/tools/workload/start-postgis.sh
(in /tmp/ts-bench-mvt-pg, port 55433), imports the Helsinki extract with load-osm.sh when
planet_osm_polygon is missing, and stops the cluster at the end.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
KIT = os.path.join(ROOT, "..", "shared", "tools", "workload")
SHAPEFILE = os.path.join(ROOT, "..", "shared", "data", "naturalearth", "naturalearth_lowres.shp")
HELSINKI = (24.9352, 60.1642, 24.9534, 60.1791)  # lon/lat bbox of the import

import psycopg  # noqa: E402
from ModestMaps.Core import Coordinate  # noqa: E402
from ModestMaps.Geo import Location  # noqa: E402

import TileStache  # noqa: E402
from TileStache.Geography import SphericalMercator  # noqa: E402

# Layer name -> (table, columns): the same in the provider config and the bare query.
LAYERS = {
    "polygons": ("planet_osm_polygon", ["osm_id", "name", "building", "landuse", "leisure", "natural", "amenity"]),
    "lines": ("planet_osm_line", ["osm_id", "name", "highway", "railway", "waterway"]),
    "points": ("planet_osm_point", ["osm_id", "name", "amenity", "shop", "place"]),
}
BUFFER = 64


def bare_query() -> str:
    """The hand-written ST_AsMVT query for all layers of one tile, parameters z, x, y."""
    parts = []
    for name, (table, columns) in LAYERS.items():
        cols = ", ".join(f'"{c}"' for c in columns)
        parts.append(
            f"(SELECT ST_AsMVT(t, '{name}', 4096, 'geom') FROM (SELECT ST_AsMVTGeom(way, "
            f"ST_TileEnvelope(%(z)s, %(x)s, %(y)s)::box2d, 4096, {BUFFER}, true) AS geom, {cols} "
            f"FROM {table} WHERE way && ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {BUFFER / 4096})) AS t "
            f"WHERE geom IS NOT NULL)")
    return "SELECT " + " || ".join(parts)


def tiles(zooms: range) -> list[Coordinate]:
    """Every tile over the Helsinki import at some zooms."""
    merc, out = SphericalMercator(), []
    for z in zooms:
        ul = merc.locationCoordinate(Location(HELSINKI[3], HELSINKI[0])).zoomTo(z)
        lr = merc.locationCoordinate(Location(HELSINKI[1], HELSINKI[2])).zoomTo(z)
        for row in range(int(ul.row), int(lr.row) + 1):
            for column in range(int(ul.column), int(lr.column) + 1):
                out.append(Coordinate(row, column, z))
    return out


def start_cluster() -> tuple[str, str]:
    folder = "/tmp/ts-bench-mvt-pg"
    conn = subprocess.run([os.path.join(KIT, "start-postgis.sh"), folder, "55433"], check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return conn, folder


def ensure_osm(conn: str) -> None:
    with psycopg.connect(conn) as db:
        if db.execute("SELECT to_regclass('planet_osm_polygon')").fetchone()[0] is None:
            subprocess.run([os.path.join(KIT, "load-osm.sh"), conn], check=True, stdout=subprocess.DEVNULL)


def config_for(conn: str, validate: bool):
    params = dict(item.split("=", 1) for item in conn.split())
    layers = [{"name": name, "table": table, "properties": columns}
              for name, (table, columns) in LAYERS.items()]
    return TileStache.parseConfig({"cache": {"name": "Test"}, "layers": {
        "osm": {"provider": {"name": "vector", "driver": "postgis", "parameters": params, "buffer": BUFFER,
                             "validate": validate, "layers": layers}},
        "world": {"provider": {"name": "vector", "driver": "shapefile", "parameters": {"file": SHAPEFILE},
                               "properties": ["name", "continent"]}},
    }})


def run_rounds(rounds: int, runners: dict) -> dict:
    """Best tiles/s of each runner over interleaved rounds."""
    best = {name: 0.0 for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            count = run()
            best[name] = max(best[name], count / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", help="libpq connection string of a database with the Helsinki import")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    folder = None
    conn = args.pg
    if conn is None:
        conn, folder = start_cluster()
    try:
        ensure_osm(conn)
        coords = tiles(range(12, 17))
        sql = bare_query()
        database = psycopg.connect(conn, autocommit=True)
        checked = config_for(conn, validate=True)
        started = time.perf_counter()
        unchecked = config_for(conn, validate=False)  # counts invalid geometries of each table, once
        load_ms = 1000 * (time.perf_counter() - started)
        sizes = []

        def bare():
            for c in coords:
                database.execute(sql, {"z": c.zoom, "x": c.column, "y": c.row}, prepare=True).fetchone()
            return len(coords)

        def through(config):
            def run():
                for c in coords:
                    TileStache.getTile(config.layers["osm"], c, "mvt")
                return len(coords)
            return run

        for c in coords:  # warm up, and check both give tiles of similar size
            mine = TileStache.getTile(unchecked.layers["osm"], c, "mvt")[1]
            theirs = database.execute(sql, {"z": c.zoom, "x": c.column, "y": c.row}).fetchone()[0] or b""
            sizes.append((len(mine), len(theirs)))
        best = run_rounds(args.rounds, {"bare ST_AsMVT": bare, "getTile mvt": through(unchecked),
                                        "getTile mvt, validate on": through(checked)})
        print(f"{len(coords)} tiles at z12-16 over Helsinki; bytes getTile/bare: "
              f"{sum(s[0] for s in sizes)}/{sum(s[1] for s in sizes)}; config load with validity count: "
              f"{load_ms:.0f} ms")
        for name, rate in best.items():
            print(f"  {name:28s} {rate:8.1f} tiles/s  ({rate / best['bare ST_AsMVT']:.2f}x bare)")

        world = [Coordinate(y, x, z) for z in range(0, 4) for x in range(2 ** z) for y in range(2 ** z)]
        shp = run_rounds(args.rounds, {"geojson": lambda: [TileStache.getTile(
            unchecked.layers["world"], c, "geojson") for c in world] and len(world)})
        print(f"GeoJSON from {os.path.basename(SHAPEFILE)}, {len(world)} tiles z0-3: {shp['geojson']:.1f} tiles/s")
        database.close()
    finally:
        if folder is not None:
            subprocess.run([os.path.join(KIT, "stop-postgis.sh"), folder], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
