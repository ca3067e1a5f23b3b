"""S3: tiles as objects in an S3 bucket, or any S3-API store (boto3).

Configuration::

    "cache": {"name": "S3", "bucket": "tiles", "path": "v1",
              "access": "...", "secret": "...",          (else the AWS credential chain)
              "endpoint url": "http://minio:9000", "region": "eu-west-1",
              "use locks": true, "reduced redundancy": false}

Keys are ``{path}/{layer}/{z}/{x}/{y}.{ext}``, stored with the tile's
``Content-Type``. The layer's ``cache lifespan`` is checked against each
object's ``LastModified``. A lock is an object ``{key}-lock`` created only if
absent (``If-None-Match: *``), broken after the ``stale lock timeout`` and
deleted after the render. A missing bucket is created if the credentials
allow. An unreachable store costs a log line, not a tile.
"""
from __future__ import annotations

import logging
import mimetypes
import os
import time

import boto3
from ModestMaps.Core import Coordinate
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from .Caches import CacheEntry, tile_extension
from .Errors import ConfigError, ServiceUnavailable
from .SharedCache import SOCKET_TIMEOUT, Outage, check_prefix, tile_parts

log = logging.getLogger(__name__)

LOCK_POLL = 0.05  # seconds between two tries for a held lock
MISSING = ("404", "NoSuchKey", "NotFound")
TAKEN = ("412", "PreconditionFailed", "409", "ConditionalRequestConflict")


def tile_key(layer, coord, format: str, path: str) -> str:
    """The object key of a tile."""
    name, z, x, y = tile_parts(layer, coord)
    key = f"{name}/{z}/{x}/{y}.{tile_extension(format)}"
    return f"{path}/{key}" if path else key


def error_code(error: ClientError) -> str:
    """The S3 error code (or HTTP status) of a failed call."""
    return str(error.response.get("Error", {}).get("Code", ""))


class Cache:
    """Tiles stored in an S3 bucket, shared by every worker that names the same bucket."""

    def __init__(self, bucket: str, access: str | None = None, secret: str | None = None,
                 use_locks: bool = True, path: str = "", reduced_redundancy: bool = False,
                 endpoint_url: str | None = None, region: str | None = None) -> None:
        if not bucket or not isinstance(bucket, str):
            raise ConfigError("S3 needs a bucket name", key="bucket")
        self.bucket = bucket
        self.path = check_prefix(path, "path").strip("/")
        self.use_locks = bool(use_locks)
        self.storage_class = "REDUCED_REDUNDANCY" if reduced_redundancy else "STANDARD"
        self.region = region
        self._client_options = dict(
            endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id=access, aws_secret_access_key=secret,
            config=BotoConfig(connect_timeout=SOCKET_TIMEOUT, read_timeout=2 * SOCKET_TIMEOUT,
                              retries={"max_attempts": 1, "mode": "standard"}))
        self.outage = Outage(f"S3 bucket {bucket}" + (f" at {endpoint_url}" if endpoint_url else ""))
        self._pid = None
        self._client = None
        self._ensure_bucket()

    @property
    def client(self):
        """A boto3 S3 client of this process (clients are not shared across a fork)."""
        if self._pid != os.getpid():
            self._client = boto3.session.Session().client("s3", **self._client_options)
            self._pid = os.getpid()
        return self._client

    def _ensure_bucket(self) -> None:
        """Create the bucket if it is missing; a ConfigError when that is not allowed."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except BotoCoreError as error:
            log.warning("S3 not reachable at load, bucket %s not checked: %s", self.bucket, error)
            return
        except ClientError as error:
            if error_code(error) not in MISSING:
                raise ConfigError(f"cannot use bucket {self.bucket!r}: {error_code(error)}",
                                  key="bucket") from None
        options = {}
        if self.region and self.region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(Bucket=self.bucket, **options)
            log.info("Created S3 bucket %s", self.bucket)
        except (ClientError, BotoCoreError) as error:
            raise ConfigError(f"bucket {self.bucket!r} does not exist and could not be created: "
                              f"{error}", key="bucket") from None

    def _key(self, layer, coord, format) -> str:
        return tile_key(layer, coord, format, self.path)

    def _call(self, action: str, method, **kwargs):
        """One S3 call: (True, response), (True, ClientError) for S3's own refusals,
        or (False, None) when the store is unavailable."""
        if not self.outage.available():
            return False, None
        try:
            result = method(**kwargs)
        except ClientError as error:
            if error_code(error).startswith("5"):
                self.outage.failed(action, error)
                return False, None
            result = error
        except BotoCoreError as error:
            self.outage.failed(action, error)
            return False, None
        self.outage.succeeded()
        return True, result

    def lock(self, layer, coord, format) -> None:
        """Create the lock object if absent, waiting while another holds it."""
        if not self.use_locks:
            return
        key = self._key(layer, coord, format) + "-lock"
        timeout = float(layer.stale_lock_timeout)
        while True:
            ok, result = self._call("lock", self.client.put_object, Bucket=self.bucket, Key=key,
                                    Body=b"", IfNoneMatch="*")
            if not ok:
                return  # no S3: render without a shared lock
            if not isinstance(result, ClientError):
                return
            if error_code(result) not in TAKEN:
                log.warning("S3 refused lock %s: %s", key, error_code(result))
                return
            ok, head = self._call("lock", self.client.head_object, Bucket=self.bucket, Key=key)
            if ok and not isinstance(head, ClientError):
                age = time.time() - head["LastModified"].timestamp()
                if age > timeout:
                    log.warning("Breaking stale S3 lock %s (%.0fs old)", key, age)
                    self._call("unlock", self.client.delete_object, Bucket=self.bucket, Key=key)
                    continue
            time.sleep(LOCK_POLL)

    def unlock(self, layer, coord, format) -> None:
        """Delete the lock object."""
        if self.use_locks:
            self._call("unlock", self.client.delete_object, Bucket=self.bucket,
                       Key=self._key(layer, coord, format) + "-lock")

    def remove(self, layer, coord, format) -> None:
        """Delete the tile's object."""
        self._call("remove", self.client.delete_object, Bucket=self.bucket,
                   Key=self._key(layer, coord, format))

    def read_entry(self, layer, coord, format) -> CacheEntry | None:
        """The tile and its LastModified time; None when missing or older than the cache lifespan."""
        ok, result = self._call("read", self.client.get_object, Bucket=self.bucket,
                                Key=self._key(layer, coord, format))
        if not ok or isinstance(result, ClientError):
            return None
        modified = result["LastModified"].timestamp()
        lifespan = layer.cache_lifespan
        if lifespan and time.time() - modified > lifespan:
            result["Body"].close()
            return None
        try:
            body = result["Body"].read()
        except (BotoCoreError, OSError) as error:
            self.outage.failed("read", error)
            return None
        return CacheEntry(body, modified)

    def read(self, layer, coord, format) -> bytes | None:
        """The tile's bytes, or None."""
        entry = self.read_entry(layer, coord, format)
        return None if entry is None else entry.body

    def saved_time(self, layer, coord, format) -> float | None:
        """The tile's LastModified (epoch seconds), or None when there is no such object."""
        ok, result = self._call("read", self.client.head_object, Bucket=self.bucket,
                                Key=self._key(layer, coord, format))
        if not ok:
            raise ServiceUnavailable(f"{self.outage.name} is unavailable")
        return None if isinstance(result, ClientError) else result["LastModified"].timestamp()

    def saved_tiles(self, layer, format):
        """(coordinate, LastModified) of every tile object of the layer and format, by key."""
        name = tile_parts(layer, Coordinate(0, 0, 0))[0]
        prefix = f"{self.path}/{name}/" if self.path else f"{name}/"
        ending = "." + self._key(layer, Coordinate(0, 0, 0), format).rsplit(".", 1)[1]
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    parts = item["Key"][len(prefix):].split("/")
                    if len(parts) != 3 or not parts[2].endswith(ending):
                        continue
                    z, x, y = parts[0], parts[1], parts[2][:-len(ending)]
                    if z.isdigit() and x.isdigit() and y.isdigit():
                        yield Coordinate(int(y), int(x), int(z)), item["LastModified"].timestamp()
        except (ClientError, BotoCoreError) as error:
            raise ServiceUnavailable(f"{self.outage.name}: listing failed: {error}") from None

    def save(self, body: bytes, layer, coord, format) -> None:
        """Put the tile with its Content-Type."""
        ext = tile_extension(format)
        try:
            mimetype = layer.getTypeByExtension(ext)[0]
        except Exception:  # a provider that does not know its own extension
            mimetype = mimetypes.guess_type(f"tile.{ext}")[0] or "application/octet-stream"
        ok, result = self._call("save", self.client.put_object, Bucket=self.bucket,
                                Key=self._key(layer, coord, format), Body=bytes(body),
                                ContentType=mimetype, StorageClass=self.storage_class)
        if ok and isinstance(result, ClientError):
            log.warning("S3 refused to store a tile of %s: %s", layer.name(), error_code(result))
