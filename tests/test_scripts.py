"""tilestache-clean, -list, -render and -compose as subprocesses, and --help for every tool."""
from __future__ import annotations

import io
import json

import pytest
from ModestMaps.Core import Coordinate
from PIL import Image, ImageChops, ImageStat

import TileStache
from script_helpers import (WORLD, bbox_tiles, counting_layer, disk_tiles, polygons_layer, tool, write_config)

TOOLS = ("seed", "clean", "list", "render", "compose")
BOX = (40.5, -5.5, 50.5, 10.5)  # south west north east, edges off tile edges


@pytest.mark.parametrize("name", TOOLS)
def test_help(name):
    result = tool(name, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: tilestache-{name}")


def listed(result) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in line.split("/")) for line in result.stdout.split()}


def test_list_prints_the_tiles_of_a_box():
    result = tool("list", "-b", *BOX, 3, 5, 7)
    assert result.returncode == 0, result.stderr
    assert listed(result) == bbox_tiles(*BOX, [3, 5, 7])
    assert len(result.stdout.split()) == len(listed(result))  # each once
    padded = tool("list", "-b", *BOX, "-p", 2, 6)
    assert listed(padded) == bbox_tiles(*BOX, [6], padding=2)


def test_list_coverage_keeps_tiles_touching_the_polygon(tmp_path):
    south, west, north, east = BOX
    square = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                  [west, north], [west, south]]]}
    triangle = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
        [[west, south], [east, south], [west, north], [west, south]]]}}
    (tmp_path / "square.geojson").write_text(json.dumps(square))
    (tmp_path / "triangle.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [triangle]}))
    by_square = listed(tool("list", "--coverage", tmp_path / "square.geojson", 5, 6))
    assert by_square == bbox_tiles(*BOX, [5, 6])
    by_triangle = listed(tool("list", "--coverage", tmp_path / "triangle.geojson", 5, 6))
    assert by_triangle < by_square
    assert bbox_tiles(south, west, south + 0.1, west + 0.1, [6]) <= by_triangle  # the right-angle corner
    assert not bbox_tiles(north - 0.1, east - 0.1, north, east, [6]) & by_triangle  # the far corner


def test_list_reads_a_tile_list_and_checks_it(tmp_path):
    (tmp_path / "tiles.txt").write_text("# some tiles\n3/1/2\n\n4/15/0.png\n")
    result = tool("list", "--tile-list", tmp_path / "tiles.txt")
    assert result.stdout.split() == ["3/1/2", "4/15/0"]
    (tmp_path / "bad.txt").write_text("3/1/2\n3/x/2\n")
    bad = tool("list", "--tile-list", tmp_path / "bad.txt")
    assert bad.returncode == 2 and "line 2" in bad.stderr
    (tmp_path / "outside.txt").write_text("2/4/0\n")
    assert tool("list", "--tile-list", tmp_path / "outside.txt").returncode == 2


def test_list_of_a_layer_metatiles(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log", rows=4, columns=4)})
    result = tool("list", "-c", cfg, "-l", "world", "--metatiles", *WORLD, 4)
    assert result.stdout.split() == [f"4/{x}/{y}" for y in (0, 4, 8, 12) for x in (0, 4, 8, 12)]


@pytest.mark.parametrize("args, message", [
    (["-b", -89, 0, 5, 5, 3], "outside the projection"),
    (["-b", 0, 0, 5, 5, 32], "zoom 32 is outside"),
    (["-b", 0, 0, 5, 5, "-p", -1, 3], "padding must not be negative"),
])
def test_list_usage_errors(args, message):
    result = tool("list", *args)
    assert result.returncode == 2 and message in result.stderr and result.stdout == ""


def test_clean_removes_exactly_the_selection(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    assert tool("seed", "-c", cfg, "-l", "world", *WORLD, 0, 1, 2, 3, 4).returncode == 0
    before = disk_tiles(tmp_path / "cache", "world")
    result = tool("clean", "-c", cfg, "-l", "world", "-b", *BOX, 3, 4)
    assert result.returncode == 0, result.stderr
    selection = bbox_tiles(*BOX, [3, 4])
    assert selection and selection <= before
    assert disk_tiles(tmp_path / "cache", "world") == before - selection
    # the tiles come back with the next seeding
    assert tool("seed", "-c", cfg, "-l", "world", *WORLD, 0, 1, 2, 3, 4).returncode == 0
    assert disk_tiles(tmp_path / "cache", "world") == before


def test_clean_usage_errors_touch_nothing(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    assert tool("seed", "-c", cfg, "-l", "world", *WORLD, 0, 1).returncode == 0
    before = disk_tiles(tmp_path / "cache", "world")
    for args in (["-l", "world", "-b", -89, 0, 1, 1, 1], ["-l", "other", 1], ["-l", "world"]):
        assert tool("clean", "-c", cfg, *args).returncode == 2
    assert disk_tiles(tmp_path / "cache", "world") == before


def layer_tiles(cfg, layer_name, zoom, columns, rows):
    """An image of getTile tiles pasted side by side, and the configuration."""
    config = TileStache.parseConfig(str(cfg))
    layer = config.layers[layer_name]
    image = Image.new("RGBA", (256 * len(columns), 256 * len(rows)))
    for j, row in enumerate(rows):
        for i, column in enumerate(columns):
            _, body = TileStache.getTile(layer, Coordinate(row, column, zoom), "png")
            image.paste(Image.open(io.BytesIO(body)).convert("RGBA"), (256 * i, 256 * j))
    return image


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGBA"), b.convert("RGBA")).getbbox() is None


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return max(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)


# Tiles 2/1/1 .. 2/2/2: 90 W to 90 E, 66.513260 S to N.
EXTENT = (66.51326044311186, -90, -66.51326044311186, 90)


def test_render_one_tile_matches_get_tile(tmp_path):
    cfg = write_config(tmp_path, {"poly": polygons_layer(tmp_path, rows=2, columns=2, buffer=16)})
    out = tmp_path / "tile.png"
    result = tool("render", "-c", cfg, "-l", "poly", "-o", out, "3/4/2")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "cache").exists()  # the cache is neither read nor written
    assert same(Image.open(out), layer_tiles(cfg, "poly", 3, [4], [2]))


def test_render_an_area_matches_the_tiles(tmp_path):
    cfg = write_config(tmp_path, {"poly": polygons_layer(tmp_path)})
    out = tmp_path / "area.png"
    result = tool("render", "-c", cfg, "-l", "poly", "-e", *EXTENT, "-d", 512, 512, "-o", out)
    assert result.returncode == 0, result.stderr
    area = Image.open(out)
    assert area.size == (512, 512)
    tiles = layer_tiles(cfg, "poly", 2, [1, 2], [1, 2])
    assert mean_difference(area, tiles) < 1.0  # one Mapnik render vs four: same map up to antialiasing
    assert mean_difference(area, tiles.transpose(Image.Transpose.FLIP_TOP_BOTTOM)) > 10


def test_render_by_center_and_size(tmp_path):
    cfg = write_config(tmp_path, {"poly": polygons_layer(tmp_path)})
    out = tmp_path / "area.jpg"
    result = tool("render", "-c", cfg, "-l", "poly", "--center", 0, 0, "-z", 1, "-d", 300, 200, "-o", out)
    assert result.returncode == 0, result.stderr
    image = Image.open(out)
    assert image.format == "JPEG" and image.size == (300, 200)


def test_render_usage_errors(tmp_path):
    cfg = write_config(tmp_path, {"poly": polygons_layer(tmp_path)})
    for args, message in ((["3/8/0"], "outside the world"), (["3/x/0"], "expected z/x/y"),
                          ([], "give a tile"), (["--center", 0, 0, "-z", 40], "zoom 40 is outside")):
        result = tool("render", "-c", cfg, "-l", "poly", "-o", tmp_path / "x.png", *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "x.png").exists()


def test_compose_from_a_layer_matches_get_tile(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    out = tmp_path / "map.png"
    result = tool("compose", "-c", cfg, "-l", "world", "-e", *EXTENT, "-d", 512, 512, "-o", out)
    assert result.returncode == 0, result.stderr
    assert same(Image.open(out), layer_tiles(cfg, "world", 2, [1, 2], [1, 2]))


def test_compose_offset_and_odd_size(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    out = tmp_path / "map.png"
    # centred on the corner of tiles 3/3/1, 3/4/1, 3/3/2 and 3/4/2 (0 E, 66.51326 N): a quarter of each
    result = tool("compose", "-c", cfg, "-l", "world", "--center", 66.51326044311186, 0, "-z", 3,
                  "-d", 256, 128, "-o", out)
    assert result.returncode == 0, result.stderr
    image = Image.open(out)
    tiles = layer_tiles(cfg, "world", 3, [3, 4, 5], [1, 2, 3])
    assert image.size == (256, 128)
    assert same(image, tiles.crop((128, 192, 384, 320)))


def test_compose_from_a_url_template(tmp_path, upstream):
    out = tmp_path / "map.png"
    result = tool("compose", "--url-template", upstream.url + "/tiles/{Z}/{X}/{Y}.png", "-e", *EXTENT,
                  "-d", 512, 512, "-o", out)
    assert result.returncode == 0, result.stderr
    paths = sorted(r.path for r in upstream.requests)
    assert paths == sorted(f"/tiles/2/{x}/{y}.png" for x in (1, 2) for y in (1, 2))
    image = Image.open(out).convert("RGB")
    assert image.size == (512, 512) and image.getcolors() == [(512 * 512, (0, 128, 255))]


def test_compose_reports_failed_tiles(tmp_path, upstream):
    out = tmp_path / "map.png"
    result = tool("compose", "--url-template", upstream.url + "/status/500/{z}/{x}/{y}", "-e", *EXTENT,
                  "-d", 512, 512, "-o", out)
    assert result.returncode == 1
    assert "4 tiles failed" in result.stderr and "2/1/1" in result.stderr


def test_compose_usage_errors(tmp_path):
    for args, message in ((["-e", 1, 2, 3, 4], "give --config and --layer"),
                          (["--url-template", "http://x/{Z}/{X}/{Y}", "-e", 1, 1, 1, 1], "single point"),
                          (["-c", tmp_path / "none.cfg", "-l", "x", "-e", 1, 2, 3, 4], "does not exist")):
        result = tool("compose", *args, "-o", tmp_path / "m.png")
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "m.png").exists()
