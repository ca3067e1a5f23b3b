"""The WSGI application through Werkzeug's test client: routing, HTTP contract, bad input."""
import gzip
import io
import json
import time
from email.utils import formatdate

import pytest
from PIL import Image
from werkzeug.test import Client

import TileStache


@pytest.fixture
def site(tmp_path):
    config = TileStache.parseConfig({
        "cache": {"name": "Disk", "path": str(tmp_path / "cache"), "dirs": "portable"},
        "layers": {
            "paint": {"provider": {"class": "plugins:GridPainter"}, "maximum cache age": 600,
                      "allowed origin": "*", "redirects": {"jpeg": "jpg"}},
            "data": {"provider": {"class": "plugins:JsonTiles"}},
        },
    })
    return Client(TileStache.WSGITileServer(config)), tmp_path / "cache"


def files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_tile_with_headers(site):
    client, cache = site
    response = client.get("/paint/2/1/1.png")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert Image.open(io.BytesIO(response.data)).size == (256, 256)
    assert response.headers["ETag"].startswith('"')
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["Cache-Control"] == "public, max-age=600"
    expires = response.headers["Expires"]
    assert expires.endswith("GMT") and expires > formatdate(time.time(), usegmt=True)[:5]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert files(cache) == ["paint/2/1/1.png"]


def test_head_is_get_without_body(site):
    client, _ = site
    get = client.get("/paint/2/1/1.png")
    head = client.head("/paint/2/1/1.png")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"]
    assert head.headers["ETag"] == get.headers["ETag"]


def test_etag_and_if_none_match(site):
    client, _ = site
    etag = client.get("/paint/2/1/1.png").headers["ETag"]
    again = client.get("/paint/2/1/1.png", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    assert client.get("/paint/2/1/1.png", headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get("/paint/2/1/1.png", headers={"If-None-Match": f'"x", {etag}'}).status_code == 304


def test_if_modified_since(site):
    client, _ = site
    modified = client.get("/paint/2/1/1.png").headers["Last-Modified"]
    assert client.get("/paint/2/1/1.png", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get("/paint/2/1/1.png",
                      headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200


def test_redirects(site):
    client, _ = site
    response = client.get("/paint/2/1/1.jpeg?x=1")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/paint/2/1/1.jpg?x=1")


def test_redirect_honours_script_name(tmp_path):
    config = TileStache.parseConfig({"layers": {"paint": {"provider": {"class": "plugins:GridPainter"},
                                                          "redirects": {"jpeg": "jpg"}}}})
    status, headers, body = TileStache.requestHandler2(config, "/paint/1/0/0.jpeg", script_name="/tiles")
    assert status == 302 and headers["Location"] == "/tiles/paint/1/0/0.jpg"


def test_jsonp(site):
    client, _ = site
    response = client.get("/data/1/0/1.json?callback=map.receive_1")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert response.data.startswith(b"map.receive_1(") and response.data.endswith(b")")
    assert json.loads(response.data[len("map.receive_1("):-1])["column"] == 0


@pytest.mark.parametrize("callback", ["alert(1)", "a;b", "<script>", "1abc", "a b", "x" * 200, ""])
def test_bad_jsonp_callback_is_400_and_not_echoed(site, callback):
    client, _ = site
    response = client.get("/data/1/0/1.json", query_string={"callback": callback})
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    if callback:
        assert callback.encode() not in response.data


def test_gzipped_json_served_gzipped_to_clients_that_accept_it(site):
    client, cache = site
    plain = client.get("/data/1/0/1.json")
    assert plain.headers.get("Content-Encoding") is None
    assert (cache / "data/1/0/1.json.gz").exists()
    zipped = client.get("/data/1/0/1.json", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] != plain.headers["ETag"]


def test_index_greeting(site):
    client, _ = site
    response = client.get("/")
    assert response.status_code == 200 and b"TileStache" in response.data


def test_preview_page(site):
    client, _ = site
    response = client.get("/paint/preview.html")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"{z}/{x}/{y}.png" in response.data and b"<title>paint</title>" in response.data


@pytest.mark.parametrize("path, status", [
    ("/nope/1/0/0.png", 404),            # unknown layer
    ("/nope/preview.html", 404),
    ("/paint/1/0/0.xyz", 400),           # unknown extension
    ("/paint/1/-1/0.png", 404),          # negative: a URL the original took, outside this world
    ("/paint/1/0/-1.png", 404),
    ("/paint/one/0/0.png", 400),         # non-integer zoom
    ("/paint/1.5/0/0.png", 400),
    ("/paint/1/0/0", 400),               # no extension
    ("/paint/1/0/0/0.png", 400),
    ("/paint/1/2/0.png", 404),           # column outside the world
    ("/paint/1/0/2.png", 404),           # row outside the world
    ("/paint/99/0/0.png", 404),          # absurd zoom
    ("/paint/1/99999999999/0.png", 400),
    ("/paint/" + "9" * 2000, 414),
    ("/paint/../../etc/passwd", 400),
    ("/paint", 400),
])
def test_bad_paths_get_short_text_answers(site, path, status):
    client, cache = site
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/plain")
    assert len(response.data) < 200 and b"Traceback" not in response.data
    assert files(cache) == []


def test_huge_query_string_is_414(site):
    client, cache = site
    response = client.get("/paint/1/0/0.png?" + "a=b&" * 2000)
    assert response.status_code == 414 and files(cache) == []


def test_post_is_405(site):
    client, _ = site
    response = client.post("/paint/1/0/0.png")
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"


def test_provider_crash_is_a_500_without_traceback(tmp_path):
    class Broken:
        def __init__(self, layer):
            pass

        def renderArea(self, *args):
            raise RuntimeError("secret internals at /etc/shadow")

    config = TileStache.parseConfig({"layers": {"bad": {"provider": {"class": "plugins:GridPainter"}}}})
    config.layers["bad"].provider = Broken(None)
    response = Client(TileStache.WSGITileServer(config)).get("/bad/1/0/0.png")
    assert response.status_code == 500
    assert b"secret" not in response.data and b"Traceback" not in response.data


def test_request_handler_returns_mime_and_body(tmp_path):
    config = TileStache.parseConfig({"layers": {"paint": {"provider": {"class": "plugins:GridPainter"}}}})
    mime, body = TileStache.requestHandler(config, "/paint/0/0/0.png")
    assert mime == "image/png" and body.startswith(b"\x89PNG")


def test_autoreload_picks_up_config_changes(tmp_path):
    path = tmp_path / "tilestache.cfg"
    path.write_text(json.dumps({"layers": {"one": {"provider": {"class": "plugins:GridPainter"}}}}))
    client = Client(TileStache.WSGITileServer(str(path), autoreload=True))
    assert client.get("/one/0/0/0.png").status_code == 200
    path.write_text(json.dumps({"layers": {"two": {"provider": {"class": "plugins:GridPainter"}}}}))
    later = time.time() + 5
    import os
    os.utime(path, (later, later))
    assert client.get("/one/0/0/0.png").status_code == 404
    assert client.get("/two/0/0/0.png").status_code == 200
