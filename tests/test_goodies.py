"""The original's Goodies under their 1.51 class paths: sample configs load and serve, bad kwargs fail at load."""
import io
import json
import os

import pytest
from ModestMaps.Core import Coordinate
from PIL import Image, ImageChops
from werkzeug.test import Client

import TileStache
from TileStache.Config import buildConfiguration
from TileStache.Errors import ConfigError
from TileStache.Mapnik import decode_id

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = os.path.join(ROOT, "examples", "world.xml")
GOODIES = "TileStache.Goodies.Providers."


def build(layers, cache=None, dirpath=ROOT):
    return buildConfiguration({"cache": cache or {"name": "Test"}, "layers": layers}, dirpath)


def goodie(name, **kwargs):
    return {"provider": {"class": GOODIES + name + ":Provider", "kwargs": kwargs}}


# -- dead goodies ----------------------------------------------------------------

@pytest.mark.parametrize("path, instead", [
    (GOODIES + "Cascadenik:Provider", "mapnik"),
    (GOODIES + "MirrorOSM:Provider", "osm2pgsql"),
    (GOODIES + "TileDataOSM:Provider", "vector"),
    (GOODIES + "SolrGeoJSON:Provider", "vector"),
])
def test_dead_goodie_is_a_config_error_naming_it_and_the_way_instead(path, instead):
    with pytest.raises(ConfigError) as error:
        build({"old": {"provider": {"class": path, "kwargs": {"mapfile": "style.mml"}}}})
    assert error.value.layer == "old"
    assert path in error.value.message and instead in error.value.message


def test_status_server_points_at_metrics():
    from TileStache.Goodies.StatusServer import WSGIServer
    with pytest.raises(ConfigError, match="/metrics"):
        WSGIServer("tilestache.cfg")


# -- kwargs checking ---------------------------------------------------------------

def test_unknown_kwarg_names_layer_and_key():
    with pytest.raises(ConfigError) as error:
        build({"g": goodie("MapnikGrid", mapfile=WORLD, fields=["name"], colour="red")})
    assert (error.value.layer, error.value.key) == ("g", "provider.colour")


def test_missing_required_kwarg_names_layer_and_key():
    with pytest.raises(ConfigError) as error:
        build({"g": goodie("MapnikGrid", mapfile=WORLD)})
    assert (error.value.layer, error.value.key) == ("g", "provider.fields")


# -- MapnikGrid --------------------------------------------------------------------

def test_mapnik_grid_sample_config_serves_wrapped_grid():
    config = build({"g": goodie("MapnikGrid", mapfile="examples/world.xml", fields=["name"],
                                layer_index=0, wrapper="grid", scale=4)})
    mime, body = TileStache.getTile(config.layers["g"], Coordinate(2, 2, 2), "json")
    assert mime.startswith("application/json")
    assert body.startswith(b"grid(") and body.endswith(b")")
    grid = json.loads(body[5:-1])
    assert len(grid["grid"]) == 64
    names = {d["name"] for d in grid["data"].values()}
    assert "Angola" in names
    plain = build({"g": {"provider": {"name": "mapnik grid", "mapfile": WORLD, "fields": ["name"]}}})
    assert json.loads(TileStache.getTile(plain.layers["g"], Coordinate(2, 2, 2), "json")[1]) == grid


def test_mapnik_grid_rejects_png_and_bad_buffer():
    client = Client(TileStache.WSGITileServer(build({"g": goodie("MapnikGrid", mapfile=WORLD, fields=["name"])})))
    response = client.get("/g/2/2/2.png")
    assert response.status_code == 400 and b"Traceback" not in response.get_data()
    with pytest.raises(ConfigError) as error:
        build({"g": goodie("MapnikGrid", mapfile=WORLD, fields=["name"], buffer=-3)})
    assert (error.value.layer, error.value.key) == ("g", "provider.buffer")


# -- Monkeycache ---------------------------------------------------------------------

def test_monkeycache_serves_what_the_seeded_cache_holds(tmp_path):
    disk = {"name": "Disk", "path": str(tmp_path / "cache")}
    seeded = build({"expensive-layer": {"provider": {"name": "mapnik", "mapfile": WORLD}}}, cache=disk)
    coord = Coordinate(1, 1, 2)
    _, original = TileStache.getTile(seeded.layers["expensive-layer"], coord, "png")
    cheap = build({"cheap-layer": goodie("Monkeycache", layer_name="expensive-layer",
                                          cache_config=disk, format="png")})
    mime, body = TileStache.getTile(cheap.layers["cheap-layer"], coord, "png")
    assert mime == "image/png" and body == original
    response = Client(TileStache.WSGITileServer(cheap)).get("/cheap-layer/2/0/0.png")
    assert response.status_code == 404 and b"expensive-layer" in response.get_data()


def test_monkeycache_bad_cache_config_names_the_key():
    with pytest.raises(ConfigError) as error:
        build({"c": goodie("Monkeycache", layer_name="x", cache_config={"name": "Nowhere"})})
    assert (error.value.layer, error.value.key) == ("c", "provider.cache_config")


# -- Composite -----------------------------------------------------------------------

def open_rgba(body):
    image = Image.open(io.BytesIO(body))
    image.load()
    return image.convert("RGBA")


def max_difference(a, b):
    return max(high for _, high in ImageChops.difference(a, b).getextrema())


COMPOSITE_STACK = [{"color": "#336699"}, [{"src": "world", "mask": "world"}, {"src": "world", "zoom": "5-9"}]]


def composite_config(tmp_path, **kwargs):
    return build({"world": {"provider": {"name": "mapnik", "mapfile": WORLD}},
                  "composite": goodie("Composite", **kwargs)}, dirpath=str(tmp_path))


def reference_composite(config, coord):
    """The stack drawn with Pillow: blue under (world masked by its own luminance and alpha [+ world])."""
    world = open_rgba(TileStache.getTile(config.layers["world"], coord, "png")[1])
    masked = world.copy()
    masked.putalpha(ImageChops.multiply(world.getchannel("A"),
                                        ImageChops.multiply(world.convert("L"), world.getchannel("A"))))
    group = Image.alpha_composite(Image.new("RGBA", world.size, (0, 0, 0, 0)), masked)
    if 5 <= coord.zoom <= 9:
        group = Image.alpha_composite(group, world)
    return Image.alpha_composite(Image.new("RGBA", world.size, (0x33, 0x66, 0x99, 255)), group)


@pytest.mark.parametrize("coord", [Coordinate(1, 2, 2), Coordinate(11, 18, 5)])
def test_composite_matches_a_reference_composition(tmp_path, coord):
    config = composite_config(tmp_path, stack=COMPOSITE_STACK)
    mime, body = TileStache.getTile(config.layers["composite"], coord, "png")
    assert mime == "image/png"
    got, want = open_rgba(body), reference_composite(config, coord)
    assert max_difference(got, want) <= 2
    assert len(got.getcolors(1 << 16)) > 20  # the world shows through, not a flat colour


def test_composite_stack_from_json_file_and_xml_stackfile(tmp_path):
    coord = Coordinate(1, 2, 2)
    (tmp_path / "stack.json").write_text(json.dumps(COMPOSITE_STACK))
    (tmp_path / "stack.xml").write_text('<?xml version="1.0"?>\n<stack><layer color="#336699"/>'
                                        '<stack><layer src="world"><mask src="world"/></layer></stack></stack>')
    inline = composite_config(tmp_path, stack=COMPOSITE_STACK)
    want = open_rgba(TileStache.getTile(inline.layers["composite"], coord, "png")[1])
    for kwargs in ({"stack": "stack.json"}, {"stackfile": "stack.xml"}):
        config = composite_config(tmp_path, **kwargs)
        got = open_rgba(TileStache.getTile(config.layers["composite"], coord, "png")[1])
        assert max_difference(got, want) == 0, kwargs


@pytest.mark.parametrize("kwargs, words", [
    ({}, "needs a stack"),
    ({"stack": "missing.json"}, "cannot read"),
    ({"stack": [{"src": "nowhere"}]}, "not a layer"),
    ({"stack": [{"src": "world", "mode": "dissolve"}]}, "unknown mode"),
    ({"stack": [[]]}, "empty stack"),
    ({"stackfile": "missing.xml"}, "cannot read stackfile"),
])
def test_bad_composite_fails_at_load(tmp_path, kwargs, words):
    with pytest.raises(ConfigError) as error:
        composite_config(tmp_path, **kwargs)
    assert error.value.layer == "composite" and error.value.key.startswith("provider")
    assert words in str(error.value)


# -- UtfGridComposite --------------------------------------------------------------

def utf_config(**kwargs):
    grid = lambda index, wrapper: goodie("MapnikGrid", mapfile=WORLD, fields=["name"], layer_index=index,
                                          wrapper=wrapper)
    return build({"countries": grid(0, "grid"), "cities": grid(1, None),
                  "both": goodie("UtfGridComposite", **kwargs)})


def test_utfgrid_composite_later_layers_win_with_layer_ids():
    config = utf_config(stack=[{"layer_id": "c", "src": "countries", "wrapper": "grid"},
                               {"layer_id": "p", "src": "cities"}], layer_id="l", wrapper="cb")
    coord = Coordinate(32, 38, 6)  # Nairobi's tile
    body = TileStache.getTile(config.layers["both"], coord, "json")[1]
    assert body.startswith(b"cb(") and body.endswith(b")")
    merged = json.loads(body[3:-1])
    countries = json.loads(TileStache.getTile(config.layers["countries"], coord, "json")[1][5:-1])
    cities = json.loads(TileStache.getTile(config.layers["cities"], coord, "json")[1])

    def at(grid, row, column):
        key = grid["keys"][decode_id(grid["grid"][row][column])]
        return grid["data"].get(key)

    city_cells = 0
    for row in range(64):
        for column in range(64):
            top, bottom = at(cities, row, column), at(countries, row, column)
            want = dict(top, l="p") if top else (dict(bottom, l="c") if bottom else None)
            assert at(merged, row, column) == want
            city_cells += top is not None
    assert city_cells > 0 and {"name": "Kenya", "l": "c"} in merged["data"].values()


@pytest.mark.parametrize("kwargs, words", [
    ({"stack": [{"src": "nowhere"}]}, "not another layer"),
    ({"stack": [{"src": "cities", "colour": "red"}]}, "unknown keys"),
    ({"stack": []}, "non-empty"),
])
def test_bad_utfgrid_composite_fails_at_load(kwargs, words):
    with pytest.raises(ConfigError) as error:
        utf_config(**kwargs)
    assert error.value.layer == "both" and words in str(error.value)
