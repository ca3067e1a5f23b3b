"""Helpers for the command-line tool tests: run a tool as a subprocess, write configs, tile math.

The tile math here is written independently of TileStache (the usual
spherical-mercator formulas), so the tests check the tools against it.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
WORLD_XML = os.path.join(ROOT, "examples", "world.xml")
BIN = os.path.dirname(sys.executable)
WORLD = ("-b", -85.0511, -180, 85.0511, 180)  # -b for the whole spherical-mercator world

POLYGONS_XML = """<?xml version="1.0" encoding="utf-8"?>
<Map srs="epsg:3857" background-color="#a6cbe3">
  <Style name="countries"><Rule><PolygonSymbolizer fill="#f1d59b"/>
    <LineSymbolizer stroke="#5f5f5f" stroke-width="0.8"/></Rule></Style>
  <Layer name="countries" srs="epsg:4326"><StyleName>countries</StyleName>
    <Datasource><Parameter name="type">shape</Parameter>
      <Parameter name="file">{data}/naturalearth_lowres.shp</Parameter>
      <Parameter name="encoding">ISO-8859-1</Parameter></Datasource></Layer>
</Map>
"""


def tool(name: str, *args, cwd=None, env_extra=None, timeout=120) -> subprocess.CompletedProcess:
    """Run an installed console script (tilestache-NAME) and capture its output."""
    env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(env_extra or {})
    return subprocess.run([os.path.join(BIN, f"tilestache-{name}"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def start_tool(name: str, *args, cwd=None) -> subprocess.Popen:
    """Start a console script in the background."""
    env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([os.path.join(BIN, f"tilestache-{name}"), *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_config(folder, layers: dict, cache: dict | None = None) -> str:
    """Write a config with a Disk cache in folder/cache (unless given) and return its path."""
    path = os.path.join(folder, "tilestache.cfg")
    with open(path, "w") as file:
        json.dump({"cache": cache or {"name": "Disk", "path": "cache"}, "layers": layers}, file)
    return path


def counting_layer(log, rows=2, columns=2, buffer=16, delay=0.0, fail_zoom=None, fail_once=None, **extra) -> dict:
    """A layer rendering examples/world.xml through tests/counting_provider.py."""
    kwargs = {"mapfile": WORLD_XML, "log": str(log), "delay": delay}
    if fail_zoom is not None:
        kwargs["fail_zoom"] = fail_zoom
    if fail_once is not None:
        kwargs["fail_once"] = str(fail_once)
    layer = {"provider": {"class": "counting_provider:CountingProvider", "kwargs": kwargs},
             "metatile": {"rows": rows, "columns": columns, "buffer": buffer}}
    layer.update(extra)
    return layer


def polygons_layer(folder, rows=1, columns=1, buffer=0) -> dict:
    """A Mapnik layer of country polygons only (no labels, so renders agree across tile edges)."""
    path = os.path.join(folder, "polygons.xml")
    with open(path, "w") as file:
        file.write(POLYGONS_XML.format(data=os.path.join(ROOT, "examples", "data")))
    return {"provider": {"name": "mapnik", "mapfile": path},
            "metatile": {"rows": rows, "columns": columns, "buffer": buffer}}


def tile_xy(lat: float, lon: float, zoom: int) -> tuple[int, int]:
    """Column and row of the spherical-mercator tile holding a location."""
    n = 2 ** zoom
    x = (lon + 180.0) / 360.0 * n
    y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return min(n - 1, int(math.floor(x))), min(n - 1, int(math.floor(y)))


def bbox_tiles(south, west, north, east, zooms, padding=0) -> set[tuple[int, int, int]]:
    """(z, x, y) of every tile a box touches at the zooms (box edges not on tile edges)."""
    tiles = set()
    for z in zooms:
        x0, y0 = tile_xy(north, west, z)
        x1, y1 = tile_xy(south, east, z)
        n = 2 ** z
        for x in range(max(0, x0 - padding), min(n - 1, x1 + padding) + 1):
            for y in range(max(0, y0 - padding), min(n - 1, y1 + padding) + 1):
                tiles.add((z, x, y))
    return tiles


def metatile_expand(tiles, rows=2, columns=2) -> set[tuple[int, int, int]]:
    """Every tile of the rows x columns blocks the tiles fall in, clipped to the world."""
    out = set()
    for z, x, y in tiles:
        n = 2 ** z
        fx, fy = x // columns * columns, y // rows * rows
        for dx in range(columns):
            for dy in range(rows):
                if fx + dx < n and fy + dy < n:
                    out.add((z, fx + dx, fy + dy))
    return out


def disk_tiles(cache_dir, layer, ext="png") -> set[tuple[int, int, int]]:
    """(z, x, y) of the tiles in a Disk cache's "safe" layout for a layer."""
    found = set()
    root = os.path.join(cache_dir, layer)
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith("." + ext):
                continue
            parts = os.path.relpath(os.path.join(folder, name), root).split(os.sep)
            z, x1, x2, y1, y2 = parts
            found.add((int(z), int(x1 + x2), int(y1 + y2.split(".")[0])))
    return found


def leftovers(cache_dir) -> list[str]:
    """Temporary files and lock directories left in a cache folder."""
    bad = []
    for folder, dirs, files in os.walk(cache_dir):
        bad += [os.path.join(folder, d) for d in dirs if d.endswith(".lock")]
        bad += [os.path.join(folder, f) for f in files if f.endswith(".tmp")]
    return bad
