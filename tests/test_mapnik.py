"""Mapnik providers on the bundled world style: UTFGrids, @2x tiles, metatiles vs single tiles."""
import io
import json
import os
import re

import pytest
from ModestMaps.Core import Coordinate
from ModestMaps.Geo import Location
from PIL import Image, ImageChops, ImageStat
from werkzeug.test import Client

import TileStache
from TileStache.Errors import ConfigError
from TileStache.Mapnik import decode_id, encode_id, merge_grids

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = os.path.join(ROOT, "examples", "world.xml")


def build(layers, cache=None):
    return TileStache.parseConfig({"cache": cache or {"name": "Test"}, "layers": layers})


def open_png(body):
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def mean_difference(a, b):
    """Mean absolute difference per channel, averaged over channels (0-255)."""
    stat = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB")))
    return sum(stat.mean) / len(stat.mean)


# -- UTFGrid -------------------------------------------------------------------

def grid_layer(**provider):
    return {"provider": dict({"name": "mapnik grid", "mapfile": WORLD}, **provider)}


def decode(body):
    grid = json.loads(body)
    assert set(grid) == {"grid", "keys", "data"}
    return grid


def feature_at(grid, x, y, scale=4):
    """The data of the feature at pixel (x, y) of a decoded grid, or None."""
    key = grid["keys"][decode_id(grid["grid"][y // scale][x // scale])]
    return grid["data"].get(key)


def pixel_of(location, zoom):
    """(tile coordinate, pixel x, pixel y) of a location at a zoom, spherical mercator."""
    layer = build({"x": grid_layer()}).layers["x"]
    point = layer.projection.locationCoordinate(location).zoomTo(zoom)
    tile = Coordinate(int(point.row), int(point.column), zoom)
    return tile, int((point.column - tile.column) * 256), int((point.row - tile.row) * 256)


def test_grid_is_consistent():
    config = build({"g": grid_layer(fields=["name", "continent"])})
    mime, body = TileStache.getTile(config.layers["g"], Coordinate(2, 2, 2), "json")
    assert mime.startswith("application/json")
    grid = decode(body)
    assert len(grid["grid"]) == 64 and all(len(row) == 64 for row in grid["grid"])
    used = {decode_id(char) for row in grid["grid"] for char in row}
    assert max(used) < len(grid["keys"])                    # every character names a key
    assert {grid["keys"][i] for i in used} - {""} == set(grid["data"])  # every drawn key has data, and only those
    assert all(set(datum) == {"name", "continent"} for datum in grid["data"].values())
    assert len(grid["data"]) > 10


@pytest.mark.parametrize("place, lat, lon, zoom", [
    ("Brazil", -10.0, -52.0, 3),
    ("Australia", -25.0, 134.0, 4),
    ("Canada", 60.0, -100.0, 2),
])
def test_grid_known_feature_at_known_pixel(place, lat, lon, zoom):
    config = build({"g": grid_layer(layer_index=0, fields=["name"])})
    tile, x, y = pixel_of(Location(lat, lon), zoom)
    grid = decode(TileStache.getTile(config.layers["g"], tile, "json")[1])
    assert feature_at(grid, x, y) == {"name": place}


def test_grid_layers_merge_later_on_top_with_layer_names():
    config = build({"g": grid_layer(layers=[[0, ["name"]], [1, ["name"]]], layer_id_key="layer", scale=2)})
    tile, x, y = pixel_of(Location(-1.28, 36.82), 6)  # Nairobi's dot over Kenya
    grid = decode(TileStache.getTile(config.layers["g"], tile, "json")[1])
    assert len(grid["grid"]) == 128
    assert feature_at(grid, x, y, 2) == {"name": "Nairobi", "layer": "city-dots"}
    assert {"name": "Kenya", "layer": "countries"} in grid["data"].values()


def test_merge_grids_renumbers_and_stacks():
    a = {"grid": [encode_id(1) + encode_id(0)], "keys": ["", "7"], "data": {"7": {"n": "a"}}}
    b = {"grid": [encode_id(0) + encode_id(1)], "keys": ["", "7"], "data": {"7": {"n": "b"}}}
    merged = merge_grids([a, b])
    assert merged["keys"] == ["", "1", "2"]
    assert merged["data"] == {"1": {"n": "a"}, "2": {"n": "b"}}
    assert merged["grid"] == [encode_id(1) + encode_id(2)]
    assert [decode_id(encode_id(i)) for i in range(200)] == list(range(200))
    assert '"' not in "".join(encode_id(i) for i in range(200)) and "\\" not in "".join(encode_id(i) for i in range(200))


def test_grid_jsonp_over_wsgi():
    client = Client(TileStache.WSGITileServer(build({"g": grid_layer(fields=["name"])})))
    response = client.get("/g/2/2/2.json?callback=grid.cb")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    body = response.get_data()
    assert body.startswith(b"grid.cb(") and body.endswith(b")")
    assert decode(body[len(b"grid.cb("):-1])["keys"][0] == ""
    assert client.get("/g/2/2/2.png").status_code == 400


@pytest.mark.parametrize("provider, key", [
    ({"layer_index": 4}, "provider.layer_index"),
    ({"layers": [[0, ["name"]], [9, []]]}, "provider.layers"),
    ({"fields": ["no_such_field"]}, "provider.layer_index"),
    ({"scale": 0}, "provider.scale"),
])
def test_bad_grid_config_fails_at_load(provider, key):
    with pytest.raises(ConfigError) as error:
        build({"grid": grid_layer(**provider)})
    assert error.value.layer == "grid" and error.value.key == key


# -- retina --------------------------------------------------------------------

def test_2x_tiles_are_rendered_not_upscaled(tmp_path):
    config = build({"world": {"provider": {"name": "mapnik", "mapfile": WORLD},
                              "metatile": {"rows": 2, "columns": 2, "buffer": 32}}},
                   {"name": "Disk", "path": str(tmp_path), "dirs": "portable"})
    client = Client(TileStache.WSGITileServer(config))
    one = client.get("/world/3/4/2.png")
    two = client.get("/world/3/4/2@2x.png")
    assert one.status_code == two.status_code == 200
    single, double = open_png(one.get_data()), open_png(two.get_data())
    assert single.size == (256, 256) and double.size == (512, 512)
    upscaled = single.resize((512, 512), Image.Resampling.BICUBIC)
    assert mean_difference(double, upscaled) > 2.0  # sharper lines, re-placed labels
    # the same map: shrunk back down, the @2x tile is close to the 1x tile
    assert mean_difference(double.resize((256, 256), Image.Resampling.LANCZOS), single) < 12
    # 1x tiles keep their usual place; @2x tiles live under "world@2x"
    assert (tmp_path / "world" / "3" / "4" / "2.png").is_file()
    assert (tmp_path / "world@2x" / "3" / "4" / "2.png").is_file()
    assert open_png((tmp_path / "world@2x" / "3" / "5" / "3.png").read_bytes()).size == (512, 512)


def test_2x_lines_are_thicker():
    """A 2x render of an area draws borders with twice the pixels of a plain 2x-size render."""
    config = build({"world": {"provider": {"name": "mapnik", "mapfile": WORLD}, "tile height": 512},
                    "retina": {"provider": {"name": "mapnik", "mapfile": WORLD}}})
    big = open_png(TileStache.getTile(config.layers["world"], Coordinate(2, 4, 3), "png")[1])
    retina = open_png(TileStache.getTile(config.layers["retina"].scaled(2), Coordinate(2, 4, 3), "png")[1])
    assert big.size == retina.size == (512, 512)
    assert mean_difference(big, retina) > 1.0


def test_scale_factor_layer_key_with_tile_height():
    config = build({"hd": {"provider": {"name": "mapnik", "mapfile": WORLD}, "tile height": 512, "scale factor": 2},
                    "plain": {"provider": {"name": "mapnik", "mapfile": WORLD}}})
    hd = open_png(TileStache.getTile(config.layers["hd"], Coordinate(2, 4, 3), "png")[1])
    retina = open_png(TileStache.getTile(config.layers["plain"].scaled(2), Coordinate(2, 4, 3), "png")[1])
    assert hd.size == (512, 512)
    assert mean_difference(hd, retina) < 0.5


# -- metatiles -----------------------------------------------------------------

@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """The world style without its label layers: nothing on it depends on its neighbours."""
    text = open(WORLD, encoding="utf-8").read()
    text = re.sub(r'<Layer name="(country|city)-labels".*?</Layer>', "", text, flags=re.S)
    text = text.replace(">data/", ">" + os.path.join(ROOT, "examples", "data") + "/")
    assert "TextSymbolizer" in text and "-labels\"" not in text.split("</Style>")[-1]
    path = tmp_path_factory.mktemp("style") / "unlabelled.xml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def single_and_metatiled(mapfile, coord):
    config = build({"single": {"provider": {"name": "mapnik", "mapfile": mapfile}},
                    "meta": {"provider": {"name": "mapnik", "mapfile": mapfile},
                             "metatile": {"rows": 4, "columns": 4, "buffer": 64}}})
    single = open_png(TileStache.getTile(config.layers["single"], coord, "png")[1]).convert("RGBA")
    meta = open_png(TileStache.getTile(config.layers["meta"], coord, "png")[1]).convert("RGBA")
    return single, meta


COORDS = [Coordinate(2, 4, 3), Coordinate(5, 9, 4), Coordinate(0, 0, 1), Coordinate(23, 37, 6)]


@pytest.mark.parametrize("coord", COORDS)
def test_metatiled_and_single_renders_are_identical_without_labels(coord, unlabelled):
    single, meta = single_and_metatiled(unlabelled, coord)
    worst = max(high for low, high in ImageChops.difference(single, meta).getextrema())
    assert worst <= 2  # polygons, borders and dots: the same pixels, up to antialiasing rounding


@pytest.mark.parametrize("coord", COORDS)
def test_metatiled_and_single_renders_differ_only_in_label_placement(coord):
    single, meta = single_and_metatiled(WORLD, coord)
    changed = ImageChops.difference(single, meta).convert("L").point(lambda v: 255 if v > 8 else 0)
    assert changed.histogram()[255] / (256 * 256) < 0.06  # labels collide with other labels of the metatile


def test_mapfile_as_a_file_url_renders_like_its_path():
    by_path = build({"world": {"provider": {"name": "mapnik", "mapfile": WORLD}}})
    by_url = build({"world": {"provider": {"name": "mapnik", "mapfile": "file://" + WORLD}}})
    tiles = [TileStache.requestHandler2(config, "/world/1/0/0.png") for config in (by_path, by_url)]
    assert [status for status, _, _ in tiles] == [200, 200]
    assert ImageChops.difference(open_png(tiles[0][2]).convert("RGBA"),
                                 open_png(tiles[1][2]).convert("RGBA")).getbbox() is None
