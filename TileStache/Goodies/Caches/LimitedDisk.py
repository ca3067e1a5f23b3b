"""LimitedDisk: a Disk cache capped at a size, evicting the least recently used tiles.

Configuration::

    "cache": {"name": "LimitedDisk", "path": "/var/cache/tiles", "limit": 104857600}

Tiles are files laid out exactly as the Disk cache lays them out (``dirs``,
``gzip``, ``umask`` work the same). A small SQLite index beside them,
``.limiteddisk.sqlite`` in the cache folder, records each tile's size and
when it was last read or written; when a save takes the total over
``limit`` bytes, the least recently used tiles are deleted until it fits.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time

from ...Caches import CacheEntry, Disk, make_folders

log = logging.getLogger(__name__)

INDEX_NAME = ".limiteddisk.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS tiles (path TEXT PRIMARY KEY, size INTEGER NOT NULL, used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tiles_used ON tiles (used);
"""
TOUCH_EVERY = 1.0  # seconds: a tile read more often is re-stamped at most this often per process


class Cache(Disk):
    """A Disk cache that never holds more than ``limit`` bytes of tiles."""

    def __init__(self, path: str, limit: int, umask: int | str = 0o022, dirs: str = "safe",
                 gzip: list[str] | tuple[str, ...] = ("txt", "text", "json", "xml")) -> None:
        super().__init__(path, umask=umask, dirs=dirs, gzip=gzip)
        self.limit = int(limit)
        if self.limit <= 0:
            raise ValueError("limit must be a positive number of bytes")
        make_folders(self.cachepath, 0o777 & ~self.umask)
        self.index_path = os.path.join(self.cachepath, INDEX_NAME)
        self._create_index_file()
        self.touch_every = TOUCH_EVERY
        self._touched: set[str] = set()  # tiles this process stamped since _touched_since
        self._touched_since = 0.0
        self._local = threading.local()
        self._db().executescript(SCHEMA)

    def _create_index_file(self) -> None:
        """Make the empty index file with the cache's umask; SQLite gives its -wal and -shm files the same mode."""
        try:
            fd = os.open(self.index_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        try:
            os.fchmod(fd, 0o666 & ~self.umask)
        finally:
            os.close(fd)

    def _db(self) -> sqlite3.Connection:
        """This thread's connection to the index (a new one after a fork)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn = sqlite3.connect(self.index_path, timeout=10, isolation_level=None)
            local.conn.execute("PRAGMA journal_mode=WAL")
            local.pid = os.getpid()
        return local.conn

    def used_bytes(self) -> int:
        """Bytes of tiles the index holds."""
        return int(self._db().execute("SELECT COALESCE(SUM(size), 0) FROM tiles").fetchone()[0])

    def read_entry(self, layer, coord, format) -> CacheEntry | None:
        """As Disk, and the tile counts as just used."""
        path = self._filepath(layer, coord, format)
        entry = self._read_path(path, layer, coord, format)
        if entry is not None:
            self._touch(path)
        return entry

    def _touch(self, path: str) -> None:
        """Stamp a tile as used now, unless this process stamped it less than touch_every ago.

        The stamps this process wrote since ``_touched_since`` are remembered in a set that is
        emptied every ``touch_every`` seconds, so a tile read again and again costs one UPDATE
        per period instead of one per read, the memory stays bounded by the tiles read in one
        period, and every tile's stamp still lags its last read by less than ``touch_every``.
        """
        now = time.time()
        if now - self._touched_since >= self.touch_every:
            self._touched = set()
            self._touched_since = now
        elif path in self._touched:
            return
        self._db().execute("UPDATE tiles SET used = ? WHERE path = ? AND used < ?", (now, path, now))
        self._touched.add(path)

    def remove(self, layer, coord, format) -> None:
        """As Disk, and forget the tile in the index."""
        super().remove(layer, coord, format)
        self._db().execute("DELETE FROM tiles WHERE path = ?", (self._filepath(layer, coord, format),))

    def save(self, body: bytes, layer, coord, format) -> None:
        """As Disk, then evict least recently used tiles while over the limit."""
        super().save(body, layer, coord, format)
        path = self._filepath(layer, coord, format)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:  # evicted by another worker already
            return
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT OR REPLACE INTO tiles (path, size, used) VALUES (?, ?, ?)",
                       (path, size, time.time()))
            evicted = self._evict(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for victim in evicted:
            try:
                os.remove(victim)
            except FileNotFoundError:
                pass
        if evicted:
            log.debug("LimitedDisk evicted %d tiles", len(evicted))

    def _evict(self, db: sqlite3.Connection) -> list[str]:
        """Forget the oldest tiles until the total fits the limit; their paths, to delete."""
        excess = int(db.execute("SELECT COALESCE(SUM(size), 0) FROM tiles").fetchone()[0]) - self.limit
        victims = []
        if excess > 0:
            for victim, size in db.execute("SELECT path, size FROM tiles ORDER BY used, rowid"):
                victims.append(victim)
                excess -= size
                if excess <= 0:
                    break
            db.executemany("DELETE FROM tiles WHERE path = ?", [(v,) for v in victims])
        return victims
