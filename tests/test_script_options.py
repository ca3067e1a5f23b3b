"""The original 1.51 command lines of tilestache-seed, -clean and -list, option by option, as subprocesses.

Each test follows the usage text of the original script (its option names,
defaults and output files); our additions are tested in test_seed.py and
test_scripts.py.
"""
from __future__ import annotations

import json
import os
import sqlite3

from counting_provider import rendered
from script_helpers import (ROOT, WORLD, bbox_tiles, counting_layer, disk_tiles, metatile_expand, tool,
                            write_config)

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


def test_seed_and_clean_include_path_load_a_plugin_from_a_folder(tmp_path):
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "outside_plugin.py").write_text(PLUGIN)
    layer = {"provider": {"class": "outside_plugin:Provider", "kwargs": {"mapfile": os.path.join(
        ROOT, "examples", "world.xml")}}}
    cfg = write_config(tmp_path, {"world": layer})
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
    result = tool("seed", "-c", cfg, "-l", "world", "--tile-list", tmp_path / "tiles.txt", "-b", *BOX, 5)
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
