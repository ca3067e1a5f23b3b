"""/WMTSCapabilities.xml read by OWSLib's WebMapTileService over a real socket; its tiles are ours."""
from __future__ import annotations

import os
import threading
import xml.etree.ElementTree as ET

import pytest
from werkzeug.serving import make_server
from werkzeug.test import Client

import TileStache
from formats_helpers import vector_layer_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = os.path.join(ROOT, "examples", "world.xml")
WMTS = "{http://www.opengis.net/wmts/1.0}"
OWS = "{http://www.opengis.net/ows/1.1}"


def config_spec(folder) -> dict:
    return {"cache": {"name": "Test"}, "layers": {
        "world": {"provider": {"name": "mapnik", "mapfile": WORLD},
                  "bounds": {"north": 60, "west": -10, "south": 30, "east": 40, "low": 1, "high": 6}},
        "flat": {"provider": {"name": "mapnik", "mapfile": WORLD}, "projection": "WGS84",
                 "preview": {"ext": "jpg"}, "bounds": {"low": 0, "high": 3}},
        "vectors": vector_layer_spec(folder)}}


@pytest.fixture
def server(tmp_path):
    """The WSGI app over a loopback socket, mounted at /maps."""
    app = TileStache.WSGITileServer(TileStache.parseConfig(config_spec(tmp_path)))

    def mounted(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/maps/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not here\n"]
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = "/maps", path[len("/maps"):]
        return app(environ, start_response)

    httpd = make_server("127.0.0.1", 0, mounted, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/maps", app
    httpd.shutdown()
    httpd.server_close()


def test_owslib_reads_the_capabilities_and_fetches_our_tiles(server):
    from owslib.wmts import WebMapTileService

    url, app = server
    wmts = WebMapTileService(f"{url}/WMTSCapabilities.xml")
    assert sorted(wmts.contents) == ["flat", "world"]  # raster layers only
    world = wmts.contents["world"]
    assert list(world.tilematrixsetlinks) == ["GoogleMapsCompatible"]
    assert wmts.contents["flat"].tilematrixsetlinks.keys() == {"WorldCRS84Quad"}
    west, south, east, north = world.boundingBoxWGS84
    assert (round(west, 3), round(south, 3), round(east, 3), round(north, 3)) == (-10, 30, 40, 60)
    limits = world.tilematrixsetlinks["GoogleMapsCompatible"].tilematrixlimits
    assert sorted(int(z) for z in limits) == [1, 2, 3, 4, 5, 6]
    four = limits["4"]  # 16 x 16 tiles: -10..40 E is columns 7..9, 60..30 N rows 4..6
    assert (four.mintilecol, four.maxtilecol, four.mintilerow, four.maxtilerow) == (7, 9, 4, 6)
    google = wmts.tilematrixsets["GoogleMapsCompatible"]
    assert google.crs == "urn:ogc:def:crs:EPSG::3857"
    assert abs(google.tilematrix["0"].scaledenominator - 559082264.0287178) < 1e-3
    assert google.tilematrix["5"].matrixwidth == 32
    quad = wmts.tilematrixsets["WorldCRS84Quad"]
    assert (quad.tilematrix["0"].matrixwidth, quad.tilematrix["0"].matrixheight) == (2, 1)
    assert abs(quad.tilematrix["0"].scaledenominator - 279541132.0143589) < 1e-3
    assert world.resourceURLs[0]["template"] == f"{url}/world/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png"

    local = Client(app)
    for layer, matrix_set, z, x, y, ext, mime in [("world", "GoogleMapsCompatible", 4, 8, 5, "png", "image/png"),
                                                 ("flat", "WorldCRS84Quad", 1, 2, 1, "jpg", "image/jpeg")]:
        tile = wmts.gettile(layer=layer, tilematrixset=matrix_set, tilematrix=str(z), row=y, column=x, format=mime)
        body = tile.read()
        assert tile.info()["Content-Type"] == mime
        served = local.get(f"/{layer}/{z}/{x}/{y}.{ext}")
        assert served.status_code == 200 and body == served.data and len(body) > 1000


def test_urls_follow_forwarded_headers_and_script_name():
    config = TileStache.parseConfig({"layers": {"world": {"provider": {"name": "mapnik", "mapfile": WORLD}}}})
    response = Client(TileStache.WSGITileServer(config)).get(
        "/WMTSCapabilities.xml", environ_overrides={"SCRIPT_NAME": "/tiles"},
        headers={"Host": "internal:8080", "X-Forwarded-Host": "maps.example.com", "X-Forwarded-Proto": "https"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.data)
    [resource] = root.iter(WMTS + "ResourceURL")
    assert resource.get("template") == "https://maps.example.com/tiles/world/{TileMatrix}/{TileCol}/{TileRow}.png"
    limits = list(root.iter(WMTS + "TileMatrixLimits"))
    assert len(limits) == 25  # no bounds: zooms 0-24, the whole world
    assert [m.findtext(WMTS + "MaxTileCol") for m in limits[:3]] == ["0", "1", "3"]
