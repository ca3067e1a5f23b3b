"""The preview page in a real browser (Playwright driving Debian's chromium).

Part A serves ``preview_html(...)`` and generated PNG tiles from a tiny
``http.server`` over a loopback socket, so it needs nothing but the page.
Part B runs the real ``TileStache.WSGITileServer`` with a Mapnik layer over
``examples/world.xml`` under Werkzeug and opens ``/{layer}/preview.html``.
"""

from __future__ import annotations

import io
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from TileStache.Preview import preview_html

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",  # WebGL (MapLibre) in software
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parent.parent
TILE_PATH = re.compile(r"^/(?P<layer>[^/]+)/(?P<z>\d+)/(?P<x>-?\d+)/(?P<y>-?\d+)\.(?P<ext>\w+)$")

# Every tile <img> Leaflet has created is loaded (and there is at least one).
ALL_TILES_LOADED = """() => {
    const tiles = [...document.querySelectorAll('img.leaflet-tile')];
    return tiles.length > 0 && tiles.every(t => t.classList.contains('leaflet-tile-loaded'));
}"""

# Whether a loaded tile has more than one colour (i.e. something was drawn).
TILE_HAS_CONTENT = """(img) => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 4; i < d.length; i += 4) {
        if (d[i] !== d[0] || d[i+1] !== d[1] || d[i+2] !== d[2] || d[i+3] !== d[3]) return true;
    }
    return false;
}"""


# --- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the whole test run."""
    from playwright import sync_api

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run the README's test command (it installs chromium)"
    playwright = sync_api.sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser):
    """A fresh page that records every URL it requests and any JS error."""
    context = browser.new_context(viewport={"width": 800, "height": 600})
    page = context.new_page()
    page.requested = []
    page.errors = []
    page.dialogs = []
    page.on("request", lambda request: page.requested.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _tile_png(z: int, x: int, y: int, size: int) -> bytes:
    """A recognisable tile: a colour from its coordinate, a border, a label."""
    from PIL import Image, ImageDraw

    colour = (60 + 40 * (x % 5), 80 + 35 * (y % 5), 120 + 25 * (z % 5))
    image = Image.new("RGB", (size, size), colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(255, 255, 255))
    draw.text((10, 10), f"{z}/{x}/{y}", fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class _TileServer:
    """Loopback HTTP server for /demo/preview.html and /demo/z/x/y.png."""

    def __init__(self):
        self.html = ""
        self.tile_size = 256
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.paths.append(self.path)
                match = TILE_PATH.match(self.path)
                if self.path == "/demo/preview.html":
                    self._send(200, "text/html; charset=utf-8", server.html.encode())
                elif match and match["layer"] == "demo" and match["ext"] == "png":
                    z, x, y = int(match["z"]), int(match["x"]), int(match["y"])
                    self._send(200, "image/png", _tile_png(z, x, y, server.tile_size))
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, status, content_type, body):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def tiles(self) -> list[re.Match]:
        return [m for m in map(TILE_PATH.match, list(self.paths)) if m]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def tile_server():
    server = _TileServer()
    yield server
    server.close()


def _open(page, url: str):
    page.goto(url)
    page.wait_for_function(ALL_TILES_LOADED)
    return page.query_selector_all("img.leaflet-tile-loaded")


def _only_local(page, base_url: str):
    outside = [u for u in page.requested  # blob: URLs are made in the page (MapLibre's worker), not fetched
               if not u.startswith(base_url + "/") and not u.startswith("blob:" + base_url + "/")]
    assert outside == [], f"page reached outside the tile server: {outside}"


# --- the HTML itself ------------------------------------------------------------


def test_page_is_standalone_html_with_inlined_leaflet():
    html = preview_html("roads", "png")
    assert html.startswith("<!DOCTYPE html>")
    assert "<title>roads</title>" in html
    assert "Leaflet 1.9.4" in html  # the vendored library, inlined
    assert ".leaflet-container" in html  # and its CSS
    assert '"{z}/{x}/{y}.png"' in html  # relative template
    assert "<script src" not in html
    assert re.findall(r"<link[^>]*>", html) == ['<link rel="icon" href="data:,">']
    assert "sourceMappingURL" not in html


def test_layer_name_is_escaped():
    evil = '</script><script>alert("x")</script><b>&'
    html = preview_html(evil, "png")
    assert evil not in html
    assert "<title>&lt;/script&gt;&lt;script&gt;alert(&quot;x&quot;)" in html


@pytest.mark.parametrize(
    "kwargs",
    [
        {"projection": "mollweide"},
        {"extension": "png{x}"},
        {"extension": "png\"></script>"},
        {"tile_size": 0},
        {"center": (float("nan"), 0.0)},
        {"min_zoom": 5, "max_zoom": 4},
        {"grid": {"resolutions": [], "transformation": [1, 0, 0, 0, -1, 0]}},
        {"grid": {"resolutions": [4, -2], "transformation": [1, 0, 0, 0, -1, 0]}},
        {"grid": {"resolutions": [4, 2], "transformation": [1, 0, 0, 0, 0, 0]}},  # not invertible
        {"grid": {"resolutions": [4, 2]}},
    ],
)
def test_bad_arguments_raise_value_error(kwargs):
    arguments = {"layer_name": "roads", "extension": "png"} | kwargs
    layer_name, extension = arguments.pop("layer_name"), arguments.pop("extension")
    with pytest.raises(ValueError):
        preview_html(layer_name, extension, **arguments)


# --- part A: the page against a tiny loopback tile server -------------------------


def test_preview_requests_and_draws_tiles(page, tile_server):
    tile_server.html = preview_html("Demo <layer>", "png", zoom=1)
    tiles = _open(page, tile_server.url + "/demo/preview.html")

    assert len(tiles) >= 1
    assert page.title() == "Demo <layer>"
    assert page.inner_text("#layer-name") == "Demo <layer>"
    requested = tile_server.tiles()
    assert requested, tile_server.paths
    assert {m["ext"] for m in requested} == {"png"}
    assert {int(m["z"]) for m in requested} == {1}
    assert all(0 <= int(m[k]) < 2 for m in requested for k in ("x", "y"))
    assert tiles[0].evaluate("img => img.naturalWidth") == 256
    assert tiles[0].evaluate(TILE_HAS_CONTENT)
    assert page.errors == []
    _only_local(page, tile_server.url)
    assert "/favicon.ico" not in tile_server.paths  # the page brings its own (empty) icon
    page.screenshot(path="/tmp/preview.png")


def test_layer_name_cannot_inject_script(page, tile_server):
    evil = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'
    tile_server.html = preview_html(evil, "png")
    _open(page, tile_server.url + "/demo/preview.html")
    assert page.dialogs == []
    assert page.errors == []
    assert page.title() == evil
    assert page.inner_text("#layer-name") == evil


def test_wgs84_zoom_zero_is_two_columns_one_row(page, tile_server):
    tile_server.html = preview_html("demo", "png", projection="WGS84", zoom=0)
    _open(page, tile_server.url + "/demo/preview.html")
    coords = {(int(m["z"]), int(m["x"]) % 2, int(m["y"])) for m in tile_server.tiles()}
    assert coords == {(0, 0, 0), (0, 1, 0)}


def test_512_pixel_tiles_keep_their_zoom_and_size(page, tile_server):
    tile_server.tile_size = 512
    tile_server.html = preview_html("demo", "png", tile_size=512, zoom=2)
    tiles = _open(page, tile_server.url + "/demo/preview.html")
    requested = tile_server.tiles()
    assert {int(m["z"]) for m in requested} == {2}
    assert all(0 <= int(m[k]) < 4 for m in requested for k in ("x", "y"))
    assert tiles[0].evaluate("img => img.naturalWidth") == 512
    assert tiles[0].evaluate("img => img.width") == 512


def test_url_hash_sets_and_follows_the_view(page, tile_server):
    tile_server.html = preview_html("demo", "png", zoom=1, center=(0.0, 0.0))
    _open(page, tile_server.url + "/demo/preview.html#3/51.5/-0.1")
    # London at zoom 3 is tile 3/3/2; the view starts there, not at 1/0/0.
    requested = {(int(m["z"]), int(m["x"]), int(m["y"])) for m in tile_server.tiles()}
    assert {z for z, _, _ in requested} == {3}
    assert (3, 3, 2) in requested

    # Moving the map rewrites the hash...
    page.evaluate("tilestachePreview.setView([10, 20], 4, {animate: false})")
    page.wait_for_function("() => location.hash.startsWith('#4/10.')")
    zoom, lat, lon = page.evaluate("location.hash").removeprefix("#").split("/")
    assert (int(zoom), float(lat), float(lon)) == (4, pytest.approx(10, abs=0.01), pytest.approx(20, abs=0.01))

    # ...and editing the hash moves the map.
    page.evaluate("location.hash = '#5/-33.9/151.2'")
    page.wait_for_function("() => tilestachePreview.getZoom() === 5")
    center = page.evaluate("tilestachePreview.getCenter()")
    assert center["lat"] == pytest.approx(-33.9, abs=0.01)
    assert center["lng"] == pytest.approx(151.2, abs=0.01)


# --- part B: the real server ---------------------------------------------------------


def _serving(app):
    """Serve a WSGI app under Werkzeug on loopback; the server has ``url`` and ``log`` ((path, status) pairs)."""
    from werkzeug.serving import make_server

    log: list[tuple[str, str]] = []

    def logged(environ, start_response):
        def start(status, headers, *exc_info):
            log.append((environ.get("PATH_INFO", ""), status))
            return start_response(status, headers, *exc_info)

        return app(environ, start)

    server = make_server("127.0.0.1", 0, logged, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.log = log
    server.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def world_server():
    """TileStache.WSGITileServer with a Mapnik world layer, under Werkzeug."""
    import TileStache

    mapfile = REPO / "examples" / "world.xml"
    assert mapfile.exists(), mapfile
    config = TileStache.parseConfig(
        {
            "cache": {"name": "Test"},
            "layers": {
                "world": {
                    "provider": {"name": "mapnik", "mapfile": str(mapfile)},
                    "preview": {"lat": 20, "lon": 0, "zoom": 1, "ext": "png"},
                }
            },
        }
    )
    yield from _serving(TileStache.WSGITileServer(config))


def test_real_server_preview_draws_mapnik_tiles(page, world_server):
    response = page.goto(world_server.url + "/world/preview.html")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    page.wait_for_function(ALL_TILES_LOADED)
    tiles = page.query_selector_all("img.leaflet-tile-loaded")

    assert len(tiles) >= 1
    assert page.title() == "world"
    tile_requests = [(p, s) for p, s in world_server.log if TILE_PATH.match(p)]
    assert tile_requests, world_server.log
    assert all(p.endswith(".png") for p, _ in tile_requests)
    assert all(s.startswith("200") for _, s in tile_requests), tile_requests
    assert tiles[0].evaluate("img => img.naturalWidth") == 256
    assert any(t.evaluate(TILE_HAS_CONTENT) for t in tiles)  # Mapnik drew something
    assert page.errors == []
    _only_local(page, world_server.url)
    page.screenshot(path="/tmp/preview-world.png")


@pytest.fixture
def rt90_server(tmp_path):
    """TileStache.WSGITileServer with the Proj4Projection goodie's EPSG:2400 grid and a red box over Sweden."""
    import TileStache
    from test_goodies_proj4 import layer_config

    config = layer_config(tmp_path, preview={"lat": 59.5, "lon": 18, "zoom": 4, "ext": "png"})
    yield from _serving(TileStache.WSGITileServer(TileStache.parseConfig(config)))


def test_proj4_layer_preview_draws_its_own_grid_around_the_preview_point(page, rt90_server):
    from PIL import Image

    from test_goodies_proj4 import tile_of

    page.goto(rt90_server.url + "/rt90/preview.html")
    page.wait_for_function(ALL_TILES_LOADED)
    tiles = [p for p, status in rt90_server.log if TILE_PATH.match(p)]
    assert all(status.startswith("200") for p, status in rt90_server.log if TILE_PATH.match(p))
    assert all(p.startswith("/rt90/4/") for p in tiles), tiles  # the grid's zoom 4, not a mercator one
    column, row = tile_of(18, 59.5, 4)
    assert f"/rt90/4/{column}/{row}.png" in tiles
    # The box (17-19 E, 59-60 N) lies where pyproj puts the preview point: the middle of the page is red.
    page.wait_for_function("() => [...document.querySelectorAll('img.leaflet-tile')]"
                           ".every(img => getComputedStyle(img).opacity === '1')")  # faded in
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    assert shot.getpixel((400, 300)) == (220, 20, 60)
    assert shot.getpixel((5, 5)) != (220, 20, 60)  # 590 km west of it, at 512 m a pixel, is not
    # The map works in the grid's projected units: its centre is the preview point's y and x,
    # and so is the URL fragment's.
    from test_goodies_proj4 import TO_RT90

    x, y = TO_RT90.transform(18, 59.5)
    center = page.evaluate("tilestachePreview.getCenter()")
    assert center["lat"] == pytest.approx(y, abs=1) and center["lng"] == pytest.approx(x, abs=1)
    page.evaluate(f"location.hash = '#5/{y + 5000:.0f}/{x:.0f}'")
    page.wait_for_function("() => tilestachePreview.getZoom() === 5")
    center = page.evaluate("tilestachePreview.getCenter()")
    assert center["lat"] == pytest.approx(y + 5000, abs=1) and center["lng"] == pytest.approx(x, abs=1)
    page.wait_for_function(ALL_TILES_LOADED)
    assert f"/rt90/5/{tile_of(18, 59.5, 5)[0]}/" in " ".join(p for p, _ in rt90_server.log)
    assert page.errors == []
    _only_local(page, rt90_server.url)


# --- part C: vector layers in MapLibre GL JS --------------------------------------------


@pytest.fixture
def vector_server(tmp_path):
    """TileStache.WSGITileServer with a file-backed vector layer and a PMTiles MVT archive, under Werkzeug."""
    from pmtiles.tile import Compression, TileType

    import TileStache
    from formats_helpers import mvt_tiles, vector_layer_spec, write_archive

    archive = write_archive(tmp_path / "squares.pmtiles", mvt_tiles((0, 1, 2, 3)), TileType.MVT, Compression.GZIP,
                            {"vector_layers": [{"id": "squares", "fields": {"label": "String"}}]})
    config = TileStache.parseConfig({"cache": {"name": "Test"}, "layers": {
        "files": vector_layer_spec(tmp_path),
        "archive": {"provider": {"name": "pmtiles", "tileset": str(archive)},
                    "preview": {"ext": "mvt", "lat": 50, "lon": 10, "zoom": 3}}}})
    yield from _serving(TileStache.WSGITileServer(config))


MAP_IDLE = "() => window.tilestachePreview && window.tilestachePreview.loaded() && " \
           "window.tilestachePreview.areTilesLoaded()"


def _screen_pixel(page, lon: float, lat: float) -> tuple[int, int, int]:
    """The colour on screen at a place on the map."""
    from PIL import Image

    x, y = page.evaluate("([lon, lat]) => { const p = window.tilestachePreview.project([lon, lat]);"
                         " return [Math.round(p.x), Math.round(p.y)]; }", [lon, lat])
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    return shot.getpixel((x, y))


BACKGROUND = (0xF8, 0xF8, 0xF4)


def test_vector_preview_draws_each_source_layer_in_maplibre(page, vector_server):
    response = page.goto(vector_server.url + "/files/preview.html")
    assert response.status == 200 and "maplibre-gl.js" in response.text()
    page.wait_for_function(MAP_IDLE)
    assert page.title() == "files"
    tile_requests = [(p, s) for p, s in vector_server.log if TILE_PATH.match(p)]
    assert tile_requests and all(p.endswith(".mvt") for p, _ in tile_requests)
    assert all(s.startswith("200") for _, s in tile_requests), tile_requests
    assert ("/files/maplibre-gl.js", "200 OK") in vector_server.log
    assert ("/files/maplibre-gl.css", "200 OK") in vector_server.log

    assert _screen_pixel(page, 5, 55) != BACKGROUND  # inside the polygon of "areas"
    assert _screen_pixel(page, 10, 50) != _screen_pixel(page, 5, 55)  # the "towns" circle, another colour
    assert _screen_pixel(page, -20, 60) == BACKGROUND  # no data there: nothing drawn
    layers = page.evaluate("() => window.tilestachePreview.getStyle().layers.map(l => l.id)")
    assert {"areas-fill", "roads-line", "towns-circle"} <= set(layers)

    x, y = page.evaluate("() => { const p = window.tilestachePreview.project([10, 50]); return [p.x, p.y]; }")
    page.mouse.click(x, y)
    popup = page.wait_for_selector(".maplibregl-popup-content")
    assert "label" in popup.inner_text() and "Middle" in popup.inner_text()
    assert page.errors == []
    _only_local(page, vector_server.url)
    page.screenshot(path="/tmp/preview-vector.png")


def test_vector_preview_of_a_pmtiles_archive_takes_gzipped_tiles(page, vector_server):
    page.goto(vector_server.url + "/archive/preview.html")
    page.wait_for_function(MAP_IDLE)
    tile_requests = [(p, s) for p, s in vector_server.log if TILE_PATH.match(p)]
    assert tile_requests and all(s.startswith("200") for _, s in tile_requests), tile_requests
    assert _screen_pixel(page, 10, 50) != BACKGROUND  # the squares cover every tile
    assert page.errors == []
    _only_local(page, vector_server.url)


def test_raster_layers_keep_leaflet_and_vector_pages_need_no_glyphs():
    from TileStache.Preview import vector_preview_html, vector_style

    assert "L.tileLayer" in preview_html("roads", "png")
    style = vector_style("{z}/{x}/{y}.mvt", ["a", "b"], 0, 14)
    assert "glyphs" not in style and "sprite" not in style
    assert {layer["type"] for layer in style["layers"]} == {"background", "fill", "line", "circle"}
    colours = {layer["paint"]["fill-color"] for layer in style["layers"] if layer["type"] == "fill"}
    assert len(colours) == 2
    page = vector_preview_html("<b>x</b>", "pbf", ["a"])
    assert "<b>x</b>" not in page and "{z}/{x}/{y}.pbf" in page
