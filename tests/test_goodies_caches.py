"""The GoogleCloud cache goodie, pointed at moto's S3 server: the original's key layout and content types."""
import uuid

import pytest

from cache_helpers import LAYER, RED, get, make_config, renders, solid_colour
from TileStache.Errors import ConfigError
from TileStache.Goodies.Caches import GoogleCloud

CLASS = "TileStache.Goodies.Caches.GoogleCloud:Cache"


def cache_spec(server, bucket):
    # "class", as the original's Config reads it (its docstring says "name", which the original refused)
    return {"class": CLASS, "kwargs": {"bucket": bucket, "access": server.access_key, "secret": server.secret_key,
                                      "endpoint_url": server.endpoint_url}}


def keys(server, bucket):
    listing = server.client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_key_layout_and_types_as_the_original(s3_server, tmp_path):
    bucket = f"gcs-{uuid.uuid4().hex[:10]}"
    log = tmp_path / "renders.log"
    config = make_config(cache_spec(s3_server, bucket), log)  # the bucket is created
    mime, body = get(config, 3, 2, 2)
    assert mime == "image/png" and solid_colour(body) == RED
    get(config, 3, 2, 2, "jpg")
    # {layer}/{z}/{x}/{y}.{format lower case}: the original's goodie wrote JPEG tiles as .jpeg; no locks left
    # (the helper's layer renders 2x2 metatiles, so each format has the four tiles of 3/2/2's metatile)
    assert keys(s3_server, bucket) == sorted(f"{LAYER}/3/{x}/{y}.{ext}" for x in (2, 3) for y in (2, 3)
                                             for ext in ("jpeg", "png"))
    client = s3_server.client()
    png = client.get_object(Bucket=bucket, Key=f"{LAYER}/3/2/2.png")
    assert png["ContentType"] == "image/png" and png["Body"].read() == body
    assert client.head_object(Bucket=bucket, Key=f"{LAYER}/3/2/2.jpeg")["ContentType"] == "image/jpeg"
    assert get(config, 3, 2, 2)[1] == body and renders(log) == 2  # the second png read is a cache hit
    cache = config.cache
    assert [(c.zoom, c.column, c.row) for c, _ in cache.saved_tiles(config.layers[LAYER], "JPEG")] == [(3, x, y) for x in (2, 3) for y in (2, 3)]


def test_google_endpoint_by_default():
    assert GoogleCloud.ENDPOINT == "https://storage.googleapis.com"
    import inspect
    assert inspect.signature(GoogleCloud.Cache).parameters["endpoint_url"].default == GoogleCloud.ENDPOINT


@pytest.mark.parametrize("kwargs, key", [({"bucket": "b", "access": "a"}, "secret"),
                                         ({"bucket": "b", "access": "a", "secret": "s", "acl": "x"}, "acl")])
def test_missing_or_unknown_kwargs_fail_at_load(kwargs, key):
    import TileStache
    with pytest.raises(ConfigError) as error:
        TileStache.parseConfig({"cache": {"class": CLASS, "kwargs": kwargs}, "layers": {}})
    assert key in str(error.value)
