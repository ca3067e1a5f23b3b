"""Memcache: tiles in one or more memcached servers (python-memcached).

Configuration::

    "cache": {"name": "Memcache", "servers": ["127.0.0.1:11211"],
              "revision": 0, "key prefix": "tiles"}

Keys are ``{key prefix}/{revision}/{layer}/{z}/{x}/{y}.{FORMAT}``; a key of
250 characters or more keeps its first and last 100 characters around the
SHA-1 of the whole key. The layer's ``cache lifespan`` becomes the items'
expiry; a lock is an ``add``-ed key that expires after the layer's ``stale
lock timeout``. Tiles larger than memcached's item size limit are not
stored. A memcached that is down costs a log line, not a tile.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
import uuid

import memcache

from .SharedCache import RETRY_AFTER, SOCKET_TIMEOUT, Outage, check_prefix, tile_parts

log = logging.getLogger(__name__)

MAX_KEY = 250  # memcached's key length limit
KEY_ENDS = 100  # characters kept at each end of a hashed key
ITEM_HEADROOM = 1024  # bytes of memcached's item limit taken by key and item header
LOCK_POLL = 0.02  # seconds between two tries for a held lock


def tile_key(layer, coord, format: str, revision: int, key_prefix: str) -> str:
    """The memcached key of a tile, shortened with SHA-1 when too long."""
    name, z, x, y = tile_parts(layer, coord)
    key = f"{key_prefix}/{int(revision)}/{name}/{z}/{x}/{y}.{format}"
    if len(key) >= MAX_KEY:
        key = key[:KEY_ENDS] + hashlib.sha1(key.encode("utf-8")).hexdigest() + key[-KEY_ENDS:]
    return key


def lock_key(tile: str) -> str:
    """The key of a tile's lock (kept under the length limit)."""
    key = tile + "-lock"
    if len(key) >= MAX_KEY:
        key = key[:KEY_ENDS] + hashlib.sha1(key.encode("utf-8")).hexdigest() + key[-KEY_ENDS:]
    return key


def expiry(seconds: float | None) -> int:
    """Seconds as a memcached expiry (0 = never); at least 1 when set."""
    return 0 if not seconds else max(1, math.ceil(float(seconds)))


class Cache:
    """Tiles stored in memcached, shared by every worker that names the same servers."""

    def __init__(self, servers: list[str] | str = ["127.0.0.1:11211"], revision: int = 0,  # noqa: B006
                 key_prefix: str = "") -> None:
        self.servers = [servers] if isinstance(servers, str) else [str(s) for s in servers]
        if not self.servers:
            raise ValueError("servers must name at least one memcached server")
        self.revision = int(revision)
        self.key_prefix = check_prefix(key_prefix, "key prefix")
        self.outage = Outage(f"memcached {', '.join(self.servers)}")
        self._pid = os.getpid()
        self.client = memcache.Client(self.servers, socket_timeout=SOCKET_TIMEOUT,
                                      dead_retry=RETRY_AFTER)
        self.max_item = self.client.server_max_value_length - ITEM_HEADROOM
        self._tokens: dict[tuple[int, str], str] = {}

    def _key(self, layer, coord, format) -> str:
        return tile_key(layer, coord, format, self.revision, self.key_prefix)

    def _client(self) -> memcache.Client:
        if os.getpid() != self._pid:  # forked: never share the parent's sockets
            self._pid = os.getpid()
            self.client.disconnect_all()
        return self.client

    def _all_dead(self) -> bool:
        now = time.time()
        return all(server.deaduntil > now for server in self.client.servers)

    def _check(self, action: str) -> bool:
        """After a call: note whether memcached answered; True when it did."""
        if self._all_dead():
            self.outage.failed(action, ConnectionError("no memcached server answers"))
            return False
        self.outage.succeeded()
        return True

    def lock(self, layer, coord, format) -> None:
        """Add a lock key (expiring after the stale lock timeout), waiting while another holds it."""
        key = lock_key(self._key(layer, coord, format))
        token = uuid.uuid4().hex
        timeout = expiry(layer.stale_lock_timeout)
        client = self._client()
        deadline = time.monotonic() + timeout + 1
        while True:
            if client.add(key, token, time=timeout):
                self._tokens[(threading.get_ident(), key)] = token
                self.outage.succeeded()
                return
            if not self._check("lock"):
                return  # no memcached: render without a shared lock
            if time.monotonic() > deadline:  # memcached should have expired it by now
                log.warning("Breaking stale memcached lock %s", key)
                client.delete(key)
                deadline = time.monotonic() + timeout + 1
            time.sleep(LOCK_POLL)

    def unlock(self, layer, coord, format) -> None:
        """Delete the lock key if it is still ours."""
        key = lock_key(self._key(layer, coord, format))
        token = self._tokens.pop((threading.get_ident(), key), None)
        if token is None:
            return
        client = self._client()
        if client.get(key) == token:
            client.delete(key)

    def remove(self, layer, coord, format) -> None:
        """Delete the tile."""
        self._client().delete(self._key(layer, coord, format))
        self._check("remove")

    def read(self, layer, coord, format) -> bytes | None:
        """The tile's bytes, or None."""
        if not self.outage.available():
            return None
        value = self._client().get(self._key(layer, coord, format))
        if value is None:
            self._check("read")
            return None
        self.outage.succeeded()
        return value.encode("utf-8") if isinstance(value, str) else value

    def save(self, body: bytes, layer, coord, format) -> None:
        """Store the tile for the layer's cache lifespan; too large a tile is skipped."""
        key = self._key(layer, coord, format)
        if len(body) > self.max_item - len(key):
            log.warning("Not caching %s in memcached: %d bytes is over its item size limit",
                        key, len(body))
            return
        if not self.outage.available():
            return
        stored = self._client().set(key, bytes(body), time=expiry(layer.cache_lifespan))
        if self._check("save") and not stored:
            log.warning("memcached refused to store %s (%d bytes)", key, len(body))
