"""MBTiles cache and provider on real SQLite files: TMS rows, metadata, WAL, types, MVT, bad files."""
import gzip
import io
import os
import sqlite3

import mapbox_vector_tile
import pytest
from PIL import Image
from werkzeug.test import Client

import TileStache
from cache_helpers import (RED, assert_one_render, assert_removed_then_rendered, coord, get, make_config, renders,
                           solid_colour)
from TileStache.Errors import ConfigError


def query(path, sql, *args):
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


def write_tileset(path, format, tiles):
    """A tileset file made with plain sqlite3: tiles maps (z, x, y) (XYZ rows) -> bytes."""
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE metadata (name TEXT, value TEXT);"
                         "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER,"
                         " tile_row INTEGER, tile_data BLOB);")
        db.executemany("INSERT INTO metadata VALUES (?, ?)", [("name", "t"), ("format", format)])
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                       [(z, x, (1 << z) - 1 - y, body) for (z, x, y), body in tiles.items()])
    return path


def image_bytes(format, colour, size=256):
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format)
    return buffer.getvalue()


def serve(tileset, cache=None):
    return TileStache.parseConfig({"cache": cache or {"name": "Test"},
                                   "layers": {"mb": {"provider": {"name": "MBTiles", "tileset": str(tileset)}}}})


def test_cache_round_trip_tms_rows_metadata_wal(tmp_path):
    log, path = tmp_path / "renders.log", tmp_path / "cache.mbtiles"
    config = make_config({"name": "MBTiles", "filename": str(path)}, log)
    mime, body = get(config, 3, 2, 1)
    assert mime == "image/png" and solid_colour(body) == RED
    assert dict(query(path, "SELECT name, value FROM metadata")) == {"format": "png", "name": "cache"}
    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    stored = dict(((z, x, y), bytes(b)) for z, x, y, b in query(path, "SELECT * FROM tiles"))
    assert sorted(stored) == sorted((3, x, 7 - y) for x in (2, 3) for y in (0, 1))  # TMS rows
    assert stored[(3, 2, 6)] == body
    assert get(config, 3, 3, 0)[1] == stored[(3, 3, 7)]
    assert renders(log) == 1

    assert_removed_then_rendered(
        config, log, (3, 2, 1),
        lambda: query(path, "SELECT count(*) FROM tiles WHERE tile_row = 6 AND tile_column = 2") != [(0,)])


def test_cache_keeps_one_format(tmp_path):
    path = tmp_path / "cache.mbtiles"
    config = make_config({"name": "MBTiles", "filename": str(path), "format": "png"}, tmp_path / "r.log")
    get(config, 3, 2, 2, "jpg")  # served, not stored
    assert query(path, "SELECT count(*) FROM tiles") == [(0,)]
    with pytest.raises(ConfigError, match="holds png tiles"):
        make_config({"name": "MBTiles", "filename": str(path), "format": "jpg"}, tmp_path / "r.log")


def test_one_render_across_processes(tmp_path):
    assert_one_render({"name": "MBTiles", "filename": str(tmp_path / "c.mbtiles")}, tmp_path / "renders.log")
    assert query(tmp_path / "c.mbtiles", "SELECT count(*) FROM tilestache_locks") == [(0,)]


@pytest.mark.parametrize("format, ext, mime, pil", [
    ("png", "png", "image/png", "PNG"), ("jpg", "jpg", "image/jpeg", "JPEG"),
    ("jpg", "jpeg", "image/jpeg", "JPEG"), ("webp", "webp", "image/webp", "WEBP")])
def test_provider_serves_images_with_their_type(tmp_path, format, ext, mime, pil):
    tileset = write_tileset(tmp_path / "t.mbtiles", format, {(2, 1, 0): image_bytes(pil, (10, 200, 30))})
    config = serve(tileset)
    status, headers, body = TileStache.requestHandler2(config, f"/mb/2/1/0.{ext}")
    assert status == 200 and headers["Content-Type"] == mime
    image = Image.open(io.BytesIO(body)).convert("RGB")
    r, g, b = image.getpixel((128, 128))
    assert abs(r - 10) < 8 and abs(g - 200) < 8 and abs(b - 30) < 8
    # a tile not in the set: 404 with a transparent image; another format: 400
    status, headers, body = TileStache.requestHandler2(config, f"/mb/2/0/0.{ext}")
    assert status == 404 and Image.open(io.BytesIO(body)).size == (256, 256)
    assert TileStache.requestHandler2(config, "/mb/2/1/0.gif")[0] == 400


def mvt_layer_client(tmp_path, cache):
    """(werkzeug test Client of a layer "mb" over a gzipped-MVT tileset, the plain MVT, the stored bytes)."""
    mvt = mapbox_vector_tile.encode([{"name": "water", "features": [
        {"geometry": "POINT(10 20)", "properties": {"kind": "lake"}}]}])
    stored = gzip.compress(mvt, mtime=1)
    tileset = write_tileset(tmp_path / "v.mbtiles", "pbf", {(1, 1, 1): stored})
    return Client(TileStache.WSGITileServer(serve(tileset, cache))), mvt, stored


def assert_mvt_answer(answer, mvt, stored, gzipped):
    """A 200 MVT answer: the stored gzip bytes with Content-Encoding: gzip, or the plain tile without."""
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert answer.headers["Vary"] == "Accept-Encoding"
    if gzipped:
        assert answer.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(answer.data) == mvt
        if stored is not None:
            assert answer.data == stored  # the tileset's bytes as they are, not compressed again
    else:
        assert "Content-Encoding" not in answer.headers
        assert answer.data == mvt
        assert mapbox_vector_tile.decode(answer.data)["water"]["features"][0]["properties"] == {"kind": "lake"}


GZIP = {"Accept-Encoding": "gzip, br"}


@pytest.mark.parametrize("first", ["gzip", "plain"])
def test_provider_serves_gzipped_mvt_from_the_first_request(tmp_path, first):
    client, mvt, stored = mvt_layer_client(tmp_path, {"name": "Test"})  # no cache: every request reads the set
    order = [GZIP, {}] if first == "gzip" else [{}, GZIP]
    for headers in order + order:
        assert_mvt_answer(client.get("/mb/1/1/1.mvt", headers=headers), mvt, stored, gzipped=headers is GZIP)
    assert TileStache.getTile(client.application.config.layers["mb"], coord(1, 1, 1), "mvt")[1] == mvt


def test_provider_gzipped_mvt_through_a_gzip_disk_cache(tmp_path):
    client, mvt, stored = mvt_layer_client(tmp_path, {"name": "Disk", "path": str(tmp_path / "disk"),
                                                      "dirs": "portable", "gzip": ["mvt"]})
    miss = client.get("/mb/1/1/1.mvt", headers=GZIP)
    assert_mvt_answer(miss, mvt, None, gzipped=True)
    cached = tmp_path / "disk" / "mb" / "1" / "1" / "1.mvt.gz"
    assert gzip.decompress(cached.read_bytes()) == mvt  # the cache got the plain tile, and gzipped it itself
    assert miss.data == cached.read_bytes()  # a miss answers with what the cache now holds, as hits will
    assert_mvt_answer(client.get("/mb/1/1/1.mvt", headers=GZIP), mvt, None, gzipped=True)  # hits
    assert_mvt_answer(client.get("/mb/1/1/1.mvt"), mvt, None, gzipped=False)
    assert client.get("/mb/1/1/1.mvt", headers=GZIP).data == cached.read_bytes()


def test_mbtiles_cache_serves_mvt_gzipped(tmp_path):
    mvt = mapbox_vector_tile.encode([{"name": "l", "features": [{"geometry": "POINT(1 2)", "properties": {}}]}])
    source = write_tileset(tmp_path / "v.mbtiles", "pbf", {(0, 0, 0): mvt})
    cache_file = tmp_path / "cache.mbtiles"
    config = serve(source, {"name": "MBTiles", "filename": str(cache_file)})
    assert TileStache.getTile(config.layers["mb"], coord(0, 0, 0), "pbf")[1] == mvt
    stored = bytes(query(cache_file, "SELECT tile_data FROM tiles")[0][0])
    assert gzip.decompress(stored) == mvt  # stored compressed, as the spec recommends
    result = config.layers["mb"].tile_response(coord(0, 0, 0), "pbf", accept_gzip=True)
    assert result.headers["Content-Encoding"] == "gzip" and gzip.decompress(result.body) == mvt


def test_not_a_tileset_is_a_config_error(tmp_path):
    junk = tmp_path / "junk.mbtiles"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ConfigError, match="not a readable MBTiles file"):
        serve(junk)
    with pytest.raises(ConfigError, match="MBTiles"):
        make_config({"name": "MBTiles", "filename": str(junk)}, tmp_path / "r.log")
    with pytest.raises(ConfigError, match="does not exist"):
        serve(tmp_path / "missing.mbtiles")


def test_truncated_tileset_is_a_config_error(tmp_path):
    path = write_tileset(tmp_path / "t.mbtiles", "png", {(6, x, 0): os.urandom(3000) for x in range(64)})
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 3)
    with pytest.raises(ConfigError, match="not a readable MBTiles file"):
        serve(path)


def test_damaged_tiles_are_a_clear_error_at_request_time(tmp_path):
    path = write_tileset(tmp_path / "t.mbtiles", "png", {(6, x, 0): os.urandom(3000) for x in range(64)})
    size = os.path.getsize(path)
    with open(path, "r+b") as file:  # wreck the second half: tile pages, not the schema
        file.seek(size // 2)
        file.write(b"\xff" * (size - size // 2))
    config = serve(path)
    answers = [TileStache.requestHandler2(config, f"/mb/6/{x}/0.png") for x in range(64)]
    failed = [(status, body) for status, headers, body in answers if status != 200]
    assert failed, "half of the tile pages are gone"
    assert set(failed) == {(500, b"The tileset could not be read\n")}
