"""GoogleCloud: tiles in a Google Cloud Storage bucket, through its S3-interoperable XML API.

Configuration, as in 1.51 (``access`` and ``secret`` are an HMAC key of the
bucket's project)::

    "cache": {
      "name": "TileStache.Goodies.Caches.GoogleCloud:Cache",
      "kwargs": {"bucket": "<bucket name>", "access": "<access key>", "secret": "<secret key>"}
    }

Keys are ``{layer}/{z}/{x}/{y}.{format, lower case}`` (``.jpeg`` for JPEG, as
the original wrote them), stored with the tile's ``Content-Type``. Everything
else (locks as ``{key}-lock`` objects, lifespan, outages) is the S3 cache's.
Our own kwarg ``endpoint_url`` points it elsewhere than
``https://storage.googleapis.com`` (a test store, say).
"""
from __future__ import annotations

from botocore.config import Config as BotoConfig

from ...S3 import Cache as S3Cache
from ...SharedCache import tile_parts

ENDPOINT = "https://storage.googleapis.com"
# Cloud Storage signs as S3 does but does not take the checksums newer boto3 adds to each request by default.
INTEROPERABLE = BotoConfig(request_checksum_calculation="when_required",
                           response_checksum_validation="when_required")


def tile_key(layer, coord, format: str) -> str:
    """The object key of a tile, as the original goodie made it."""
    name, z, x, y = tile_parts(layer, coord)
    return f"{name}/{z}/{x}/{y}.{format.lower()}"


class Cache(S3Cache):
    """The S3 cache on Google Cloud Storage, with the original goodie's key layout."""

    def __init__(self, bucket: str, access: str, secret: str, endpoint_url: str = ENDPOINT) -> None:
        super().__init__(bucket, access=access, secret=secret, endpoint_url=endpoint_url)
        self._client_options["config"] = self._client_options["config"].merge(INTEROPERABLE)
        if endpoint_url == ENDPOINT:
            self._client_options["region_name"] = "auto"  # the region Cloud Storage signs requests for
        self._client = self._pid = None  # made again with these options

    def _key(self, layer, coord, format) -> str:
        return tile_key(layer, coord, format)
