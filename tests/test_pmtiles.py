"""The PMTiles provider on archives from the pmtiles package's own writer: a file, Range over HTTP, moto's S3."""
from __future__ import annotations

import gzip
import json
import logging
import os
import socket
import sqlite3
import time

import pytest
from ModestMaps.Core import Coordinate
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, Entry, TileType, find_tile, zxy_to_tileid
from werkzeug.test import Client

import TileStache
from formats_helpers import RangeServer, mvt_tiles, png, png_tiles, sparse_tiles, vector_layer_spec, write_archive
from script_helpers import WORLD, counting_layer, polygons_layer, start_tool, tool, write_config
from TileStache.MBTiles import Cache as MBTilesCache
from TileStache.Errors import ConfigError
from TileStache.PMTiles import ENTRY_BYTES, Directory

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
    assert all(e.run_length == 0 for e in archive.root.entries)
    for (z, x, y), stored in list(tiles.items())[::7]:
        assert archive.tile(z, x, y) == stored
        assert archive.leaves.used <= limit
    assert len(archive.leaves._entries) == 2
    assert archive.tile(9, *next((x, y) for x in range(512) for y in range(512) if (9, x, y) not in tiles)) is None


def test_directory_search_agrees_with_the_pmtiles_package():
    """Runs, single tiles, leaf pointers and gaps: Directory.find answers as pmtiles' own find_tile."""
    entries, tile_id = [], 3
    for i in range(300):
        run = (0, 1, 5)[i % 3]
        entries.append(Entry(tile_id, i * 10, 10, run))
        tile_id += (4, 1, 9)[i % 3]  # a leaf's span, adjacent singles, a run followed by a gap
    directory = Directory(entries)
    for probe in range(0, tile_id + 20):
        assert directory.find(probe) == find_tile(entries, probe), probe
    assert Directory([]).find(5) is None


def test_a_replaced_archive_is_read_again(tmp_path):
    path = write_archive(tmp_path / "t.pmtiles", png_tiles((0, 1)))
    lazy, _ = client_for(path)  # looks at the file at most once a second: until then the old one, whole
    client, config = client_for(path, check_interval=0)
    assert client.get("/p/1/1/1.png").data == png((40, 20, 20)) == lazy.get("/p/1/1/1.png").data
    fresh = {(z, x, y): png((0, 200, 200 - x - y)) for z in (0, 1, 2) for x in range(1 << z) for y in range(1 << z)}
    assert client.get("/p/2/3/3.png").status_code == 404  # beyond the archive's zooms
    os.replace(write_archive(tmp_path / "new.pmtiles", fresh), path)
    assert client.get("/p/1/1/1.png").data == fresh[(1, 1, 1)]
    assert lazy.get("/p/1/1/1.png").data == png((40, 20, 20))
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
    client, config = client_for(path, check_interval=0)
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


# -- tilestache-seed --to-pmtiles / --from-pmtiles, tilestache-list --from-pmtiles ---------------------------

def read_back(path) -> tuple[dict, dict, dict]:
    """(header, metadata, {(z, x, y): bytes} in the order the archive holds them) by pmtiles's own reader."""
    with open(path, "rb") as file:
        get = MmapSource(file)
        reader = Reader(get)
        return reader.header(), reader.metadata(), dict(all_tiles(get))


def portable_tiles(folder, layer, ext) -> dict:
    """{(z, x, y): bytes} of a Disk cache in the "portable" layout (what -d writes)."""
    found = {}
    for path in (folder / layer).rglob(f"*.{ext}"):
        z, x, name = path.relative_to(folder / layer).parts
        found[(int(z), int(x), int(name.split(".")[0]))] = path.read_bytes()
    return found


def assert_clustered(tiles: dict) -> None:
    ids = [zxy_to_tileid(*key) for key in tiles]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_seed_to_pmtiles_holds_the_tiles_of_a_disk_seed_raster(tmp_path):
    cfg = write_config(tmp_path, {"world": polygons_layer(tmp_path)})
    box = ("-b", 30, -20, 60, 40)
    assert tool("seed", "-q", "-c", cfg, "-l", "world", *box, "-d", tmp_path / "disk", 2, 3, 4).returncode == 0
    done = tool("seed", "-q", "-c", cfg, "-l", "world", *box, "--to-pmtiles", tmp_path / "w.pmtiles", 2, 3, 4)
    assert done.returncode == 0, done.stderr
    header, metadata, tiles = read_back(tmp_path / "w.pmtiles")
    disk = portable_tiles(tmp_path / "disk", "world", "png")
    assert disk and tiles == disk
    assert_clustered(tiles)
    assert header["clustered"] and header["tile_type"] == TileType.PNG
    assert header["tile_compression"] == Compression.NONE
    assert (header["min_zoom"], header["max_zoom"]) == (2, 4) and header["center_zoom"] == 2
    west, south = header["min_lon_e7"] / 1e7, header["min_lat_e7"] / 1e7
    east, north = header["max_lon_e7"] / 1e7, header["max_lat_e7"] / 1e7
    # the extent of the tiles: at zoom 2 the box lies in the tiles of columns 1-2, row 1
    assert (west, south, east) == (-90.0, 0.0, 90.0) and north == pytest.approx(66.5132604, abs=1e-6)
    assert header["min_lon_e7"] < header["center_lon_e7"] < header["max_lon_e7"]
    assert metadata["format"] == "png" and metadata["name"] == "world" and "vector_layers" not in metadata
    assert not os.path.exists(str(tmp_path / "w.pmtiles") + ".staging.mbtiles")
    assert sorted(os.listdir(tmp_path)) == ["disk", "polygons.xml", "tilestache.cfg", "w.pmtiles"]


def test_seed_to_pmtiles_of_an_mvt_layer_carries_vector_layers(tmp_path):
    cfg = write_config(tmp_path, {"vec": vector_layer_spec(tmp_path)})
    args = ("-q", "-c", cfg, "-l", "vec", "-e", "mvt", "-b", 40, -10, 60, 30)
    both = tool("seed", *args, "-d", tmp_path / "disk", "--to-pmtiles", tmp_path / "v.pmtiles", 1, 2, 3)
    assert both.returncode == 0, both.stderr  # two outputs at once: a Multi cache
    header, metadata, tiles = read_back(tmp_path / "v.pmtiles")
    disk = portable_tiles(tmp_path / "disk", "vec", "mvt")
    assert disk and set(tiles) == set(disk)
    assert all(body[:2] == b"\x1f\x8b" and gzip.decompress(body) == disk[key] for key, body in tiles.items())
    assert header["tile_type"] == TileType.MVT and header["tile_compression"] == Compression.GZIP
    assert (header["min_zoom"], header["max_zoom"]) == (1, 3)
    described = {each["id"]: each for each in metadata["vector_layers"]}
    assert set(described) == {"areas", "roads", "towns"}
    assert described["roads"]["minzoom"] == 2 and "ref" in described["roads"]["fields"]
    served, _ = client_for(tmp_path / "v.pmtiles")  # and our provider serves it
    z, x, y = next(iter(tiles))
    assert served.get(f"/p/{z}/{x}/{y}.mvt").data == disk[(z, x, y)]


def mbtiles_rows(path) -> dict:
    with sqlite3.connect(path) as db:
        return {(z, x, y): bytes(body) for z, x, y, body in
                db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")}


def test_mbtiles_to_pmtiles_and_back_keeps_the_tile_bytes(tmp_path):
    tiles = mvt_tiles((0, 1, 2, 3))
    layers = [{"id": "squares", "fields": {"label": "String"}, "minzoom": 0, "maxzoom": 3}]
    source = MBTilesCache(str(tmp_path / "a.mbtiles"), format="pbf")
    source.tileset.set_metadata("json", json.dumps({"vector_layers": layers}))
    for (z, x, y), body in tiles.items():
        source.save(body, None, Coordinate(y, x, z), "MVT")
    there = tool("seed", "-q", "--from-mbtiles", tmp_path / "a.mbtiles", "--to-pmtiles", tmp_path / "b.pmtiles")
    assert there.returncode == 0, there.stderr
    header, metadata, archived = read_back(tmp_path / "b.pmtiles")
    assert archived == tiles and header["tile_type"] == TileType.MVT
    assert metadata["vector_layers"] == layers and metadata["name"] == "tiles-layer"
    back = tool("seed", "-q", "--from-pmtiles", tmp_path / "b.pmtiles", "--to-mbtiles", tmp_path / "c.mbtiles")
    assert back.returncode == 0, back.stderr
    assert mbtiles_rows(tmp_path / "c.mbtiles") == mbtiles_rows(tmp_path / "a.mbtiles")

    listed = tool("list", "--from-pmtiles", tmp_path / "b.pmtiles")
    assert listed.returncode == 0
    lines = listed.stdout.split()
    assert sorted(lines) == sorted(f"{z}/{x}/{y}" for z, x, y in tiles)
    assert lines == [f"{z}/{x}/{y}" for z, x, y in archived]  # in tile-id order
    some = tool("seed", "-q", "--from-pmtiles", tmp_path / "b.pmtiles", "-l", "copy", "-d", tmp_path / "d",
                *WORLD, 2)
    assert some.returncode == 0, some.stderr  # -l names the copy; zoom levels pick a part
    assert set(portable_tiles(tmp_path / "d", "copy", "mvt")) == {k for k in tiles if k[0] == 2}


def test_png_archive_back_to_disk_and_bad_pmtiles_input(tmp_path):
    tiles = png_tiles()
    write_archive(tmp_path / "t.pmtiles", tiles)
    copied = tool("seed", "-q", "--from-pmtiles", tmp_path / "t.pmtiles", "-d", tmp_path / "d")
    assert copied.returncode == 0, copied.stderr
    assert portable_tiles(tmp_path / "d", "tiles-layer", "png") == tiles
    (tmp_path / "text.pmtiles").write_text("no archive here " * 20)
    for name in ("list", "seed"):
        bad = tool(name, "--from-pmtiles", tmp_path / "text.pmtiles", *(["-d", tmp_path / "x"] if name == "seed" else []))
        assert bad.returncode == 2 and "not a PMTiles archive" in bad.stderr and "Traceback" not in bad.stderr
    json_layer = write_config(tmp_path, {"vec": vector_layer_spec(tmp_path)})
    wrong = tool("seed", "-c", json_layer, "-l", "vec", "-e", "geojson", "--to-pmtiles", tmp_path / "g.pmtiles", 1)
    assert wrong.returncode == 2 and "--to-pmtiles" in wrong.stderr
    assert not any(p.name.startswith("g.pmtiles") for p in tmp_path.iterdir())
    (tmp_path / "wgs").mkdir()
    wgs = write_config(tmp_path / "wgs", {"w": {**polygons_layer(tmp_path), "projection": "WGS84"}})
    other = tool("seed", "-c", wgs, "-l", "w", "--to-pmtiles", tmp_path / "w.pmtiles", 1)
    assert other.returncode == 2 and "spherical mercator" in other.stderr and not (tmp_path / "w.pmtiles").exists()


def test_the_archive_appears_only_when_the_seed_is_complete(tmp_path):
    log = tmp_path / "renders.log"
    target = tmp_path / "w.pmtiles"
    cfg = write_config(tmp_path, {"world": counting_layer(log, delay=0.3)})
    run = start_tool("seed", "-q", "-c", cfg, "-l", "world", *WORLD, "-j", "1", "--to-pmtiles", target, 2, 3)
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text()) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.read_text() and run.poll() is None  # rendering has begun, and goes on
        assert not target.exists() and os.path.exists(str(target) + ".staging.mbtiles")
    finally:
        run.communicate(timeout=120)
    assert run.returncode == 0
    assert len(read_back(target)[2]) == 4 * 4 + 8 * 8

    (tmp_path / "failing").mkdir()
    failing = write_config(tmp_path / "failing", {"world": counting_layer(log, fail_zoom=3)})
    broken = tool("seed", "-q", "-c", failing, "-l", "world", *WORLD, "--to-pmtiles", tmp_path / "f.pmtiles", 2, 3)
    assert broken.returncode == 1 and "f.pmtiles not written" in broken.stderr
    assert not (tmp_path / "f.pmtiles").exists()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    healed = tool("seed", "-q", "-c", cfg, "-l", "world", *WORLD, "--to-pmtiles", tmp_path / "f.pmtiles", 2, 3)
    assert healed.returncode == 0, healed.stderr  # the staged tiles are kept: the run resumes
    assert "going on with the tiles an unfinished run staged in" in healed.stderr  # and says so
    assert read_back(tmp_path / "f.pmtiles")[2] == read_back(target)[2]
