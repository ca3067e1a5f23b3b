"""LimitedDisk cache on a real folder: Disk layout, size cap, LRU eviction, lifespan, locks."""
import os
import sqlite3
import time

import pytest

from cache_helpers import (LAYER, RED, assert_expires, assert_one_render, assert_removed_then_rendered, get,
                           make_config, renders, solid_colour)
from TileStache.Errors import ConfigError


def spec(tmp_path, limit=10_000_000, **extra):
    return {"name": "LimitedDisk", "path": str(tmp_path / "tiles"), "limit": limit, "dirs": "portable", **extra}


def tile_file(tmp_path, z, x, y):
    return tmp_path / "tiles" / LAYER / str(z) / str(x) / f"{y}.png"


def test_round_trip_in_the_disk_layout(tmp_path):
    log = tmp_path / "renders.log"
    config = make_config(spec(tmp_path), log)
    mime, body = get(config, 3, 2, 2)
    assert mime == "image/png" and solid_colour(body) == RED
    assert tile_file(tmp_path, 3, 2, 2).read_bytes() == body
    assert config.cache.used_bytes() == sum(tile_file(tmp_path, 3, x, y).stat().st_size
                                            for x in (2, 3) for y in (2, 3))
    assert get(config, 3, 3, 3)[1] == tile_file(tmp_path, 3, 3, 3).read_bytes()
    assert renders(log) == 1
    assert_removed_then_rendered(config, log, (3, 2, 2), tile_file(tmp_path, 3, 2, 2).exists)


def test_least_recently_used_tiles_are_evicted(tmp_path):
    log = tmp_path / "renders.log"
    probe = make_config(spec(tmp_path / "probe"), log, metatile=1)
    size = len(get(probe, 5, 0, 0)[1])  # every solid tile encodes to the same size
    config = make_config(spec(tmp_path, limit=3 * size + size // 2), log, metatile=1)
    config.cache.touch_every = 0
    for x in range(3):
        get(config, 5, x, 0)
    assert all(tile_file(tmp_path, 5, x, 0).exists() for x in range(3))
    get(config, 5, 0, 0)  # a hit: tile 0 is now the most recently used
    get(config, 5, 3, 0)  # over the limit: tile 1, the least recently used, goes
    assert [tile_file(tmp_path, 5, x, 0).exists() for x in range(4)] == [True, False, True, True]
    assert config.cache.used_bytes() == 3 * size <= config.cache.limit
    before = renders(log)
    get(config, 5, 1, 0)
    assert renders(log) == before + 1


def test_cache_lifespan(tmp_path):
    log = tmp_path / "renders.log"
    assert_expires(make_config(spec(tmp_path), log, lifespan=1), log, wait=1.2)


def test_one_render_across_processes(tmp_path):
    assert_one_render(spec(tmp_path), tmp_path / "renders.log")
    left = [d for _, dirs, _ in os.walk(tmp_path / "tiles") for d in dirs if d.endswith(".lock")]
    assert not left


def test_limit_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="limit"):
        make_config(spec(tmp_path, limit=0), tmp_path / "renders.log")


def test_a_hot_tile_is_stamped_once_per_period(tmp_path):
    config = make_config(spec(tmp_path), tmp_path / "renders.log", metatile=1)
    config.cache.touch_every = 0.5
    path = str(tile_file(tmp_path, 3, 2, 2))
    index = sqlite3.connect(config.cache.index_path, isolation_level=None)

    def used_after_a_read():
        index.execute("UPDATE tiles SET used = 0 WHERE path = ?", (path,))  # forget the last stamp
        get(config, 3, 2, 2)
        return index.execute("SELECT used FROM tiles WHERE path = ?", (path,)).fetchone()[0]

    get(config, 3, 2, 2)  # rendered and saved
    time.sleep(0.6)
    assert abs(used_after_a_read() - time.time()) < 0.4  # a read in a new period stamps the tile
    assert used_after_a_read() == 0  # read again within the period: no second UPDATE
    time.sleep(0.6)
    assert abs(used_after_a_read() - time.time()) < 0.4
