"""Proxy and URL Template providers against a real loopback HTTP upstream."""
import io

import pytest
from ModestMaps.Core import Coordinate
from PIL import Image

import TileStache

HALF = 20037508.342789244


def serve(tmp_path, provider, **layer):
    spec = {"provider": provider}
    spec.update(layer)
    return TileStache.parseConfig({"cache": {"name": "Disk", "path": str(tmp_path), "dirs": "portable"},
                                   "layers": {"remote": spec}})


def cached(tmp_path):
    return sorted(p.name for p in tmp_path.rglob("*") if p.is_file())


def test_proxy_fetches_the_zxy_url_and_passes_bytes_through(tmp_path, upstream):
    config = serve(tmp_path, {"name": "proxy", "url": upstream.url + "/tiles/{Z}/{X}/{Y}.png"})
    status, headers, body = TileStache.requestHandler2(config, "/remote/12/656/1582.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert [r.path for r in upstream.requests] == ["/tiles/12/656/1582.png"]
    assert body == upstream.png(256, 256)
    assert cached(tmp_path) == ["1582.png"]


def test_proxy_reencodes_for_another_format(tmp_path, upstream):
    config = serve(tmp_path, {"name": "proxy", "url": upstream.url + "/t/{Z}/{X}/{Y}.png"})
    mime, body = TileStache.getTile(config.layers["remote"], Coordinate(0, 0, 1), "jpg")
    image = Image.open(io.BytesIO(body))
    assert mime == "image/jpeg" and image.format == "JPEG"
    r, g, b = image.getpixel((100, 100))
    assert abs(r - 0) < 8 and abs(g - 128) < 8 and abs(b - 255) < 8


@pytest.mark.parametrize("path, status", [("/status/500/{Z}/{X}/{Y}", 502), ("/status/404/{Z}/{X}/{Y}", 502),
                                          ("/notimage/{Z}/{X}/{Y}", 502)])
def test_proxy_upstream_failures_are_502_and_not_cached(tmp_path, upstream, path, status):
    config = serve(tmp_path, {"name": "proxy", "url": upstream.url + path})
    code, headers, body = TileStache.requestHandler2(config, "/remote/1/0/0.png")
    assert code == status
    assert headers["Content-Type"].startswith("text/plain") and b"Traceback" not in body
    assert cached(tmp_path) == []


def test_proxy_timeout_is_504_and_not_cached(tmp_path, upstream):
    upstream.slow_seconds = 5
    config = serve(tmp_path, {"name": "proxy", "url": upstream.url + "/slow/{Z}/{X}/{Y}", "timeout": 0.3})
    code, headers, body = TileStache.requestHandler2(config, "/remote/1/0/0.png")
    assert code == 504
    assert cached(tmp_path) == []


def test_proxy_unreachable_upstream_is_502(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = serve(tmp_path, {"name": "proxy", "url": f"http://127.0.0.1:{port}/{{Z}}/{{X}}/{{Y}}.png"})
    assert TileStache.requestHandler2(config, "/remote/1/0/0.png")[0] == 502


def test_proxy_by_modestmaps_provider_name(tmp_path):
    config = serve(tmp_path, {"name": "proxy", "provider": "OPENSTREETMAP"})
    urls = config.layers["remote"].provider.provider.getTileUrls(Coordinate(1582, 656, 12))
    assert urls[0].endswith("/12/656/1582.png")


def test_url_template_mercator_bbox(tmp_path, upstream):
    template = upstream.url + "/wms?bbox=$xmin,$ymin,$xmax,$ymax&width=$width&height=$height&srs=$srs&z=$zoom"
    config = serve(tmp_path, {"name": "url template", "template": template, "referer": "http://example.org/"})
    mime, body = TileStache.getTile(config.layers["remote"], Coordinate(0, 1, 1), "png")
    request = upstream.requests[0]
    xmin, ymin, xmax, ymax = map(float, request.params["bbox"].split(","))
    assert (xmin, ymin, xmax, ymax) == (pytest.approx(0), pytest.approx(0), pytest.approx(HALF), pytest.approx(HALF))
    assert (request.params["width"], request.params["height"], request.params["z"]) == ("256", "256", "1")
    assert "+proj=merc" in request.params["srs"]
    assert request.headers["referer"] == "http://example.org/"
    assert Image.open(io.BytesIO(body)).size == (256, 256)


def test_url_template_wgs84_bbox(tmp_path, upstream):
    template = upstream.url + "/wms?bbox=$xmin,$ymin,$xmax,$ymax&width=$width&height=$height"
    config = serve(tmp_path, {"name": "url template", "template": template}, projection="WGS84")
    TileStache.getTile(config.layers["remote"], Coordinate(1, 3, 2), "png")
    bbox = [float(v) for v in upstream.requests[0].params["bbox"].split(",")]
    assert bbox == [-45.0, 0.0, 0.0, 45.0]


def test_url_template_source_projection_gives_degrees(tmp_path, upstream):
    template = upstream.url + "/wms?bbox=$xmin,$ymin,$xmax,$ymax&srs=$srs"
    config = serve(tmp_path, {"name": "url template", "template": template, "source projection": "WGS84"})
    TileStache.getTile(config.layers["remote"], Coordinate(0, 1, 1), "png")
    params = upstream.requests[0].params
    bbox = [float(v) for v in params["bbox"].split(",")]
    assert bbox == [pytest.approx(0), pytest.approx(0), pytest.approx(180), pytest.approx(85.0511287798)]
    assert "longlat" in params["srs"]


def test_url_template_renders_metatiles(tmp_path, upstream):
    template = upstream.url + "/wms?width=$width&height=$height&bbox=$xmin,$ymin,$xmax,$ymax"
    config = serve(tmp_path, {"name": "url template", "template": template},
                   metatile={"rows": 2, "columns": 2, "buffer": 10})
    TileStache.getTile(config.layers["remote"], Coordinate(0, 0, 2), "png")
    assert len(upstream.requests) == 1
    assert (upstream.requests[0].params["width"], upstream.requests[0].params["height"]) == ("532", "532")
    assert len(cached(tmp_path)) == 4


def test_url_template_wrong_image_size_for_a_metatile_is_502(tmp_path, upstream):
    # A metatile cannot be cut from an image of another size; a single tile is served as it came.
    config = serve(tmp_path, {"name": "url template", "template": upstream.url + "/wms?width=100&height=100"},
                   metatile={"rows": 2, "columns": 2})
    assert TileStache.requestHandler2(config, "/remote/1/0/0.png")[0] == 502
    assert cached(tmp_path) == []
