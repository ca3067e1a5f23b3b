"""The cache-hit response headers, built on the fast path (Core.http_date, appended Headers)."""
import math
import os
import time
from email.utils import formatdate, parsedate_to_datetime

import pytest
from werkzeug.test import Client

import TileStache
from TileStache.Core import http_date


@pytest.mark.parametrize("seconds", [0, 0.5, 59.9999994, 59.9999995, 59.9999996, 951782400.25,
                                     1461792967.9999995, 1735689599.999999, 4102444800.0, -0.0000004, -86400.5])
def test_http_date_is_formatdate_of_the_whole_second(seconds):
    assert http_date(seconds) == formatdate(math.floor(seconds), usegmt=True)


def make_app(tmp_path):
    config = TileStache.parseConfig({
        "cache": {"name": "Disk", "path": str(tmp_path / "cache"), "dirs": "portable"},
        "layers": {"paint": {"provider": {"class": "plugins:GridPainter", "kwargs": {"log": str(tmp_path / "log")}},
                             "maximum cache age": 600, "allowed origin": "*"}},
    })
    return Client(TileStache.WSGITileServer(config))


def test_hit_headers_are_complete_and_unique(tmp_path):
    client = make_app(tmp_path)
    client.get("/paint/3/2/5.png")
    tile = tmp_path / "cache" / "paint" / "3" / "2" / "5.png"
    os.utime(tile, (1700000000.75, 1700000000.75))
    before = time.time()
    response = client.get("/paint/3/2/5.png")
    names = [name.lower() for name, _ in response.headers.items()]
    assert len(names) == len(set(names))
    assert set(names) >= {"content-type", "content-length", "etag", "last-modified", "cache-control",
                          "expires", "access-control-allow-origin"}
    assert response.headers["Last-Modified"] == formatdate(1700000000.75, usegmt=True)
    assert response.headers["Cache-Control"] == "public, max-age=600"
    expires = parsedate_to_datetime(response.headers["Expires"]).timestamp()
    assert int(before) + 600 <= expires <= time.time() + 600
    assert int(response.headers["Content-Length"]) == len(response.data) == tile.stat().st_size


def test_etag_follows_the_cached_bytes(tmp_path):
    client = make_app(tmp_path)
    first = client.get("/paint/3/2/5.png").headers["ETag"]
    assert client.get("/paint/3/2/5.png").headers["ETag"] == first
    tile = tmp_path / "cache" / "paint" / "3" / "2" / "5.png"
    tile.write_bytes((tmp_path / "cache" / "paint" / "3" / "2" / "5.png").read_bytes() + b"\0")
    changed = client.get("/paint/3/2/5.png", headers={"If-None-Match": first})
    assert changed.status_code == 200 and changed.headers["ETag"] != first
