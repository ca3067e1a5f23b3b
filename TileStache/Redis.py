"""Redis: tiles in a Redis server (redis-py).

Configuration::

    "cache": {"name": "Redis", "host": "localhost", "port": 6379, "db": 0,
              "key prefix": "tiles"}
    "cache": {"name": "Redis", "url": "redis://:secret@cache.internal:6379/2"}

Keys are ``{key prefix}/{layer}/{z}/{x}/{y}.{FORMAT}``, stored with the
layer's ``cache lifespan`` as their expiry (``SET ... EX``). A lock is the
tile key + ``-lock`` set with ``SET NX PX`` (expiring after the layer's
``stale lock timeout``) to a random token, and deleted only by its owner.
A Redis that is down costs a log line, not a tile.
"""
from __future__ import annotations

import math
import threading
import time
import uuid

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .SharedCache import Outage, check_prefix, tile_parts

LOCK_POLL = 0.02  # seconds between two tries for a held lock
# Connect and socket timeouts (seconds): a Redis that is gone costs a request at most this,
# once; then the Outage skips it. No retries inside redis-py (its default backs off for seconds).
TIMEOUT = 0.25

# Delete a key only when it still holds the caller's token.
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def tile_key(layer, coord, format: str, key_prefix: str) -> str:
    """The Redis key of a tile."""
    name, z, x, y = tile_parts(layer, coord)
    return f"{key_prefix}/{name}/{z}/{x}/{y}.{format}"


class Cache:
    """Tiles stored in Redis, shared by every worker that names the same server."""

    def __init__(self, host: str = "localhost", port: int = 6379, db: int = 0,
                 key_prefix: str = "", url: str | None = None) -> None:
        self.key_prefix = check_prefix(key_prefix, "key prefix")
        options = dict(socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0),
                       health_check_interval=0)
        if url:
            if not str(url).startswith(("redis://", "rediss://", "unix://")):
                raise ValueError("url must start with redis://, rediss:// or unix://")
            self.client = redis.Redis.from_url(str(url), **options)
            where = self.client.connection_pool.connection_kwargs
            label = f"{where.get('host', where.get('path'))}:{where.get('port', '')}"
        else:
            self.client = redis.Redis(host=str(host), port=int(port), db=int(db), **options)
            label = f"{host}:{port}"
        self.outage = Outage(f"Redis {label}")
        self._release = self.client.register_script(RELEASE)
        self._tokens: dict[tuple[int, str], str] = {}

    def _key(self, layer, coord, format) -> str:
        return tile_key(layer, coord, format, self.key_prefix)

    def _call(self, action: str, method, *args, **kwargs):
        """Run one Redis command; (True, result), or (False, None) when Redis is unavailable."""
        if not self.outage.available():
            return False, None
        try:
            result = method(*args, **kwargs)
        except redis.RedisError as error:
            self.outage.failed(action, error)
            return False, None
        self.outage.succeeded()
        return True, result

    def lock(self, layer, coord, format) -> None:
        """SET the lock key NX PX with a fresh token, waiting while another holds it."""
        key = self._key(layer, coord, format) + "-lock"
        token = uuid.uuid4().hex
        millis = max(1, math.ceil(float(layer.stale_lock_timeout) * 1000))
        while True:
            ok, taken = self._call("lock", self.client.set, key, token, nx=True, px=millis)
            if not ok:
                return  # no Redis: render without a shared lock
            if taken:
                self._tokens[(threading.get_ident(), key)] = token
                return
            time.sleep(LOCK_POLL)

    def unlock(self, layer, coord, format) -> None:
        """Delete the lock key, only if it still holds our token."""
        key = self._key(layer, coord, format) + "-lock"
        token = self._tokens.pop((threading.get_ident(), key), None)
        if token is not None:
            self._call("unlock", self._release, keys=[key], args=[token])

    def remove(self, layer, coord, format) -> None:
        """Delete the tile."""
        self._call("remove", self.client.delete, self._key(layer, coord, format))

    def read(self, layer, coord, format) -> bytes | None:
        """The tile's bytes, or None."""
        return self._call("read", self.client.get, self._key(layer, coord, format))[1]

    def save(self, body: bytes, layer, coord, format) -> None:
        """Store the tile, expiring after the layer's cache lifespan."""
        lifespan = layer.cache_lifespan
        seconds = max(1, math.ceil(float(lifespan))) if lifespan else None
        self._call("save", self.client.set, self._key(layer, coord, format), bytes(body), ex=seconds)
