"""AreaServer and ExternalConfigServer goodies: WSGI applications under the original's class paths."""
from __future__ import annotations

import io
import json
import os

import pytest
from ModestMaps.Core import Coordinate
from PIL import Image, ImageChops
from werkzeug.test import Client

import TileStache
from TileStache.Errors import ConfigError
from TileStache.Goodies import AreaServer, ExternalConfigServer

from services import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = os.path.join(ROOT, "examples", "world.xml")
HALF = 20037508.342789244  # half the spherical mercator world's width, in metres


def world_config(**layer_keys):
    layer = {"provider": {"name": "mapnik", "mapfile": WORLD}, **layer_keys}
    return {"cache": {"name": "Test"}, "layers": {"world": layer,
            "proxy": {"provider": {"name": "proxy", "url": "http://127.0.0.1:9/{Z}/{X}/{Y}.png"}}}}


def area(client, layer="world", **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return client.get(f"/{layer}?{query}")


# -- AreaServer ----------------------------------------------------------------------

def test_area_server_draws_the_box_as_the_tile_of_that_box():
    # Tile 1/0/0 is the north-west quarter of the world: the same box as an area is the same picture.
    config = TileStache.parseConfig(world_config(**{"allowed origin": "*", "maximum cache age": 60}))
    client = Client(AreaServer.WSGIServer(config))
    response = area(client, width=256, height=256, xmin=-HALF, ymin=0, xmax=0, ymax=HALF)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert "Expires" in response.headers
    image = Image.open(io.BytesIO(response.data)).convert("RGBA")
    assert image.size == (256, 256)
    _, body = TileStache.getTile(config.layers["world"], Coordinate(0, 0, 1), "png")
    tile = Image.open(io.BytesIO(body)).convert("RGBA")
    assert len(image.getcolors(65536)) > 2  # land and sea, not a blank
    assert ImageChops.difference(image, tile).getbbox() is None


def test_area_server_sizes_follow_width_and_height_and_other_parameters_are_ignored():
    client = Client(AreaServer.WSGIServer(world_config()))
    response = area(client, width=600, height=300, xmin=-HALF, ymin=-HALF / 2, xmax=HALF, ymax=HALF / 2,
                    srs="EPSG:4326", format="jpeg")
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.data)).size == (600, 300)
    assert "Cache-Control" not in response.headers  # no maximum cache age configured


def test_area_server_takes_a_config_path_like_the_tile_server(tmp_path):
    path = tmp_path / "area.cfg"
    path.write_text(json.dumps(world_config()))
    client = Client(AreaServer.WSGIServer(str(path)))
    assert area(client, width=10, height=10, xmin=0, ymin=0, xmax=1000, ymax=1000).status_code == 200
    assert client.get("/health").data == b"ok\n"


@pytest.mark.parametrize("query, status, words", [
    ("height=10&xmin=0&ymin=0&xmax=1&ymax=1", 400, 'Missing "width"'),
    ("width=10&height=10&xmin=0&ymin=0&xmax=1", 400, 'Missing "ymax"'),
    ("width=ten&height=10&xmin=0&ymin=0&xmax=1&ymax=1", 400, '"width" must be a whole number'),
    ("width=0&height=10&xmin=0&ymin=0&xmax=1&ymax=1", 400, "from 1 to 8192"),
    ("width=10&height=100000&xmin=0&ymin=0&xmax=1&ymax=1", 400, "from 1 to 8192"),
    ("width=10&height=10&xmin=west&ymin=0&xmax=1&ymax=1", 400, '"xmin" must be a number'),
    ("width=10&height=10&xmin=nan&ymin=0&xmax=1&ymax=1", 400, "finite"),
    ("width=10&height=10&xmin=5&ymin=0&xmax=1&ymax=1", 400, "xmin < xmax"),
])
def test_area_server_bad_parameters_get_a_short_400(query, status, words):
    client = Client(AreaServer.WSGIServer(world_config()))
    response = client.get("/world?" + query)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/plain")
    assert words in response.get_data(as_text=True)


def test_area_server_unknown_layer_is_404_and_a_tile_only_provider_is_400():
    client = Client(AreaServer.WSGIServer(world_config()))
    params = dict(width=10, height=10, xmin=0, ymin=0, xmax=1, ymax=1)
    assert area(client, "nowhere", **params).status_code == 404
    assert area(client, "", **params).status_code == 404
    response = area(client, "proxy", **params)
    assert response.status_code == 400
    assert "renderArea" in response.get_data(as_text=True)


# -- ExternalConfigServer --------------------------------------------------------------

@pytest.fixture
def service(upstream, tmp_path):
    """A configuration service on the loopback upstream: /cfg/cache and /cfg/layer/world."""
    root = "/status/404/cfg"  # any path without a body answers 404: "no such layer"
    upstream.bodies[root + "/cache"] = ("application/json", json.dumps(
        {"name": "Disk", "path": str(tmp_path / "cache")}).encode())
    upstream.bodies[root + "/layer/world"] = ("application/json", json.dumps(
        {"provider": {"name": "mapnik", "mapfile": WORLD}, "allowed origin": "*"}).encode())
    upstream.bodies[root + "/layer/broken"] = ("application/json", b"{not json")
    upstream.bodies[root + "/layer/badkey"] = ("application/json", json.dumps(
        {"provider": {"name": "mapnik", "mapfile": WORLD, "nonsense": 1}}).encode())
    upstream.root = upstream.url + root
    return upstream


def asked(service, name):
    return [r for r in service.requests if r.path.endswith("/layer/" + name)]


def test_external_config_serves_the_services_layer_into_its_cache(service, tmp_path):
    client = Client(ExternalConfigServer.WSGIServer(service.root))
    response = client.get("/world/1/0/0.png")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert Image.open(io.BytesIO(response.data)).size == (256, 256)
    assert len(list((tmp_path / "cache" / "world" / "1").rglob("*.png"))) == 1
    assert client.get("/world/1/1/0.png").status_code == 200
    assert len(asked(service, "world")) == 1  # the layer was built once and reused


def test_external_config_unknown_or_unusable_layers_are_404_and_remembered(service):
    client = Client(ExternalConfigServer.WSGIServer(service.root))
    for name in ("missing", "broken", "badkey"):
        for _ in range(2):
            response = client.get(f"/{name}/0/0/0.png")
            assert response.status_code == 404, name
            assert response.get_data(as_text=True) == f"Unknown layer: {name}\n"
        assert len(asked(service, name)) == 1, name


def test_external_config_without_caching_asks_once_per_request(service):
    client = Client(ExternalConfigServer.WSGIServer(service.root, cache_responses=False))
    for _ in range(3):
        assert client.get("/world/0/0/0.png").status_code == 200
        assert client.get("/missing/0/0/0.png").status_code == 404
    assert len(asked(service, "world")) == 3
    assert len(asked(service, "missing")) == 3


def test_external_config_layer_names_are_quoted_into_the_service_url(service):
    client = Client(ExternalConfigServer.WSGIServer(service.root))
    assert client.get("/..%3Fx=1/0/0/0.png").status_code == 404
    assert any(r.path.endswith("/layer/..%3Fx%3D1") for r in service.requests)


def test_external_config_service_failing_is_502_or_504_and_not_remembered(service):
    server = ExternalConfigServer.WSGIServer(service.root, timeout=0.5)
    client = Client(server)
    layers = server.config.layers
    layers.url_root = f"http://127.0.0.1:{free_port()}/cfg"  # nobody listens there any more
    assert client.get("/world/0/0/0.png").status_code == 502
    service.slow_seconds = 3
    layers.url_root = service.url + "/slow/cfg"
    response = client.get("/world/0/0/0.png")
    assert response.status_code == 504
    assert "timed out" in response.get_data(as_text=True)
    layers.url_root = service.root  # the service is back: the layer was not marked unknown
    assert client.get("/world/0/0/0.png").status_code == 200


def test_external_config_without_a_cache_document_fails_at_start(upstream):
    with pytest.raises(ConfigError) as error:
        ExternalConfigServer.WSGIServer(upstream.url + "/status/500")
    assert error.value.key == "cache"
    assert "500" in str(error.value)
    with pytest.raises(ConfigError):
        ExternalConfigServer.WSGIServer(upstream.url + "/status/404")
