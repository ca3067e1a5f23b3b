"""Redis cache against a real redis-server: keys, lifespan, owned locks, outages."""
import time
import uuid

import pytest
import redis

import services
from cache_helpers import (LAYER, RED, assert_expires, assert_one_render, assert_removed_then_rendered,
                           assert_served_by_stopped_server, assert_stale_lock_broken, coord, get,
                           make_config, renders, solid_colour)
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

    assert_removed_then_rendered(config, log, (3, 2, 2),
                                 lambda: client.get(f"{prefix}/{LAYER}/3/2/2.PNG") is not None)


def test_cache_lifespan_is_the_key_expiry(redis_server, tmp_path):
    log = tmp_path / "renders.log"
    spec = cache_spec(redis_server)
    config = make_config(spec, log, lifespan=1)

    def expires_in_a_second():
        assert 0 < bare(redis_server).ttl(f"{spec['key prefix']}/{LAYER}/3/2/2.PNG") <= 1

    assert_expires(config, log, wait=1.2, while_fresh=expires_in_a_second)


def test_one_render_across_processes(redis_server, tmp_path):
    assert_one_render(cache_spec(redis_server), tmp_path / "renders.log")


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
    assert_stale_lock_broken(config, log, (3, 2, 3), at_least=0.3)


def test_server_stopped_mid_test(tmp_path, caplog):
    assert_served_by_stopped_server(services.RedisServer, cache_spec, tmp_path, caplog)


def test_bad_url_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="url"):
        make_config({"name": "Redis", "url": "http://localhost"}, tmp_path / "renders.log")
