"""Redis cache against a real redis-server: keys, lifespan, owned locks, outages."""
import time
import uuid

import pytest
import redis

import services
from cache_helpers import (LAYER, RED, assert_served_while_down, coord, get, make_config,
                           render_concurrently, renders, solid_colour)
from TileStache.Errors import ConfigError


def cache_spec(server, by_url=False):
    prefix = uuid.uuid4().hex[:8]
    if by_url:
        return {"name": "Redis", "url": server.url, "key prefix": prefix}
    return {"name": "Redis", "host": server.host, "port": server.port, "db": 0, "key prefix": prefix}


def bare(server):
    return redis.Redis(host=server.host, port=server.port, db=0)


@pytest.mark.parametrize("by_url", [False, True])
def test_round_trip_and_key_layout(redis_server, tmp_path, by_url):
    log = tmp_path / "renders.log"
    spec = cache_spec(redis_server, by_url)
    config = make_config(spec, log)
    mime, body = get(config, 3, 2, 2)
    assert mime == "image/png" and solid_colour(body) == RED
    client = bare(redis_server)
    prefix = spec["key prefix"]
    assert sorted(k.decode() for k in client.keys(f"{prefix}/*")) == sorted(
        f"{prefix}/{LAYER}/3/{x}/{y}.PNG" for x in (2, 3) for y in (2, 3))
    assert client.get(f"{prefix}/{LAYER}/3/2/2.PNG") == body
    assert client.ttl(f"{prefix}/{LAYER}/3/2/2.PNG") == -1  # no lifespan, no expiry
    assert get(config, 3, 3, 2)[1] == client.get(f"{prefix}/{LAYER}/3/3/2.PNG")
    assert renders(log) == 1

    config.cache.remove(config.layers[LAYER], coord(3, 2, 2), "PNG")
    assert client.get(f"{prefix}/{LAYER}/3/2/2.PNG") is None
    get(config, 3, 2, 2)
    assert renders(log) == 2


def test_cache_lifespan_is_the_key_expiry(redis_server, tmp_path):
    log = tmp_path / "renders.log"
    spec = cache_spec(redis_server)
    config = make_config(spec, log, lifespan=1)
    get(config, 3, 2, 2)
    assert 0 < bare(redis_server).ttl(f"{spec['key prefix']}/{LAYER}/3/2/2.PNG") <= 1
    get(config, 3, 2, 2)
    assert renders(log) == 1
    time.sleep(1.2)
    get(config, 3, 2, 2)
    assert renders(log) == 2


def test_one_render_across_processes(redis_server, tmp_path):
    log = tmp_path / "renders.log"
    answers = render_concurrently(cache_spec(redis_server), log, processes=4)
    assert [a[1:] for a in answers] == [("image/png", RED)] * 4
    assert renders(log) == 1


def test_lock_is_released_only_by_its_owner(redis_server, tmp_path):
    spec = cache_spec(redis_server)
    config = make_config(spec, tmp_path / "renders.log", stale=0.3)
    layer, cache = config.layers[LAYER], config.cache
    key = f"{spec['key prefix']}/{LAYER}/3/2/2.PNG-lock"
    client = bare(redis_server)
    cache.lock(layer, coord(3, 2, 2), "PNG")
    assert 0 < client.pttl(key) <= 300
    time.sleep(0.4)  # our lock went stale; another worker takes it
    assert client.set(key, "someone-else", nx=True, px=5000)
    cache.unlock(layer, coord(3, 2, 2), "PNG")
    assert client.get(key) == b"someone-else"


def test_crashed_holders_lock_expires(redis_server, tmp_path):
    log = tmp_path / "renders.log"
    spec = cache_spec(redis_server)
    config = make_config(spec, log, stale=0.5)
    bare(redis_server).set(f"{spec['key prefix']}/{LAYER}/3/2/2.PNG-lock", "dead", px=500)
    started = time.monotonic()
    assert solid_colour(get(config, 3, 2, 3)[1]) == RED
    assert 0.3 < time.monotonic() - started < 5
    assert renders(log) == 1


def test_server_stopped_mid_test(tmp_path, caplog):
    server = services.RedisServer()
    try:
        log = tmp_path / "renders.log"
        config = make_config(cache_spec(server), log)
        assert_served_while_down(config, log, caplog, "TileStache.SharedCache", server.stop)
    finally:
        server.stop()


def test_bad_url_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="url"):
        make_config({"name": "Redis", "url": "http://localhost"}, tmp_path / "renders.log")
