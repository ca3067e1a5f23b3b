"""S3 cache against moto's S3 server over HTTP: keys, types, lifespan, locks, outages, Multi."""
import uuid

import memcache
import pytest

import services
from cache_helpers import (LAYER, RED, assert_expires, assert_one_render, assert_removed_then_rendered,
                           assert_served_by_stopped_server, assert_stale_lock_broken, coord, get,
                           make_config, render_concurrently, renders, solid_colour)
from TileStache.Errors import ConfigError


def cache_spec(server, bucket=None, **extra):
    spec = {"name": "S3", "bucket": bucket or f"tiles-{uuid.uuid4().hex[:10]}",
            "endpoint url": server.endpoint_url, "region": server.region,
            "access": server.access_key, "secret": server.secret_key}
    spec.update(extra)
    return spec


def keys(server, bucket):
    listing = server.client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_round_trip_key_layout_and_types(s3_server, tmp_path):
    log = tmp_path / "renders.log"
    spec = cache_spec(s3_server, path="/v1/")
    config = make_config(spec, log)  # the bucket does not exist yet: it is created
    mime, body = get(config, 3, 2, 2)
    assert mime == "image/png" and solid_colour(body) == RED
    bucket, client = spec["bucket"], s3_server.client()
    assert keys(s3_server, bucket) == sorted(f"v1/{LAYER}/3/{x}/{y}.png" for x in (2, 3) for y in (2, 3))
    stored = client.get_object(Bucket=bucket, Key=f"v1/{LAYER}/3/2/2.png")
    assert stored["ContentType"] == "image/png" and stored["Body"].read() == body
    assert get(config, 3, 3, 3)[1] == client.get_object(Bucket=bucket, Key=f"v1/{LAYER}/3/3/3.png")["Body"].read()
    assert renders(log) == 1

    get(config, 3, 2, 2, "jpg")
    assert client.head_object(Bucket=bucket, Key=f"v1/{LAYER}/3/2/2.jpg")["ContentType"] == "image/jpeg"

    assert renders(log) == 2
    assert_removed_then_rendered(config, log, (3, 2, 2), lambda: f"v1/{LAYER}/3/2/2.png" in keys(s3_server, bucket))


def test_cached_tiles_carry_last_modified(s3_server, tmp_path):
    config = make_config(cache_spec(s3_server), tmp_path / "renders.log")
    get(config, 3, 2, 2)
    status, headers, body = config.layers[LAYER].getTileResponse(coord(3, 2, 2), "png")
    assert status == 200 and headers["Last-Modified"].endswith("GMT")


def test_cache_lifespan_from_last_modified(s3_server, tmp_path):
    log = tmp_path / "renders.log"
    # LastModified has whole seconds: a tile written late in a second looks up to 1 s older at once,
    # so a 1 s lifespan could expire it before the second read; 2 s cannot.
    config = make_config(cache_spec(s3_server), log, lifespan=2)
    assert_expires(config, log, wait=3.1)


def test_one_render_across_processes_and_no_lock_left(s3_server, tmp_path):
    log = tmp_path / "renders.log"
    spec = cache_spec(s3_server)
    make_config(spec, log)  # create the bucket once
    assert_one_render(spec, log)
    assert not [k for k in keys(s3_server, spec["bucket"]) if k.endswith("-lock")]


def test_crashed_holders_lock_is_broken(s3_server, tmp_path):
    log = tmp_path / "renders.log"
    spec = cache_spec(s3_server)
    config = make_config(spec, log, stale=2)  # LastModified has whole seconds: broken after 1-2 s
    s3_server.client().put_object(Bucket=spec["bucket"], Key=f"{LAYER}/3/2/2.png-lock", Body=b"")
    assert_stale_lock_broken(config, log, (3, 2, 2), at_least=0.9, at_most=6)
    assert keys(s3_server, spec["bucket"])[-1] == f"{LAYER}/3/3/3.png"  # no lock objects left


def test_bucket_that_cannot_be_created_is_a_config_error(s3_server, tmp_path):
    with pytest.raises(ConfigError, match="could not be created"):
        make_config(cache_spec(s3_server, bucket="b" * 70), tmp_path / "renders.log")


def test_memcache_in_front_of_s3(s3_server, memcached, tmp_path):
    log = tmp_path / "renders.log"
    s3 = cache_spec(s3_server)
    mc = {"name": "Memcache", "servers": [memcached.address], "key prefix": uuid.uuid4().hex[:8]}
    config = make_config({"name": "Multi", "tiers": [mc, s3]}, log)
    body = get(config, 3, 2, 2)[1]
    mc_key = f"{mc['key prefix']}/0/{LAYER}/3/2/2.PNG"
    bare = memcache.Client([memcached.address])
    assert bare.get(mc_key) == body
    assert s3_server.client().get_object(Bucket=s3["bucket"], Key=f"{LAYER}/3/2/2.png")["Body"].read() == body

    bare.delete(mc_key)  # memcached forgot it: S3 answers and refills memcached
    assert get(config, 3, 2, 2)[1] == body
    assert bare.get(mc_key) == body
    assert renders(log) == 1
    render_concurrently({"name": "Multi", "tiers": [mc, s3]}, tmp_path / "again.log")
    assert renders(tmp_path / "again.log") == 0  # every tile of that metatile is cached


def test_server_stopped_mid_test(tmp_path, caplog):
    assert_served_by_stopped_server(services.MotoS3, cache_spec, tmp_path, caplog)
