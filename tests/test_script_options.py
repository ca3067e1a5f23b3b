"""The original 1.51 command lines of tilestache-seed, -clean and -list, option by option, as subprocesses.

Each test follows the usage text of the original script (its option names,
defaults and output files); our additions are tested in test_seed.py and
test_scripts.py.
"""
from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import urllib.request

import pytest

from ModestMaps.Core import Coordinate
from PIL import Image

import TileStache
from counting_provider import rendered
from script_helpers import (BIN, ROOT, WORLD, bbox_tiles, counting_layer, disk_tiles, metatile_expand,
                            polygons_layer, tile_xy, tool, write_config)
from services import free_port
from test_http import wait_for_port
from test_scripts import layer_tiles, same

OAKLAND = (37.777, -122.352, 37.839, -122.226)  # the original's default -b
BOX = (40.5, -5.5, 50.5, 10.5)


def listed(result) -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in line.split("/")) for line in result.stdout.split()]


def portable_tiles(folder, layer, ext="png") -> dict[tuple[int, int, int], bytes]:
    """(z, x, y) -> bytes of the tiles in a "portable" layout folder (layer/z/x/y.ext)."""
    found = {}
    root = os.path.join(folder, layer)
    for path, _, files in os.walk(root):
        for name in files:
            z, x = os.path.relpath(path, root).split(os.sep)
            with open(os.path.join(path, name), "rb") as file:
                found[(int(z), int(x), int(name.split(".")[0]))] = file.read()
            assert name.endswith("." + ext), name
    return found


def mbtiles_tiles(path) -> dict[tuple[int, int, int], bytes]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles").fetchall()
    return {(z, x, (1 << z) - 1 - tms): bytes(data) for z, x, tms, data in rows}


def single_tile_config(tmp_path, **layers):
    """A config whose layers render 1x1 metatiles through the counting provider."""
    specs = {name: counting_layer(tmp_path / f"{name}.log", rows=1, columns=1, buffer=0, **extra)
             for name, extra in (layers or {"world": {}}).items()}
    return write_config(tmp_path, specs)


# -- tilestache-seed -----------------------------------------------------------

def test_seed_without_bbox_uses_the_original_default_box(tmp_path):
    cfg = single_tile_config(tmp_path)
    result = tool("seed", "-c", cfg, "-l", "world", 12, 13)
    assert result.returncode == 0, result.stderr
    assert disk_tiles(tmp_path / "cache", "world") == bbox_tiles(*OAKLAND, [12, 13])


def test_seed_bbox_corners_in_either_order_and_padding(tmp_path):
    cfg = single_tile_config(tmp_path)
    south, west, north, east = BOX
    result = tool("seed", "-c", cfg, "-l", "world", "--bbox", north, east, south, west, "--padding", 1, 5)
    assert result.returncode == 0, result.stderr
    assert disk_tiles(tmp_path / "cache", "world") == bbox_tiles(*BOX, [5], padding=1)


def test_seed_extension_defaults_by_provider(tmp_path):
    (tmp_path / "points.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "a"}, "geometry": {"type": "Point", "coordinates": [1, 1]}}]}))
    cfg = write_config(tmp_path, {
        "points": {"provider": {"name": "vector", "driver": "GeoJSON", "parameters": {"file": "points.geojson"}}},
        "json": {"provider": {"class": "plugins:JsonTiles"}}})
    assert tool("seed", "-c", cfg, "-l", "points", 0).returncode == 0
    assert [n for _, _, names in os.walk(tmp_path / "cache" / "points") for n in names] == ["000.geojson"]
    # a provider named by class gets the original's default, png, which this one refuses
    refused = tool("seed", "-c", cfg, "-l", "json", 0)
    assert refused.returncode == 2 and not (tmp_path / "cache" / "json").exists()
    assert tool("seed", "-c", cfg, "-l", "json", "-e", "json", 0).returncode == 0


def test_seed_progress_file_has_the_original_keys(tmp_path):
    cfg = single_tile_config(tmp_path)
    progress = tmp_path / "progress.json"
    result = tool("seed", "-c", cfg, "-l", "world", *WORLD, "-j", 1, "--progress-file", progress, 0, 1)
    assert result.returncode == 0, result.stderr
    state = json.loads(progress.read_text())
    assert state == {"tile": "world/1/1/1.png", "offset": 5, "total": 5}


def test_seed_q_prints_nothing(tmp_path):
    cfg = single_tile_config(tmp_path)
    result = tool("seed", "-c", cfg, "-l", "world", "-q", 3)
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""
    assert disk_tiles(tmp_path / "cache", "world") == bbox_tiles(*OAKLAND, [3])


PLUGIN = '''
from TileStache.Mapnik import ImageProvider

class Provider(ImageProvider):
    """A plug-in that lives outside the Python path."""
'''


def outside_plugin_config(tmp_path):
    """(a folder off the Python path holding a plug-in provider, a config whose layer "world" uses it)."""
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "outside_plugin.py").write_text(PLUGIN)
    cfg = write_config(tmp_path, {"world": {"provider": {"class": "outside_plugin:Provider", "kwargs": {
        "mapfile": os.path.join(ROOT, "examples", "world.xml")}}}})
    return folder, cfg


def test_seed_and_clean_include_path_load_a_plugin_from_a_folder(tmp_path):
    folder, cfg = outside_plugin_config(tmp_path)
    missing = tool("seed", "-c", cfg, "-l", "world", 1)
    assert missing.returncode == 2 and "outside_plugin" in missing.stderr
    result = tool("seed", "-c", cfg, "-l", "world", "-i", f"{tmp_path / 'nowhere'}:{folder}", *WORLD, 0, 1)
    assert result.returncode == 0, result.stderr
    assert len(disk_tiles(tmp_path / "cache", "world")) == 5
    assert tool("clean", "-c", cfg, "-l", "world", "--include-path", folder, *WORLD, 1).returncode == 0
    assert disk_tiles(tmp_path / "cache", "world") == {(0, 0, 0)}


def test_seed_output_directory_is_a_portable_disk_cache(tmp_path):
    cfg = single_tile_config(tmp_path)
    out = tmp_path / "out"
    result = tool("seed", "-c", cfg, "-l", "world", "--output-directory", out, *WORLD, 0, 1)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "cache").exists()  # not the configured cache
    tiles = portable_tiles(out, "world")
    assert set(tiles) == {(0, 0, 0), (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)}
    assert all(body[:8] == b"\x89PNG\r\n\x1a\n" for body in tiles.values())


def test_seed_several_outputs_become_a_multi_cache(tmp_path):
    cfg = single_tile_config(tmp_path)
    out, mbtiles = tmp_path / "out", tmp_path / "out.mbtiles"
    result = tool("seed", "-c", cfg, "-l", "world", "-d", out, "--to-mbtiles", mbtiles, *WORLD, 0, 1)
    assert result.returncode == 0, result.stderr
    assert portable_tiles(out, "world") == mbtiles_tiles(mbtiles)
    assert len(mbtiles_tiles(mbtiles)) == 5
    with sqlite3.connect(mbtiles) as db:
        assert dict(db.execute("SELECT name, value FROM metadata"))["name"] == "world"


def test_seed_from_mbtiles_without_a_config(tmp_path):
    cfg = single_tile_config(tmp_path)
    source = tmp_path / "source.mbtiles"
    assert tool("seed", "-c", cfg, "-l", "world", "--to-mbtiles", source, *WORLD, 0, 1, 2).returncode == 0
    stored = mbtiles_tiles(source)
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = tool("seed", "--from-mbtiles", source, "--output-directory", "tiles", cwd=work)
    assert result.returncode == 0, result.stderr
    assert portable_tiles(work / "tiles", "tiles-layer") == stored  # every tile, byte for byte
    named = tool("seed", "--from-mbtiles", source, "-l", "copy", "--to-mbtiles", work / "copy.mbtiles", cwd=work)
    assert named.returncode == 0, named.stderr
    assert mbtiles_tiles(work / "copy.mbtiles") == stored
    # without an output, a configuration is still needed
    alone = tool("seed", "--from-mbtiles", source, cwd=work)
    assert alone.returncode == 2 and "--config" in alone.stderr


def test_seed_tile_list_overrides_bbox(tmp_path):
    cfg = single_tile_config(tmp_path)
    (tmp_path / "tiles.txt").write_text("3/1/2\n4/15/0\n")
    result = tool("seed", "-c", cfg, "-l", "world", "--tile-list", tmp_path / "tiles.txt", "-b", *BOX)
    assert result.returncode == 0, result.stderr
    assert disk_tiles(tmp_path / "cache", "world") == {(3, 1, 2), (4, 15, 0)}


def test_seed_error_list_records_failed_tiles_and_goes_on(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log", fail_zoom=2)})
    errors = tmp_path / "errors.txt"
    result = tool("seed", "-c", cfg, "-l", "world", *WORLD, "--error-list", errors, 1, 2, 3)
    assert result.returncode == 0, result.stderr
    assert sorted(errors.read_text().split()) == sorted(f"2/{x}/{y}" for x in range(4) for y in range(4))
    assert {z for z, _, _ in disk_tiles(tmp_path / "cache", "world")} == {1, 3}
    # the list feeds a later run, which renders those tiles once the fault is gone
    fixed = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    again = tool("seed", "-c", fixed, "-l", "world", "--tile-list", errors)
    assert again.returncode == 0, again.stderr
    assert {z for z, _, _ in disk_tiles(tmp_path / "cache", "world")} == {1, 2, 3}


def test_seed_ignore_cached_renders_again(tmp_path):
    cfg = single_tile_config(tmp_path)
    assert tool("seed", "-c", cfg, "-l", "world", 3).returncode == 0
    first = len(rendered(tmp_path / "world.log"))
    assert tool("seed", "-c", cfg, "-l", "world", 3).returncode == 0
    assert len(rendered(tmp_path / "world.log")) == first
    assert tool("seed", "-c", cfg, "-l", "world", "--ignore-cached", 3).returncode == 0
    assert len(rendered(tmp_path / "world.log")) == 2 * first


def test_seed_jsonp_callback_saves_wrapped_json_tiles(tmp_path):
    cfg = write_config(tmp_path, {"json": {"provider": {"class": "plugins:JsonTiles"}}},
                       cache={"name": "Disk", "path": "cache", "dirs": "portable", "gzip": []})
    result = tool("seed", "-c", cfg, "-l", "json", "-e", "json", "--jsonp-callback", "app.tiles", *WORLD, 1)
    assert result.returncode == 0, result.stderr
    for x in (0, 1):
        for y in (0, 1):
            plain = (tmp_path / "cache" / "json" / "1" / str(x) / f"{y}.json").read_bytes()
            wrapped = (tmp_path / "cache" / "json" / "1" / str(x) / f"{y}.js").read_bytes()
            assert wrapped == b"app.tiles(" + plain + b");"
            assert json.loads(plain)["column"] == x
    bad = tool("seed", "-c", cfg, "-l", "json", "-e", "json", "--jsonp-callback", "alert(1)//", 1)
    assert bad.returncode == 2 and "jsonp-callback" in bad.stderr
    (tmp_path / "png").mkdir()
    png = single_tile_config(tmp_path / "png")
    ignored = tool("seed", "-c", png, "-l", "world", "--jsonp-callback", "cb", 2)
    assert ignored.returncode == 0 and "ignored" in ignored.stderr
    assert not [n for _, _, names in os.walk(tmp_path / "png") for n in names if n.endswith(".js")]


def test_seed_non_numeric_zoom_is_a_usage_error(tmp_path):
    cfg = single_tile_config(tmp_path)
    result = tool("seed", "-c", cfg, "-l", "world", "x")
    assert result.returncode == 2 and "invalid int value: 'x'" in result.stderr


# -- tilestache-clean ----------------------------------------------------------

def test_clean_all_layers_in_turn(tmp_path):
    cfg = single_tile_config(tmp_path, a={}, b={})
    for name in ("a", "b"):
        assert tool("seed", "-c", cfg, "-l", name, *WORLD, 0, 1).returncode == 0
    progress = tmp_path / "progress.json"
    result = tool("clean", "-c", cfg, "-l", "ALL", *WORLD, "-f", progress, 1)
    assert result.returncode == 0, result.stderr
    assert disk_tiles(tmp_path / "cache", "a") == disk_tiles(tmp_path / "cache", "b") == {(0, 0, 0)}
    assert json.loads(progress.read_text()) == {"tile": "b/1/1/1.png", "offset": 4, "total": 4}


def test_clean_a_layer_really_named_all(tmp_path):
    cfg = single_tile_config(tmp_path, ALL={}, other={})
    for name in ("ALL", "other"):
        assert tool("seed", "-c", cfg, "-l", name, *WORLD, 0).returncode == 0
    assert tool("clean", "-c", cfg, "-l", "ALL", *WORLD, 0).returncode == 0
    assert disk_tiles(tmp_path / "cache", "ALL") == set()
    assert disk_tiles(tmp_path / "cache", "other") == {(0, 0, 0)}
    assert tool("clean", "-c", cfg, "-l", "ALL LAYERS", *WORLD, 0).returncode == 0
    assert disk_tiles(tmp_path / "cache", "other") == set()


def test_clean_default_box_padding_extension_tile_list_and_q(tmp_path):
    cfg = single_tile_config(tmp_path)
    assert tool("seed", "-c", cfg, "-l", "world", "-b", *BOX, "-p", 2, 6).returncode == 0
    assert tool("seed", "-c", cfg, "-l", "world", 10).returncode == 0
    seeded = disk_tiles(tmp_path / "cache", "world")
    quiet = tool("clean", "-c", cfg, "-l", "world", "-q", "-e", "png", 10)  # the default box
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert disk_tiles(tmp_path / "cache", "world") == seeded - bbox_tiles(*OAKLAND, [10])
    assert tool("clean", "-c", cfg, "-l", "world", "-b", *BOX, 6).returncode == 0
    assert disk_tiles(tmp_path / "cache", "world") == bbox_tiles(*BOX, [6], padding=2) - bbox_tiles(*BOX, [6])
    (tmp_path / "tiles.txt").write_text("".join(f"{z}/{x}/{y}\n" for z, x, y in
                                                sorted(disk_tiles(tmp_path / "cache", "world"))[:3]))
    before = disk_tiles(tmp_path / "cache", "world")
    assert tool("clean", "-c", cfg, "-l", "world", "--tile-list", tmp_path / "tiles.txt").returncode == 0
    assert len(disk_tiles(tmp_path / "cache", "world")) == len(before) - 3
    assert tool("clean", "-c", cfg, "-l", "world", "-b", *BOX, "-p", 2, "-e", "jpg", 6).returncode == 0
    assert len(disk_tiles(tmp_path / "cache", "world")) == len(before) - 3  # jpg tiles only


# -- tilestache-list -----------------------------------------------------------

def test_list_default_box_and_corners_in_either_order():
    assert set(listed(tool("list", 11, 12))) == bbox_tiles(*OAKLAND, [11, 12])
    south, west, north, east = BOX
    swapped = tool("list", "--bbox", north, west, south, east, "--padding", 1, 6)
    assert set(listed(swapped)) == bbox_tiles(*BOX, [6], padding=1)


def test_list_from_mbtiles_prints_its_tiles(tmp_path):
    cfg = single_tile_config(tmp_path)
    source = tmp_path / "source.mbtiles"
    assert tool("seed", "-c", cfg, "-l", "world", "--to-mbtiles", source, "-b", *BOX, 4, 5).returncode == 0
    result = tool("list", "--from-mbtiles", source)
    assert result.returncode == 0, result.stderr
    tiles = listed(result)
    assert len(tiles) == len(set(tiles)) and set(tiles) == bbox_tiles(*BOX, [4, 5]) == set(mbtiles_tiles(source))
    assert tool("list", "--from-mbtiles", tmp_path / "none.mbtiles").returncode == 2


def test_list_output_feeds_seed_tile_list(tmp_path):
    cfg = single_tile_config(tmp_path)
    (tmp_path / "list.txt").write_text(tool("list", "-b", *BOX, 4).stdout)
    assert tool("seed", "-c", cfg, "-l", "world", "--tile-list", tmp_path / "list.txt").returncode == 0
    assert disk_tiles(tmp_path / "cache", "world") == bbox_tiles(*BOX, [4]) == metatile_expand(
        bbox_tiles(*BOX, [4]), rows=1, columns=1)


# -- tilestache-render ---------------------------------------------------------

def test_render_coordinates_to_temporary_files_in_order(tmp_path):
    cfg = write_config(tmp_path, {"poly": polygons_layer(tmp_path, rows=2, columns=2, buffer=16)})
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = tool("render", "-c", cfg, "-l", "poly", "3/4/2.png", "2/1/1.jpg", "3/4/2.png",
                  env_extra={"TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert len(names) == 3 and len(set(names)) == 3
    assert all(os.path.dirname(n) == str(temp) and os.path.basename(n).startswith("tile-") for n in names)
    assert [n.rsplit(".", 1)[1] for n in names] == ["png", "jpg", "png"]
    config = TileStache.parseConfig(str(cfg))
    for name, (z, x, y, ext) in zip(names, [(3, 4, 2, "png"), (2, 1, 1, "jpg"), (3, 4, 2, "png")]):
        with open(name, "rb") as file:
            assert file.read() == TileStache.getTile(config.layers["poly"], Coordinate(y, x, z), ext)[1]
    assert (3, 4, 2) in disk_tiles(tmp_path / "cache", "poly")  # through the cache, as getTile


def test_render_bad_coordinate_renders_nothing(tmp_path):
    cfg = write_config(tmp_path, {"poly": polygons_layer(tmp_path)})
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = tool("render", "-c", cfg, "-l", "poly", "1/0/0.png", "1/x/0.png", env_extra={"TMPDIR": str(temp)})
    assert result.returncode == 2 and "1/x/0.png" in result.stderr and result.stdout == ""
    assert os.listdir(temp) == []
    missing = tool("render", "-l", "poly", "1/0/0.png")
    assert missing.returncode == 2 and "--config" in missing.stderr


def test_render_and_compose_include_path(tmp_path):
    folder, cfg = outside_plugin_config(tmp_path)
    result = tool("render", "-c", cfg, "-l", "world", "--include-path", folder, "0/0/0.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Image.open(result.stdout.strip()).size == (256, 256)
    os.unlink(result.stdout.strip())
    out = tmp_path / "map.png"
    composed = tool("compose", "-c", cfg, "-l", "world", "-i", folder, "-n", 0, 0, "-z", 1, "-d", 64, 64, out)
    assert composed.returncode == 0, composed.stderr
    assert Image.open(out).size == (64, 64)


# -- tilestache-compose --------------------------------------------------------

EXTENT = (66.51326044311186, -90, -66.51326044311186, 90)  # tiles 2/1/1 .. 2/2/2


def test_compose_center_zoom_dimensions_to_the_output_argument(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    out = tmp_path / "map.png"
    # centred on the corner of tiles 3/3/1, 3/4/1, 3/3/2 and 3/4/2: a quarter of each
    result = tool("compose", "-c", cfg, "-l", "world", "-d", 256, 128, "-n", 66.51326044311186, 0, "-z", 3, out)
    assert result.returncode == 0, result.stderr
    tiles = layer_tiles(cfg, "world", 3, [3, 4, 5], [1, 2, 3])
    assert same(Image.open(out), tiles.crop((128, 192, 384, 320)))


def test_compose_extent_and_dimensions_and_extent_and_zoom(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    expected = layer_tiles(cfg, "world", 2, [1, 2], [1, 2])
    assert tool("compose", "-c", cfg, "-l", "world", "-d", 512, 512, "-e", *EXTENT, tmp_path / "a.png").returncode == 0
    assert same(Image.open(tmp_path / "a.png"), expected)
    # extent and zoom: the image takes the extent's size at that zoom
    result = tool("compose", "-c", cfg, "-l", "world", "-e", *EXTENT, "-z", 2, tmp_path / "b.png")
    assert result.returncode == 0, result.stderr
    assert same(Image.open(tmp_path / "b.png"), expected)
    deeper = tool("compose", "-c", cfg, "-l", "world", "-e", *EXTENT, "-z", 3, tmp_path / "c.png")
    assert deeper.returncode == 0 and Image.open(tmp_path / "c.png").size == (1024, 1024)


def test_compose_defaults_and_conflicts(tmp_path, upstream):
    out = tmp_path / "map.png"
    result = tool("compose", "--url-template", upstream.url + "/tiles/{Z}/{X}/{Y}.png", out)
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (900, 600)
    zxy = [tuple(int(v) for v in r.path[len("/tiles/"):-len(".png")].split("/")) for r in upstream.requests]
    center = (14, *tile_xy(37.8044, -122.2712, 14))
    assert center in zxy and {z for z, _, _ in zxy} == {14}
    assert {x for _, x, _ in zxy} == set(range(center[1] - 2, center[1] + 3))  # 900 px: 5 columns
    for args, message in ((["-e", *EXTENT, "-n", 0, 0], "not both"), (["-e", *EXTENT, "-z", 2, "-d", 9, 9], "not both"),
                          ([], "missing output file")):
        bad = tool("compose", "--url-template", upstream.url + "/tiles/{Z}/{X}/{Y}.png", *args,
                   *([tmp_path / "x.png"] if args else []))
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    assert not (tmp_path / "x.png").exists()


def test_compose_verbose_and_ignore_cached(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log", rows=1, columns=1, buffer=0)})
    out = tmp_path / "map.png"
    args = ("-c", cfg, "-l", "world", "-e", *EXTENT, "-d", 512, 512, out)
    result = tool("compose", "--verbose", *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines[:-1]) == sorted(
        f"world/2/{x}/{y}.png" for x in (1, 2) for y in (1, 2))
    assert str(out) in lines[-1] and "(512, 512)" in lines[-1]
    assert len(rendered(tmp_path / "log")) == 4
    assert tool("compose", *args).stdout == ""
    assert len(rendered(tmp_path / "log")) == 4  # from the cache
    assert tool("compose", "-x", *args).returncode == 0
    assert len(rendered(tmp_path / "log")) == 8


# -- tilestache-server ---------------------------------------------------------

def test_server_include_path_ip_port_config(tmp_path):
    folder, cfg = outside_plugin_config(tmp_path)
    port = free_port()
    process = subprocess.Popen([os.path.join(BIN, "tilestache-server"), "-c", str(cfg), "-i", "127.0.0.1",
                                "-p", str(port), "--include-path", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/world/0/0/0.png", timeout=30) as response:
            assert response.status == 200 and Image.open(io.BytesIO(response.read())).size == (256, 256)
    finally:
        process.terminate()
        process.wait(10)
    without = subprocess.run([os.path.join(BIN, "tilestache-server"), "-c", str(cfg), "-p", str(free_port())],
                             capture_output=True, text=True, timeout=60)
    assert without.returncode == 2 and "outside_plugin" in without.stderr


@pytest.mark.parametrize("name", ["seed", "clean", "list", "render", "compose", "server"])
def test_py_wrapper_and_console_script_are_the_same_tool(name):
    wrapper = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", f"tilestache-{name}.py"), "--help"],
                             capture_output=True, text=True, timeout=60)
    console = tool(name, "--help")
    assert wrapper.returncode == console.returncode == 0
    assert wrapper.stdout == console.stdout and f"usage: tilestache-{name}" in console.stdout
    assert "--include-path" in console.stdout or name == "list"
