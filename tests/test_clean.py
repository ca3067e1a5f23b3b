"""tilestache-clean by coverage and by age, --dry-run, and the caches' saved times (Disk, LimitedDisk, S3, MBTiles)."""
from __future__ import annotations

import datetime
import json
import math
import os
import sqlite3
import time

import pytest
import shapely
from ModestMaps.Core import Coordinate

import TileStache
from script_helpers import bbox_tiles, tool
from TileStache.Caches import disk_coord, disk_path
from TileStache.Scripts import clean
from TileStache.Scripts.clean import duration

DAY = 86400
GRID = {"provider": {"class": "plugins:GridPainter"}}


def write_config(folder, cache: dict, layers: dict | None = None) -> str:
    path = os.path.join(folder, "tilestache.cfg")
    with open(path, "w") as file:
        json.dump({"cache": cache, "layers": layers or {"grid": GRID}}, file)
    return str(path)


def fill(config_path: str, zooms, layer: str = "grid", age_of=None) -> set[tuple[int, int, int]]:
    """Save a small tile at every (z, x, y) of the zooms; age_of(z, x, y) -> days old (Disk: by mtime)."""
    config = TileStache.parseConfig(config_path)
    layer_obj = config.layers[layer]
    tiles = {(z, x, y) for z in zooms for x in range(2 ** z) for y in range(2 ** z)}
    for z, x, y in sorted(tiles):
        config.cache.save(b"tile %d/%d/%d" % (z, x, y), layer_obj, Coordinate(y, x, z), "PNG")
    if age_of is not None:
        for z, x, y in tiles:
            days = age_of(z, x, y)
            if days:
                path = config.cache._filepath(layer_obj, Coordinate(y, x, z), "PNG")
                then = time.time() - days * DAY
                os.utime(path, (then, then))
    return tiles


def stored(config_path: str, layer: str = "grid") -> set[tuple[int, int, int]]:
    """(z, x, y) of the tiles the configured cache holds for a layer."""
    config = TileStache.parseConfig(config_path)
    return {(int(c.zoom), int(c.column), int(c.row))
            for c, _ in config.cache.saved_tiles(config.layers[layer], "PNG")}


def listed(text: str, layer: str = "grid") -> set[tuple[int, int, int]]:
    """(z, x, y) of the layer/z/x/y.png lines a dry run printed."""
    found = set()
    for line in text.split():
        name, z, x, y = line.rsplit(".", 1)[0].split("/")
        assert name == layer
        found.add((int(z), int(x), int(y)))
    return found


# -- durations ------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("7d", 7 * DAY), ("12h", 12 * 3600), ("30m", 1800), ("45s", 45),
                                           ("2w", 14 * DAY), ("1d12h", 1.5 * DAY), ("1.5h", 5400), ("7D", 7 * DAY)])
def test_durations(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "7 d", "1d-2h", "one day"])
def test_malformed_durations(text):
    with pytest.raises(Exception, match="bad duration"):
        duration(text)


# -- Disk layouts: where each tile is, and back ------------------------------------

@pytest.mark.parametrize("layout", ["safe", "portable", "quadtile"])
def test_disk_paths_read_back_as_their_tiles(layout, tmp_path):
    for z, x, y in [(0, 0, 0), (1, 1, 0), (5, 17, 30), (12, 656, 1582), (20, 1000000, 7)]:
        path = disk_path(layout, "osm", Coordinate(y, x, z), "png")
        back = disk_coord(layout, "osm", path, "png")
        assert (back.zoom, back.column, back.row) == (z, x, y), path
    assert disk_coord(layout, "osm", disk_path(layout, "osm", Coordinate(1, 1, 1), "png"), "jpg") is None
    assert disk_coord(layout, "other", disk_path(layout, "osm", Coordinate(1, 1, 1), "png"), "png") is None
    cfg = write_config(tmp_path, {"name": "Disk", "path": "cache", "dirs": layout})
    tiles = fill(cfg, [0, 1, 2, 3])
    (tmp_path / "cache" / "grid" / "notes.txt").write_text("not a tile")
    assert stored(cfg) == tiles


# -- coverage ----------------------------------------------------------------------

def tile_polygon(z: int, x: int, y: int):
    """A tile's box in degrees, from the usual spherical-mercator formulas."""
    n = 2 ** z

    def lat(row):
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return shapely.box(x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y))


TRIANGLE = [[-5.5, 40.5], [10.5, 40.5], [-5.5, 50.5], [-5.5, 40.5]]
SQUARE = [[100.3, -30.2], [120.7, -30.2], [120.7, -10.1], [100.3, -10.1], [100.3, -30.2]]


def test_clean_by_coverage_removes_exactly_the_tiles_touching_the_polygons(tmp_path):
    cfg = write_config(tmp_path, {"name": "Disk", "path": "cache"})
    before = fill(cfg, [3, 4, 5])
    features = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [TRIANGLE]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [SQUARE]}}]}
    (tmp_path / "area.geojson").write_text(json.dumps(features))
    area = shapely.union_all([shapely.Polygon(TRIANGLE), shapely.Polygon(SQUARE)])
    expected = {(z, x, y) for z, x, y in before if z in (4, 5) and tile_polygon(z, x, y).intersects(area)
                and not tile_polygon(z, x, y).touches(area)}
    assert expected and expected < before
    assert not {t for t in expected if t[0] == 5} >= bbox_tiles(40.5, -5.5, 50.5, 10.5, [5])  # a triangle, not its box

    dry = tool("clean", "-c", cfg, "-l", "grid", "--coverage", tmp_path / "area.geojson", "--dry-run", 4, 5)
    assert dry.returncode == 0, dry.stderr
    assert listed(dry.stdout) == expected and len(dry.stdout.split()) == len(expected)
    assert f"would remove {len(expected)} tiles" in dry.stderr
    assert stored(cfg) == before  # a dry run removes nothing

    result = tool("clean", "-c", cfg, "-l", "grid", "--coverage", tmp_path / "area.geojson", 4, 5)
    assert result.returncode == 0, result.stderr
    assert stored(cfg) == before - expected


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"type": "Polygon", "coordinates": "nope"}', "bad geometry"),
    ('{"type": "FeatureCollection", "features": []}', "no geometry"),
    ("[1, 2]", "not a GeoJSON object"),
])
def test_malformed_coverage_exits_2_and_removes_nothing(tmp_path, content, message):
    cfg = write_config(tmp_path, {"name": "Disk", "path": "cache"})
    before = fill(cfg, [2])
    (tmp_path / "bad.geojson").write_text(content)
    result = tool("clean", "-c", cfg, "-l", "grid", "--coverage", tmp_path / "bad.geojson", 2)
    assert result.returncode == 2 and message in result.stderr and "bad.geojson" in result.stderr
    assert stored(cfg) == before


# -- age: Disk and LimitedDisk ----------------------------------------------------

def old_if_even_column(z, x, y):
    return 10 if x % 2 == 0 else (5 if y % 2 == 0 else 0)  # 10 days, 5 days, or new


@pytest.mark.parametrize("name", ["Disk", "LimitedDisk"])
def test_clean_older_than_removes_only_the_old_tiles(tmp_path, name):
    spec = {"name": name, "path": "cache"} | ({"limit": 10_000_000} if name == "LimitedDisk" else {})
    cfg = write_config(tmp_path, spec)
    before = fill(cfg, [1, 2, 3], age_of=old_if_even_column)
    older_than_week = {t for t in before if old_if_even_column(*t) == 10}
    older_than_day = {t for t in before if old_if_even_column(*t) >= 5}

    dry = tool("clean", "-c", cfg, "-l", "grid", "--older-than", "7d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert listed(dry.stdout) == older_than_week and f"would remove {len(older_than_week)} tiles" in dry.stderr
    assert stored(cfg) == before

    # with a box (and zooms) only the old tiles there
    box = (-60, -170, 60, -10)  # the western half, roughly
    in_box = bbox_tiles(*box, [2, 3])
    result = tool("clean", "-c", cfg, "-l", "grid", "--older-than", "1d", "-b", *box, 2, 3)
    assert result.returncode == 0, result.stderr
    assert stored(cfg) == before - (older_than_day & in_box)
    # alone: every tile of the layer in the cache, at the given zooms only
    assert tool("clean", "-c", cfg, "-l", "grid", "--older-than", "168h", 3).returncode == 0
    assert stored(cfg) == before - (older_than_day & in_box) - {t for t in older_than_week if t[0] == 3}
    assert tool("clean", "-c", cfg, "-l", "grid", "--older-than", "1w").returncode == 0
    assert stored(cfg) == before - (older_than_day & in_box) - older_than_week
    if name == "LimitedDisk":  # its index forgets the removed tiles too
        config = TileStache.parseConfig(cfg)
        assert config.cache.used_bytes() == sum(os.path.getsize(p) for p in (tmp_path / "cache").rglob("*.png"))


def test_clean_older_than_with_a_tile_list(tmp_path):
    cfg = write_config(tmp_path, {"name": "Disk", "path": "cache"})
    before = fill(cfg, [2], age_of=old_if_even_column)
    (tmp_path / "list.txt").write_text("2/0/0\n2/1/0\n2/2/1\n")
    assert tool("clean", "-c", cfg, "-l", "grid", "--older-than", "7d", "--tile-list", tmp_path / "list.txt").returncode == 0
    assert stored(cfg) == before - {(2, 0, 0), (2, 2, 1)}


def test_clean_older_than_on_a_multi_cache_takes_ages_from_its_last_tier(tmp_path):
    cfg = write_config(tmp_path, {"name": "Multi", "tiers": [{"name": "Disk", "path": "fast"},
                                                            {"name": "Disk", "path": "cache"}]})
    config = TileStache.parseConfig(cfg)
    layer, (fast, lasting) = config.layers["grid"], config.cache.tiers
    tiles = {(2, x, y) for x in range(4) for y in range(4)}
    for z, x, y in tiles:
        config.cache.save(b"tile", layer, Coordinate(y, x, z), "PNG")
        if old_if_even_column(z, x, y) == 10:  # old in the lasting tier only; the fast tier's copies are new
            then = time.time() - 10 * DAY
            os.utime(lasting._filepath(layer, Coordinate(y, x, z), "PNG"), (then, then))
    old = {t for t in tiles if old_if_even_column(*t) == 10}
    assert old and old < tiles
    result = tool("clean", "-c", cfg, "-l", "grid", "--older-than", "7d", 2)
    assert result.returncode == 0, result.stderr
    for tier in (fast, lasting):  # removed from every tier
        assert {(int(c.zoom), int(c.column), int(c.row)) for c, _ in tier.saved_tiles(layer, "PNG")} == tiles - old


def test_bad_duration_or_an_ageless_cache_exit_2_and_remove_nothing(tmp_path):
    cfg = write_config(tmp_path, {"name": "Disk", "path": "cache"})
    before = fill(cfg, [1], age_of=lambda *t: 30)
    result = tool("clean", "-c", cfg, "-l", "grid", "--older-than", "7x", 1)
    assert result.returncode == 2 and "--older-than" in result.stderr and "bad duration '7x'" in result.stderr
    assert stored(cfg) == before
    test_cfg = write_config(tmp_path / "cache", {"name": "Test"})
    result = tool("clean", "-c", test_cfg, "-l", "grid", "--older-than", "7d", 1)
    assert result.returncode == 2 and "records when tiles were saved" in result.stderr


# -- age: MBTiles (the cache's clock set back) -----------------------------------

def test_mbtiles_records_save_times_beside_the_spec_tables(tmp_path):
    cfg = write_config(tmp_path, {"name": "MBTiles", "filename": "tiles.mbtiles"})
    config = TileStache.parseConfig(cfg)
    layer, cache = config.layers["grid"], config.cache
    now = time.time()
    cache.clock = lambda: now - 10 * DAY
    for x in range(4):
        cache.save(b"old", layer, Coordinate(0, x, 2), "PNG")
    cache.clock = time.time
    for x in range(4):
        cache.save(b"new", layer, Coordinate(1, x, 2), "PNG")
    assert cache.saved_time(layer, Coordinate(0, 1, 2), "PNG") == pytest.approx(now - 10 * DAY)
    assert cache.saved_time(layer, Coordinate(3, 3, 2), "PNG") is None  # no such tile

    result = tool("clean", "-c", cfg, "-l", "grid", "--older-than", "7d", "--dry-run")
    assert listed(result.stdout) == {(2, x, 0) for x in range(4)}
    assert tool("clean", "-c", cfg, "-l", "grid", "--older-than", "7d").returncode == 0
    assert stored(cfg) == {(2, x, 1) for x in range(4)}

    # the original's schema is untouched: tiles and metadata as the spec has them, our table apart
    db = sqlite3.connect(tmp_path / "tiles.mbtiles")
    assert [r[1] for r in db.execute("PRAGMA table_info(tiles)")] == ["zoom_level", "tile_column", "tile_row",
                                                                      "tile_data"]
    assert db.execute("SELECT COUNT(*) FROM tiles").fetchone()[0] == 4
    assert db.execute("SELECT COUNT(*) FROM tilestache_saved").fetchone()[0] == 4  # removed rows went too
    # a file made before the table existed gains it, and its old tiles (of unknown age) stay
    db.execute("DROP TABLE tilestache_saved")
    db.commit()
    db.close()
    assert tool("clean", "-c", cfg, "-l", "grid", "--older-than", "1s").returncode == 0
    assert len(TileStache.MBTiles.list_tiles(str(tmp_path / "tiles.mbtiles"))) == 4


# -- age: S3 (moto in this process, its clock set back while writing) -------------

@pytest.fixture
def clock_moto(monkeypatch):
    """A moto S3 server in this process, and a function that sets its clock back by some days."""
    import moto.s3.models
    from moto.server import ThreadedMotoServer

    real = moto.s3.models.utcnow
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()

    def set_back(days: float) -> None:
        monkeypatch.setattr(moto.s3.models, "utcnow", lambda: real() - datetime.timedelta(days=days))

    try:
        yield f"http://{host}:{port}", set_back
    finally:
        server.stop()


def test_clean_older_than_on_s3_by_last_modified(tmp_path, clock_moto, capsys):
    endpoint, set_back = clock_moto
    cfg = write_config(tmp_path, {"name": "S3", "bucket": "aged", "path": "v1", "endpoint url": endpoint,
                                  "access": "testing", "secret": "testing", "region": "us-east-1"})
    config = TileStache.parseConfig(cfg)
    layer, cache = config.layers["grid"], config.cache
    set_back(10)
    for x in range(4):
        cache.save(b"old", layer, Coordinate(0, x, 2), "PNG")
    set_back(0)
    for x in range(4):
        cache.save(b"new", layer, Coordinate(1, x, 2), "PNG")
    cache.client.put_object(Bucket="aged", Key="v1/grid/2/0/0.png-lock", Body=b"")  # not a tile
    assert time.time() - cache.saved_time(layer, Coordinate(0, 2, 2), "PNG") > 9 * DAY

    assert clean.main(["-c", cfg, "-l", "grid", "--older-than", "7d", "--dry-run"]) == 0
    assert listed(capsys.readouterr().out) == {(2, x, 0) for x in range(4)}
    assert stored(cfg) == {(2, x, y) for x in range(4) for y in (0, 1)}
    assert clean.main(["-c", cfg, "-l", "grid", "--older-than", "7d", "-b", "-85", "-180", "85", "0", "2"]) == 0
    assert stored(cfg) == {(2, x, 1) for x in range(4)} | {(2, 2, 0), (2, 3, 0)}  # the western ones went
    assert clean.main(["-c", cfg, "-l", "grid", "--older-than", "7d"]) == 0
    assert stored(cfg) == {(2, x, 1) for x in range(4)}
