"""The original's URLs and answers at their edges: paths, JSONP, refusals, umask, file:// paths,
verbatim upstream bytes, the Test cache's ignored keys, a Redis that dies under load."""
import io
import json
import os
import signal
import stat
import threading
import time

import pytest
from ModestMaps.Core import Coordinate
from PIL import Image, PngImagePlugin
from werkzeug.test import Client, EnvironBuilder

import services
import TileStache
from TileStache import Config


def paint_config(**more):
    layers = {"paint": {"provider": {"class": "plugins:GridPainter"}},
              "data": {"provider": {"class": "plugins:JsonTiles"}},
              "picky": {"provider": {"class": "plugins:Picky"}}}
    return TileStache.parseConfig({"cache": {"name": "Test"}, "layers": layers, **more})


# -- paths -------------------------------------------------------------------

def test_path_info_without_its_leading_slash_is_served():
    config = paint_config()
    status, headers, body = TileStache.requestHandler2(config, "paint/1/0/0.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(body)).size == (256, 256)
    assert body == TileStache.requestHandler2(config, "/paint/1/0/0.png")[2]

    # The same through the WSGI application, as a CGI or mod_wsgi set-up would call it.
    environ = EnvironBuilder(path="/paint/1/0/0.png").get_environ()
    environ["PATH_INFO"] = "paint/1/0/0.png"
    answers = []
    chunks = TileStache.WSGITileServer(config)(environ, lambda status, fields: answers.append(status))
    assert answers == ["200 OK"] and b"".join(chunks) == body


def test_layer_with_a_trailing_slash_is_its_preview_page():
    client = Client(TileStache.WSGITileServer(paint_config()))
    slash, page = client.get("/paint/"), client.get("/paint/preview.html")
    assert slash.status_code == page.status_code == 200
    assert slash.headers["Content-Type"].startswith("text/html")
    assert slash.data == page.data and b"paint" in slash.data
    assert client.get("/nosuchlayer/").status_code == 404
    assert TileStache.requestHandler2(paint_config(), "paint/")[0] == 200


def test_a_providers_known_unknown_refusal_of_an_extension_is_a_400():
    client = Client(TileStache.WSGITileServer(paint_config()))
    refused = client.get("/picky/1/0/0.jpg")
    assert refused.status_code == 400
    assert refused.headers["Content-Type"].startswith("text/plain")
    assert b"Picky only draws png" in refused.data and b"Traceback" not in refused.data
    assert client.get("/picky/1/0/0.png").status_code == 200
    assert TileStache.requestHandler2(paint_config(), "/picky/1/0/0.gif")[0] == 400


# -- JSONP -------------------------------------------------------------------

BAD_CHARACTERS = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\u2028", "\u2029", "\u00e9", " ", "("]


@pytest.mark.parametrize("character", BAD_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", ["end", "middle", "start"])
def test_callback_with_a_control_character_or_line_separator_is_refused(character, where):
    callback = {"end": "cb" + character, "middle": "c" + character + "b", "start": character + "cb"}[where]
    client = Client(TileStache.WSGITileServer(paint_config()))
    response = client.get("/data/1/0/0.json", query_string={"callback": callback})
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert not response.data.startswith(callback.encode("utf-8", "replace")[:2])
    assert b"cb" not in response.data and b"(" not in response.data


def test_callback_newline_escape_from_the_issue():
    status, headers, body = TileStache.requestHandler2(paint_config(), "/data/1/0/0.json", "callback=cb%0A")
    assert status == 400 and not body.startswith(b"cb")


@pytest.mark.parametrize("callback", ["cb", "$", "_x.y$1", "jQuery1102.handle_2"])
def test_plain_identifier_paths_are_accepted(callback):
    status, headers, body = TileStache.requestHandler2(paint_config(), "/data/1/0/0.json", f"callback={callback}")
    assert status == 200 and headers["Content-Type"].startswith("application/javascript")
    assert body.startswith(callback.encode() + b"(") and body.endswith(b")")
    assert json.loads(body[len(callback) + 1:-1])["zoom"] == 1


# -- Disk umask --------------------------------------------------------------

def modes(root):
    folders = {stat.S_IMODE(os.stat(p).st_mode) for p, _, _ in os.walk(root)}
    files = {stat.S_IMODE(os.stat(os.path.join(p, f)).st_mode) for p, _, names in os.walk(root) for f in names}
    return folders, files


@pytest.mark.parametrize("cache", [{"name": "Disk"}, {"name": "LimitedDisk", "limit": 10_000_000}])
@pytest.mark.parametrize("umask, folder_mode, file_mode", [("0000", 0o777, 0o666), ("0022", 0o755, 0o644),
                                                           ("0027", 0o750, 0o640)])
def test_disk_umask_applies_to_folders_and_tiles(tmp_path, cache, umask, folder_mode, file_mode):
    root = tmp_path / "cache" / "deeper"  # a cache root with a missing parent
    previous = os.umask(0o077)  # the process's own umask must not decide
    try:
        config = TileStache.parseConfig({"cache": {**cache, "path": str(root), "umask": umask},
                                         "layers": {"paint": {"provider": {"class": "plugins:GridPainter"}}}})
        assert TileStache.requestHandler2(config, "/paint/3/2/1.png")[0] == 200
        layer = config.layers["paint"]
        config.cache.lock(layer, Coordinate(5, 5, 5), "PNG")
        lock_dirs = [p for p in root.rglob("*.lock")]
        assert len(lock_dirs) == 1 and stat.S_IMODE(lock_dirs[0].stat().st_mode) == folder_mode
        config.cache.unlock(layer, Coordinate(5, 5, 5), "PNG")
    finally:
        os.umask(previous)
    folders, files = modes(tmp_path / "cache")
    assert folders == {folder_mode} and files == {file_mode}  # LimitedDisk's index and its -wal, -shm too
    assert len(list(root.rglob("*.png"))) == 1


# -- file:// paths -----------------------------------------------------------

def test_disk_path_as_a_file_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "srv" / "tiles"
    config = TileStache.parseConfig({"cache": {"name": "Disk", "path": "file://" + str(target), "dirs": "portable"},
                                     "layers": {"paint": {"provider": {"class": "plugins:GridPainter"}}}})
    assert config.cache.cachepath == str(target)
    assert TileStache.requestHandler2(config, "/paint/2/1/1.png")[0] == 200
    assert (target / "paint" / "2" / "1" / "1.png").is_file()
    assert not os.path.exists(tmp_path / "file:")


def test_file_urls_for_index_palette_and_vector_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "index.html").write_bytes(b"<h1>my tiles</h1>")
    palette = bytes([0, 0, 0, 255, 255, 255]) + bytes(762)  # two colours, .act of 768 bytes
    (tmp_path / "two.act").write_bytes(palette)
    (tmp_path / "points.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [10, 10]}, "properties": {"n": "a"}}]}))
    url = "file://" + str(tmp_path)
    config = TileStache.parseConfig({
        "cache": {"name": "Test"}, "index": url + "/index.html",
        "layers": {"paint": {"provider": {"class": "plugins:GridPainter"}, "png options": {"palette": url + "/two.act"}},
                   "points": {"provider": {"name": "vector", "driver": "GeoJSON",
                                           "parameters": {"file": url + "/points.geojson"}}}}})
    assert TileStache.requestHandler2(config, "/") [2] == b"<h1>my tiles</h1>"
    image = Image.open(io.BytesIO(TileStache.requestHandler2(config, "/paint/1/0/0.png")[2]))
    assert image.mode == "P" and set(image.getdata()) <= {0, 1}
    body = TileStache.requestHandler2(config, "/points/0/0/0.geojson")[2]
    assert [f["properties"]["n"] for f in json.loads(body)["features"]] == ["a"]


def test_relative_paths_join_a_file_url_folder(tmp_path):
    config = Config.buildConfiguration({"cache": {"name": "Disk", "path": "tiles"}}, "file://" + str(tmp_path) + "/")
    assert config.cache.cachepath == str(tmp_path / "tiles")
    assert Config.resolve_path("/etc", "file:///srv/my%20tiles") == "/srv/my tiles"
    assert Config.resolve_path("/etc", "http://example.com/x.xml") == "http://example.com/x.xml"


# -- the Test cache ----------------------------------------------------------

def test_test_cache_ignores_the_keys_the_original_ignored():
    # The cache block of the original's sample tilestache.cfg.
    config = TileStache.parseConfig({"cache": {"name": "Test", "path": "/tmp/stache", "umask": "0000"},
                                     "layers": {"paint": {"provider": {"class": "plugins:GridPainter"}}}})
    assert TileStache.requestHandler2(config, "/paint/0/0/0.png")[0] == 200
    assert not os.path.exists("/tmp/stache/paint")


# -- Proxy and URL Template: upstream bytes as they came ----------------------

def odd_png(size=(256, 256)) -> bytes:
    """A PNG no encoder of ours writes: it carries a text chunk and is stored without compression."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "from upstream")
    buffer = io.BytesIO()
    Image.new("RGB", size, (0, 128, 255)).save(buffer, "PNG", pnginfo=info, compress_level=0)
    return buffer.getvalue()


def remote(tmp_path, provider, **layer):
    return TileStache.parseConfig({"cache": {"name": "Disk", "path": str(tmp_path), "dirs": "portable"},
                                   "layers": {"remote": {"provider": provider, **layer}}})


@pytest.mark.parametrize("kind", ["proxy", "url template"])
def test_upstream_png_is_passed_through_byte_for_byte(tmp_path, upstream, kind):
    upstream.bodies["/tile.png"] = ("image/png", odd_png())
    provider = {"name": "proxy", "url": upstream.url + "/tile.png?{Z}{X}{Y}"} if kind == "proxy" \
        else {"name": "url template", "template": upstream.url + "/tile.png?bbox=$xmin"}
    config = remote(tmp_path, provider)
    status, headers, body = TileStache.requestHandler2(config, "/remote/1/0/0.png")
    assert status == 200 and body == odd_png()
    assert (tmp_path / "remote" / "1" / "0" / "0.png").read_bytes() == odd_png()


@pytest.mark.parametrize("kind", ["proxy", "url template"])
def test_one_pixel_upstream_image_is_served_as_is(tmp_path, upstream, kind):
    tiny = odd_png((1, 1))
    upstream.bodies["/tiny.png"] = ("image/png", tiny)
    provider = {"name": "proxy", "url": upstream.url + "/tiny.png?{Z}{X}{Y}"} if kind == "proxy" \
        else {"name": "url template", "template": upstream.url + "/tiny.png?bbox=$xmin"}
    status, headers, body = TileStache.requestHandler2(remote(tmp_path, provider), "/remote/0/0/0.png")
    assert status == 200 and body == tiny


@pytest.mark.parametrize("layer_options", [
    {"pixel effect": {"name": "greyscale"}},
    {"png options": {"palette256": True}},
    {"metatile": {"rows": 2, "columns": 2}},
], ids=["pixel effect", "palette", "metatile"])
def test_url_template_reencodes_only_when_it_must(tmp_path, upstream, layer_options):
    upstream.bodies["/wms"] = ("image/png", odd_png((512, 512)) if "metatile" in layer_options else odd_png())
    config = remote(tmp_path, {"name": "url template", "template": upstream.url + "/wms?bbox=$xmin"}, **layer_options)
    status, headers, body = TileStache.requestHandler2(config, "/remote/1/0/0.png")
    assert status == 200 and body != odd_png()
    image = Image.open(io.BytesIO(body))
    assert image.format == "PNG" and image.size == (256, 256) and "Comment" not in image.info
    r, g, b = image.convert("RGB").getpixel((10, 10))
    if "pixel effect" in layer_options:
        assert r == g == b
    else:
        assert (abs(r - 0), abs(g - 128), abs(b - 255)) < (8, 8, 8)


def test_proxy_reencodes_for_another_format_and_a_pixel_effect(tmp_path, upstream):
    upstream.bodies["/tile.png"] = ("image/png", odd_png())
    config = remote(tmp_path, {"name": "proxy", "url": upstream.url + "/tile.png?{Z}{X}{Y}"},
                    **{"pixel effect": {"name": "greyscale"}})
    body = TileStache.requestHandler2(config, "/remote/1/0/0.jpg")[2]
    image = Image.open(io.BytesIO(body))
    assert image.format == "JPEG"
    r, g, b = image.getpixel((10, 10))
    assert abs(r - g) < 4 and abs(g - b) < 4
    png = TileStache.requestHandler2(config, "/remote/1/1/0.png")[2]
    assert png != odd_png() and len(set(Image.open(io.BytesIO(png)).convert("RGB").getpixel((5, 5)))) == 1


# -- Redis killed under load ---------------------------------------------------

def test_redis_killed_under_load_answers_every_request_quickly(tmp_path):
    """A fault test: redis-server gets SIGKILL while four threads ask for tiles; none waits long."""
    server = services.RedisServer()
    try:
        config = TileStache.parseConfig({
            "cache": {"name": "Redis", "host": server.host, "port": server.port, "key prefix": "load"},
            "layers": {"paint": {"provider": {"class": "plugins:GridPainter"}}}})
        answered, lock = [], threading.Lock()
        goal = {"count": 40, "reached": threading.Event()}

        def worker(number):
            column = 0
            while not goal["reached"].is_set() or goal["count"] == 40:
                column += 1
                path = f"/paint/10/{column % 1024}/{number}.png" if column % 3 else "/paint/10/0/0.png"
                before = time.monotonic()
                status = TileStache.requestHandler2(config, path)[0]
                with lock:
                    answered.append((time.monotonic() - before, status))
                    if len(answered) >= goal["count"]:
                        goal["reached"].set()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        assert goal["reached"].wait(60), "no load before the kill"
        os.kill(server.pid, signal.SIGKILL)
        server.proc.wait(10)
        with lock:
            killed_at = len(answered)
            goal["reached"].clear()
            goal["count"] = killed_at + 200
        assert goal["reached"].wait(60), "requests stopped after the kill"
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        server.stop()
    assert len(answered) >= killed_at + 200
    assert {status for _, status in answered} == {200}
    slowest = max(seconds for seconds, _ in answered)
    assert slowest < 1.0, f"a request waited {slowest:.2f} s after redis-server was killed"
