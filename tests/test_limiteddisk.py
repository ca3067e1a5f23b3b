"""LimitedDisk cache on a real folder: Disk layout, size cap, LRU eviction, lifespan, locks."""
import os
import time

import pytest

from cache_helpers import LAYER, RED, coord, get, make_config, render_concurrently, renders, solid_colour
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
    config.cache.remove(config.layers[LAYER], coord(3, 2, 2), "PNG")
    assert not tile_file(tmp_path, 3, 2, 2).exists()
    get(config, 3, 2, 2)
    assert renders(log) == 2


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
    config = make_config(spec(tmp_path), log, lifespan=1)
    get(config, 3, 2, 2)
    get(config, 3, 2, 2)
    assert renders(log) == 1
    time.sleep(1.2)
    get(config, 3, 2, 2)
    assert renders(log) == 2


def test_one_render_across_processes(tmp_path):
    log = tmp_path / "renders.log"
    answers = render_concurrently(spec(tmp_path), log)
    assert [a[1:] for a in answers] == [("image/png", RED)] * 4
    assert renders(log) == 1
    left = [d for _, dirs, _ in os.walk(tmp_path / "tiles") for d in dirs if d.endswith(".lock")]
    assert not left


def test_limit_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="limit"):
        make_config(spec(tmp_path, limit=0), tmp_path / "renders.log")
