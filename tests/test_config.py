"""Configuration: sources (dict, file, URL), defaults, plug-ins, and errors naming layer and key."""
import http.server
import json
import logging
import os
import threading
from pathlib import Path

import pytest

import TileStache
from TileStache import Caches, Geography
from TileStache.Errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
WORLD = str(REPO / "examples" / "world.xml")


def layer_config(**layer):
    spec = {"provider": {"class": "plugins:GridPainter"}}
    spec.update(layer)
    return {"cache": {"name": "Test"}, "layers": {"demo": spec}}


def test_defaults_match_the_original():
    layer = TileStache.parseConfig(layer_config()).layers["demo"]
    assert isinstance(layer.projection, Geography.SphericalMercator)
    assert (layer.metatile.rows, layer.metatile.columns, layer.metatile.buffer) == (1, 1, 0)
    assert layer.stale_lock_timeout == 15
    assert layer.cache_lifespan is None
    assert layer.write_cache is True
    assert layer.dim == 256
    assert layer.max_cache_age is None and layer.allowed_origin is None
    assert (layer.preview_lat, layer.preview_lon, layer.preview_zoom, layer.preview_ext) == (37.80, -122.26, 10, "png")
    assert layer.name() == "demo"


def test_every_layer_key_is_read():
    config = TileStache.parseConfig(layer_config(**{
        "projection": "WGS84", "metatile": {"rows": 2, "columns": 3, "buffer": 8},
        "preview": {"lat": 1, "lon": 2, "zoom": 3, "ext": "jpg"}, "stale lock timeout": 5,
        "cache lifespan": 60, "write cache": False, "bounds": {"north": 10, "south": -10, "west": -10, "east": 10},
        "allowed origin": "*", "maximum cache age": 300, "redirects": {"jpeg": "jpg"},
        "tile height": 512, "jpeg options": {"quality": 50}, "png options": {"optimize": True},
    }))
    layer = config.layers["demo"]
    assert isinstance(layer.projection, Geography.WGS84)
    assert (layer.metatile.rows, layer.metatile.columns, layer.metatile.buffer) == (2, 3, 8)
    assert (layer.preview_lat, layer.preview_lon, layer.preview_zoom, layer.preview_ext) == (1, 2, 3, "jpg")
    assert (layer.stale_lock_timeout, layer.cache_lifespan, layer.write_cache) == (5, 60, False)
    assert (layer.allowed_origin, layer.max_cache_age, layer.redirects) == ("*", 300, {"jpeg": "jpg"})
    assert layer.dim == 512 and layer.jpeg_options == {"quality": 50} and layer.png_options == {"optimize": True}
    assert layer.bounds is not None


def test_file_config_resolves_paths_against_its_folder(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "hello.html").write_text("<h1>hi</h1>")
    (folder / "tilestache.cfg").write_text(json.dumps({
        "cache": {"name": "Disk", "path": "cache"},
        "index": "hello.html",
        "layers": {"world": {"provider": {"name": "mapnik", "mapfile": os.path.relpath(WORLD, folder)}}},
    }))
    config = TileStache.parseConfig(str(folder / "tilestache.cfg"))
    assert config.dirpath == str(folder)
    assert config.cache.cachepath == str(folder / "cache")
    assert config.layers["world"].provider.mapfile == WORLD
    assert config.index == ("text/html", b"<h1>hi</h1>")


def test_config_from_a_url(tmp_path):
    (tmp_path / "remote.cfg").write_text(json.dumps(layer_config()))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/remote.cfg"
        config = TileStache.parseConfig(url)
        assert list(config.layers) == ["demo"]
        assert config.dirpath == f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def test_plugin_classes_with_kwargs(tmp_path):
    config = TileStache.parseConfig({
        "cache": {"class": "TileStache.Caches:Disk", "kwargs": {"path": str(tmp_path), "dirs": "portable"}},
        "layers": {"demo": {"provider": {"class": "plugins:GridPainter", "kwargs": {"delay": 0.5}},
                            "projection": "TileStache.Geography:WGS84()"}},
    })
    assert isinstance(config.cache, Caches.Disk) and config.cache.dirs == "portable"
    assert config.layers["demo"].provider.delay == 0.5
    assert isinstance(config.layers["demo"].projection, Geography.WGS84)


def test_logging_key_sets_the_level():
    root = logging.getLogger()
    before = root.level
    try:
        TileStache.parseConfig({"logging": "debug", "layers": {}})
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(before)


def test_default_cache_is_test():
    assert isinstance(TileStache.parseConfig({"layers": {}}).cache, Caches.Test)


@pytest.mark.parametrize("config, layer, key, words", [
    (layer_config(provider={"name": "nope"}), "demo", "provider", "unknown provider"),
    ({"cache": {"name": "Floppy"}, "layers": {}}, None, "cache", "unknown cache"),
    (layer_config(provider={"name": "mapnik"}), "demo", "provider.mapfile", "mapfile"),
    (layer_config(provider={"name": "mapnik", "mapfile": "/no/such/style.xml"}), "demo", "provider.mapfile", "does not exist"),
    (layer_config(metatile=4), "demo", "metatile", "expected dict"),
    (layer_config(**{"tile height": "256"}), "demo", "tile height", "expected int"),
    (layer_config(**{"write cache": "yes"}), "demo", "write cache", "expected bool"),
    (layer_config(**{"stale lock timeout": True}), "demo", "stale lock timeout", "expected number"),
    (layer_config(metatile={"rows": 0}), "demo", "metatile", ">= 1"),
    (layer_config(bounds={"north": -10, "south": 10}), "demo", "bounds", "south"),
    (layer_config(bounds={"nort": 10}), "demo", "bounds", "unknown bounds keys"),
    (layer_config(projection="lambert"), "demo", "projection", "unknown projection"),
    (layer_config(provider={"class": "no_such_module:Thing"}), "demo", "provider", "cannot import"),
    (layer_config(provider={"name": "proxy"}), "demo", "provider.url", "url or a provider"),
    (layer_config(provider={"name": "proxy", "url": "ftp://x/{Z}"}), "demo", "provider.url", "http"),
    (layer_config(provider={"name": "url template", "template": "http://x/$xmin", "source projection": "nope"}),
     "demo", "provider.source projection", "unknown projection"),
    (layer_config(provider={"name": "mapnik", "mapfile": WORLD, "colour": 1}), "demo", "provider.colour", "colour"),
    ({"cache": {"name": "Disk", "path": "/tmp/x", "dirs": "sideways"}, "layers": {}}, None, "cache", "dirs"),
    ({"layers": {"a/b": {"provider": {"class": "plugins:GridPainter"}}}}, "a/b", None, "layer names"),
    ({"layers": {"demo": {}}}, "demo", "provider", "needs a provider"),
    ({"layers": [1]}, None, "layers", "expected dict"),
])
def test_bad_config_names_layer_and_key(config, layer, key, words):
    with pytest.raises(ConfigError) as caught:
        TileStache.parseConfig(config)
    error = caught.value
    assert (error.layer, error.key) == (layer, key)
    assert words in str(error)
    if layer:
        assert repr(layer) in str(error)


def test_broken_mapnik_style_fails_at_load(tmp_path):
    style = tmp_path / "broken.xml"
    style.write_text("<Map><Layer name='x'><Datasource><Parameter name='type'>shape</Parameter>"
                     "<Parameter name='file'>missing.shp</Parameter></Datasource></Layer></Map>")
    with pytest.raises(ConfigError, match="cannot load"):
        TileStache.parseConfig(layer_config(provider={"name": "mapnik", "mapfile": str(style)}))


def test_invalid_json_file_names_the_line(tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text('{\n  "layers": {\n    "a": 1,\n  }\n}')
    with pytest.raises(ConfigError, match=r"bad.cfg is not valid JSON: .* line 4"):
        TileStache.parseConfig(str(path))


def test_missing_config_file():
    with pytest.raises(ConfigError, match="cannot read configuration"):
        TileStache.parseConfig("/no/such/tilestache.cfg")


def test_bundled_config_loads():
    config = TileStache.parseConfig(str(REPO / "tilestache.cfg"))
    assert "world" in config.layers
