"""The PMTiles provider on archives from the pmtiles package's own writer: a file, Range over HTTP, moto's S3."""
from __future__ import annotations

import gzip
import logging
import os
import socket

import pytest
from ModestMaps.Core import Coordinate
from pmtiles.tile import Compression, TileType
from werkzeug.test import Client

import TileStache
from formats_helpers import RangeServer, mvt_tiles, png, png_tiles, sparse_tiles, write_archive
from TileStache.Errors import ConfigError
from TileStache.PMTiles import ENTRY_BYTES

MVT = "application/vnd.mapbox-vector-tile"


def config_for(tileset, cache=None, **provider):
    return TileStache.parseConfig({
        "cache": cache or {"name": "Test"},
        "layers": {"p": {"provider": {"name": "pmtiles", "tileset": str(tileset), **provider}}}})


def client_for(tileset, **provider):
    config = config_for(tileset, **provider)
    return Client(TileStache.WSGITileServer(config)), config


def assert_serves(client, tiles, ext, gzipped):
    """Every tile comes back as the writer got it (gzipped MVT as stored to gzip clients, inflated to others)."""
    for (z, x, y), stored in tiles.items():
        response = client.get(f"/p/{z}/{x}/{y}.{ext}", headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, (z, x, y)
        assert response.data == stored
        assert (response.headers.get("Content-Encoding") == "gzip") == gzipped
        if gzipped:
            plain = client.get(f"/p/{z}/{x}/{y}.{ext}")
            assert plain.data == gzip.decompress(stored) and "Content-Encoding" not in plain.headers


def test_png_archive_from_a_file(tmp_path):
    tiles = png_tiles()
    client, config = client_for(write_archive(tmp_path / "t.pmtiles", tiles))
    assert_serves(client, tiles, "png", gzipped=False)
    response = client.get("/p/1/0/0.png")
    assert response.headers["Content-Type"] == "image/png" and "ETag" in response.headers
    assert client.get("/p/1/0/0.jpg").status_code == 400
    assert TileStache.getTile(config.layers["p"], Coordinate(1, 1, 1), "png")[1] == tiles[(1, 1, 1)]


def test_gzipped_mvt_from_a_file_and_its_vector_layers(tmp_path):
    tiles = mvt_tiles()
    layers = [{"id": "squares", "fields": {"label": "String", "x": "Number"}, "minzoom": 0, "maxzoom": 2}]
    path = write_archive(tmp_path / "v.pmtiles", tiles, TileType.MVT, Compression.GZIP, {"vector_layers": layers})
    client, config = client_for(path)
    assert_serves(client, tiles, "mvt", gzipped=True)
    assert client.get("/p/2/1/1.pbf", headers={"Accept-Encoding": "gzip"}).data == tiles[(2, 1, 1)]
    assert client.get("/p/0/0/0.mvt").headers["Content-Type"] == MVT
    assert client.get("/p/0/0/0.png").status_code == 400
    assert config.layers["p"].provider.vector_layers() == layers


def test_absent_tiles_are_404_and_archive_bounds_become_the_layers(tmp_path):
    tiles = {(z, x, y): png((z, x, y)) for z in (3, 4) for x in range(1 << z) for y in range(1 << z)
             if (z, x, y) != (4, 3, 3)}
    path = write_archive(tmp_path / "t.pmtiles", tiles, bounds=(-90.0, -40.0, 90.0, 40.0))
    client, config = client_for(path)
    layer = config.layers["p"]
    assert layer.zoom_range() == (3, 4)
    assert client.get("/p/4/3/3.png").status_code == 404  # in bounds, not in the archive
    assert client.get("/p/2/1/1.png").status_code == 404  # below the archive's zooms
    assert client.get("/p/5/16/16.png").status_code == 404  # above them
    assert client.get("/p/4/0/8.png").status_code == 404  # west of -90
    assert client.get("/p/4/4/7.png").status_code == 200
    layered = config_for(path)  # a layer's own bounds win over the archive's
    assert layered.layers["p"].bounds is not None
    own = TileStache.parseConfig({"layers": {"p": {"provider": {"name": "pmtiles", "tileset": str(path)},
                                                   "bounds": {"low": 4, "high": 4}}}})
    assert own.layers["p"].zoom_range() == (4, 4)


def test_leaf_directories_and_their_lru_bounded_in_bytes(tmp_path):
    tiles = sparse_tiles()
    path = write_archive(tmp_path / "s.pmtiles", tiles, tile_type=TileType.PNG)
    limit = int(2.5 * 4096 * ENTRY_BYTES)  # room for two leaves of the writer's 4096 entries
    config = config_for(path, leaf_cache_bytes=limit)
    archive = config.layers["p"].provider.archive
    assert archive.header["leaf_directory_length"] > 0 and len(archive.root) >= 4
    assert all(e.run_length == 0 for e in archive.root)
    for (z, x, y), stored in list(tiles.items())[::7]:
        assert archive.tile(z, x, y) == stored
        assert archive.leaves.used <= limit
    assert len(archive.leaves._entries) == 2
    assert archive.tile(9, *next((x, y) for x in range(512) for y in range(512) if (9, x, y) not in tiles)) is None


def test_a_replaced_archive_is_read_again(tmp_path):
    path = write_archive(tmp_path / "t.pmtiles", png_tiles((0, 1)))
    client, config = client_for(path)
    assert client.get("/p/1/1/1.png").data == png((40, 20, 20))
    fresh = {(z, x, y): png((0, 200, 200 - x - y)) for z in (0, 1, 2) for x in range(1 << z) for y in range(1 << z)}
    assert client.get("/p/2/3/3.png").status_code == 404  # beyond the archive's zooms
    os.replace(write_archive(tmp_path / "new.pmtiles", fresh), path)
    assert client.get("/p/1/1/1.png").data == fresh[(1, 1, 1)]
    assert config.layers["p"].zoom_range() == (0, 2)  # the new archive's bounds
    assert client.get("/p/2/3/3.png").data == fresh[(2, 3, 3)]


def test_bad_archives_are_config_errors_naming_layer_and_key(tmp_path):
    with pytest.raises(ConfigError, match=r"layer 'p', key 'provider.tileset'.*does not exist"):
        config_for(tmp_path / "missing.pmtiles")
    (tmp_path / "text.pmtiles").write_text("not an archive at all, just some text " * 10)
    with pytest.raises(ConfigError, match=r"layer 'p', key 'provider.tileset'.*not a PMTiles archive"):
        config_for(tmp_path / "text.pmtiles")
    good = write_archive(tmp_path / "good.pmtiles", png_tiles()).read_bytes()
    (tmp_path / "v2.pmtiles").write_bytes(good[:7] + b"\x02" + good[8:])
    with pytest.raises(ConfigError, match=r"key 'provider.tileset'.*not a PMTiles version 3"):
        config_for(tmp_path / "v2.pmtiles")
    for cut in (60, len(good) - 10):
        (tmp_path / "cut.pmtiles").write_bytes(good[:cut])
        with pytest.raises(ConfigError, match=r"layer 'p', key 'provider.tileset'.*(too short|truncated)"):
            config_for(tmp_path / "cut.pmtiles")
    with pytest.raises(ConfigError, match="provider"):
        config_for("ftp://example.invalid/x.pmtiles")


def test_a_corrupt_leaf_directory_is_a_short_500_and_one_log_line(tmp_path, caplog):
    path = write_archive(tmp_path / "s.pmtiles", sparse_tiles(), tile_type=TileType.PNG)
    client, config = client_for(path)
    header = config.layers["p"].provider.archive.header
    data = bytearray(path.read_bytes())
    start = header["leaf_directory_offset"]
    data[start:start + header["leaf_directory_length"]] = b"\x00garbage" * (header["leaf_directory_length"] // 8) \
        + b"\x00" * (header["leaf_directory_length"] % 8)
    path.write_bytes(bytes(data))  # in place: same inode, new mtime
    with caplog.at_level(logging.ERROR):
        response = client.get("/p/%d/%d/%d.png" % next(iter(sparse_tiles())))
    assert response.status_code == 500
    assert response.data == b"The tileset could not be read\n"
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


@pytest.fixture
def range_server(tmp_path):
    server = RangeServer(tmp_path)
    yield server
    server.stop()


def test_archives_over_http_range_requests(tmp_path, range_server):
    tiles = mvt_tiles()
    write_archive(tmp_path / "v.pmtiles", tiles, TileType.MVT, Compression.GZIP)
    client, _ = client_for(f"{range_server.url}/v.pmtiles")
    assert range_server.ranges == ["bytes=0-16383"]  # header and root directory, read once
    assert_serves(client, tiles, "mvt", gzipped=True)
    assert all(r.startswith("bytes=") for r in range_server.ranges)
    assert len(range_server.ranges) == 1 + 2 * len(tiles)  # one read per tile served

    leafy = sparse_tiles()
    write_archive(tmp_path / "s.pmtiles", leafy)
    client, config = client_for(f"{range_server.url}/s.pmtiles", check_interval=0)
    for (z, x, y), stored in list(leafy.items())[:200]:
        assert client.get(f"/p/{z}/{x}/{y}.png").data == stored

    fresh = {(9, x, y): png((x, y, 9), 16) for x in range(4) for y in range(4)}
    os.replace(write_archive(tmp_path / "new.pmtiles", fresh), tmp_path / "s.pmtiles")  # a new ETag
    assert client.get("/p/9/0/0.png").data == fresh[(9, 0, 0)]
    assert client.get("/p/9/3/2.png").data == fresh[(9, 3, 2)]


def test_http_failures_at_request_time_are_502_or_504_and_cache_nothing(tmp_path, range_server):
    write_archive(tmp_path / "t.pmtiles", png_tiles())
    cache = {"name": "Disk", "path": str(tmp_path / "cache")}
    config = config_for(f"{range_server.url}/t.pmtiles", cache=cache, timeout=0.5)
    client = Client(TileStache.WSGITileServer(config))
    source = config.layers["p"].provider.archive.source
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        source.url = f"http://127.0.0.1:{closed.getsockname()[1]}/t.pmtiles"  # bound, not listening: refused
        response = client.get("/p/1/0/0.png")
    assert response.status_code == 502 and response.data == b"The archive's server could not be reached\n"

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        source.url = f"http://127.0.0.1:{silent.getsockname()[1]}/t.pmtiles"
        response = client.get("/p/1/0/0.png")
    assert response.status_code == 504 and b"Traceback" not in response.data
    assert not (tmp_path / "cache").exists() or not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_missing_url_is_a_config_error(range_server):
    with pytest.raises(ConfigError, match=r"key 'provider.tileset'.*does not exist"):
        config_for(f"{range_server.url}/nothing.pmtiles")


def test_archives_from_s3(tmp_path, s3_server):
    client_s3 = s3_server.client()
    client_s3.create_bucket(Bucket="archives")
    tiles = png_tiles()
    client_s3.put_object(Bucket="archives", Key="maps/t.pmtiles",
                         Body=write_archive(tmp_path / "t.pmtiles", tiles).read_bytes())
    options = {"endpoint url": s3_server.endpoint_url, "region": s3_server.region}
    config = TileStache.parseConfig({"layers": {"p": {"provider": {
        "name": "pmtiles", "tileset": "s3://archives/maps/t.pmtiles", **options}}}})
    client = Client(TileStache.WSGITileServer(config))
    assert_serves(client, tiles, "png", gzipped=False)

    fresh = {(z, x, y): png((255, 10 * z + x, y)) for z, x, y in tiles}
    client_s3.put_object(Bucket="archives", Key="maps/t.pmtiles",
                         Body=write_archive(tmp_path / "n.pmtiles", fresh).read_bytes())
    assert client.get("/p/2/3/1.png").data == fresh[(2, 3, 1)]  # another ETag: read again

    client_s3.delete_object(Bucket="archives", Key="maps/t.pmtiles")
    assert client.get("/p/2/3/2.png").status_code == 502
    with pytest.raises(ConfigError, match=r"key 'provider.tileset'.*does not exist"):
        TileStache.parseConfig({"layers": {"p": {"provider": {
            "name": "pmtiles", "tileset": "s3://archives/maps/gone.pmtiles", **options}}}})
