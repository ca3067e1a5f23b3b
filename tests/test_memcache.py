"""Memcache cache against a real memcached: keys, lifespan, locks, size limit, outages."""
import hashlib
import io
import logging
import os
import uuid

import memcache
import pytest
from PIL import Image

import services
import TileStache
from cache_helpers import (LAYER, RED, assert_expires, assert_one_render, assert_removed_then_rendered,
                           assert_served_by_stopped_server, assert_stale_lock_broken, coord, get,
                           make_config, renders, solid_colour)
from TileStache.Errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cache_spec(server, prefix=None, **extra):
    spec = {"name": "Memcache", "servers": [server.address],
            "key prefix": prefix if prefix is not None else uuid.uuid4().hex[:8]}
    spec.update(extra)
    return spec


def bare(server):
    return memcache.Client([server.address])


def test_round_trip_and_key_layout(memcached, tmp_path):
    log = tmp_path / "renders.log"
    spec = cache_spec(memcached, revision=3)
    config = make_config(spec, log)
    mime, body = get(config, 3, 2, 2)
    assert mime == "image/png" and solid_colour(body) == RED
    assert renders(log) == 1
    # the whole 2x2 metatile was saved, under {prefix}/{revision}/{layer}/{z}/{x}/{y}.{FORMAT}
    client = bare(memcached)
    for x, y in [(2, 2), (3, 2), (2, 3), (3, 3)]:
        stored = client.get(f"{spec['key prefix']}/3/{LAYER}/3/{x}/{y}.PNG")
        assert stored is not None and solid_colour(stored) == RED
    assert client.get(f"{spec['key prefix']}/3/{LAYER}/3/2/2.PNG") == body
    assert get(config, 3, 3, 3)[1] == client.get(f"{spec['key prefix']}/3/{LAYER}/3/3/3.PNG")
    assert renders(log) == 1

    assert_removed_then_rendered(config, log, (3, 2, 2),
                                 lambda: client.get(f"{spec['key prefix']}/3/{LAYER}/3/2/2.PNG") is not None)


def test_long_keys_are_hashed_under_the_limit(memcached, tmp_path):
    prefix = "p" * 245
    config = make_config(cache_spec(memcached, prefix), tmp_path / "renders.log")
    body = get(config, 3, 2, 2)[1]
    full = f"{prefix}/0/{LAYER}/3/2/2.PNG"
    short = full[:100] + hashlib.sha1(full.encode()).hexdigest() + full[-100:]
    assert len(short) < 250
    assert bare(memcached).get(short) == body


def test_mapnik_layer_round_trip(memcached):
    spec = cache_spec(memcached)
    config = TileStache.parseConfig({
        "cache": spec,
        "layers": {"world": {"provider": {"name": "mapnik", "mapfile": os.path.join(ROOT, "examples/world.xml")}}}})
    mime, body = TileStache.getTile(config.layers["world"], coord(1, 0, 0), "png")
    image = Image.open(io.BytesIO(body))
    assert mime == "image/png" and image.size == (256, 256)
    assert len(image.convert("RGB").getcolors(1 << 16)) > 2  # land and sea drawn
    assert bare(memcached).get(f"{spec['key prefix']}/0/world/1/0/0.PNG") == body


def test_cache_lifespan_is_the_item_expiry(memcached, tmp_path):
    log = tmp_path / "renders.log"
    assert_expires(make_config(cache_spec(memcached), log, lifespan=2), log, wait=3.1)


def test_one_render_across_processes(memcached, tmp_path):
    assert_one_render(cache_spec(memcached), tmp_path / "renders.log")


def test_crashed_holders_lock_expires(memcached, tmp_path):
    log = tmp_path / "renders.log"
    spec = cache_spec(memcached)
    config = make_config(spec, log, stale=2)
    # a holder that died without unlocking
    assert bare(memcached).add(f"{spec['key prefix']}/0/{LAYER}/3/2/2.PNG-lock", "dead", time=2)
    assert_stale_lock_broken(config, log, (3, 3, 3), at_least=0.9)  # memcached expires on whole seconds


def test_tiles_over_the_item_limit_are_skipped(memcached, tmp_path, caplog):
    spec = cache_spec(memcached)
    config = TileStache.parseConfig({"cache": spec, "layers": {LAYER: {
        "tile height": 1024,
        "provider": {"class": "cache_helpers:CountingProvider",
                     "kwargs": {"log": str(tmp_path / "renders.log"), "noise": True}}}}})
    with caplog.at_level(logging.WARNING, logger="TileStache.Memcache"):
        mime, body = get(config, 1, 0, 0)
    assert len(body) > 1024 * 1024 and Image.open(io.BytesIO(body)).size == (1024, 1024)
    assert bare(memcached).get(f"{spec['key prefix']}/0/{LAYER}/1/0/0.PNG") is None
    assert any("item size limit" in r.getMessage() for r in caplog.records)


def test_server_stopped_mid_test(tmp_path, caplog):
    assert_served_by_stopped_server(services.Memcached, cache_spec, tmp_path, caplog)


def test_unsafe_key_prefix_is_a_config_error(memcached, tmp_path):
    with pytest.raises(ConfigError, match="key prefix"):
        make_config(cache_spec(memcached, "has space"), tmp_path / "renders.log")
