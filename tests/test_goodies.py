"""The original's Goodies under their 1.51 class paths: sample configs load and serve, bad kwargs fail at load."""
import json
import os

import pytest
from ModestMaps.Core import Coordinate
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
