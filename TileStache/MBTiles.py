"""MBTiles: a SQLite tileset file as a cache, and as a provider.

Cache::

    "cache": {"name": "MBTiles", "filename": "tiles.mbtiles", "format": "png"}

Provider::

    "provider": {"name": "MBTiles", "tileset": "world.mbtiles"}

Rows are stored flipped, as the MBTiles spec (TMS) says: ``tile_row = 2^z - 1 - y``.
Files are put in WAL mode, so readers and a writer coexist. ``metadata``
holds the tileset's ``name`` and ``format`` (png, jpg, webp or pbf); vector
(pbf) tiles are stored gzip-compressed, as the spec recommends, and served
gzipped to clients that accept it: always when the provider reads them (the
stored bytes go out as they are), and on cache hits from caches that keep MVT
gzipped (an MBTiles cache, or Disk with "mvt" in its ``gzip`` list); other
caches hold plain MVT and serve it plain. A file that is not a readable tileset is
a ConfigError at load, and a KnownUnknown at request time; never a crash.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
import zlib

from ModestMaps.Core import Coordinate

from .Caches import CacheEntry
from .Config import resolve_path
from .Errors import BadRequest, ConfigError, KnownUnknown, NoTileLeftBehind

log = logging.getLogger(__name__)

# MBTiles format -> (MIME type, format name), and the extensions that ask for it.
TILESET_TYPES = {
    "png": ("image/png", "PNG"),
    "jpg": ("image/jpeg", "JPEG"),
    "webp": ("image/webp", "WEBP"),
    "pbf": ("application/vnd.mapbox-vector-tile", "MVT"),
}
EXTENSION_FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "pbf": "pbf", "mvt": "pbf"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS metadata (name TEXT, value TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS metadata_name ON metadata (name);
CREATE TABLE IF NOT EXISTS tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,
                                  tile_data BLOB);
CREATE UNIQUE INDEX IF NOT EXISTS tile_index ON tiles (zoom_level, tile_column, tile_row);
CREATE TABLE IF NOT EXISTS tilestache_locks (key TEXT PRIMARY KEY, token TEXT, created REAL);
CREATE TABLE IF NOT EXISTS tilestache_saved (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,
                                             saved REAL, PRIMARY KEY (zoom_level, tile_column, tile_row));
"""
# tilestache_saved: when the cache saved each tile (for tilestache-clean --older-than); a table of its
# own beside the spec's, so the file stays a valid MBTiles tileset for every other reader.

SELECT_TILE = "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?"

BUSY_TIMEOUT = 10.0  # seconds a writer waits for another
LOCK_POLL = 0.02


def tileset_format(format: str) -> str:
    """The MBTiles format name of a tile format or extension ("PNG" -> "png", "MVT" -> "pbf")."""
    return EXTENSION_FORMATS.get(format.lower(), format.lower())


def tms_row(coord) -> tuple[int, int, int]:
    """(zoom_level, tile_column, tile_row) of a coordinate, the row flipped to TMS."""
    z, x, y = int(coord.zoom), int(coord.column), int(coord.row)
    return z, x, (1 << z) - 1 - y


def unzip(body: bytes) -> bytes:
    """Bytes inflated from gzip or zlib, or as they are."""
    if body[:2] == b"\x1f\x8b":
        return gzip.decompress(body)
    if body[:1] == b"\x78":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return body
    return body


# This process's id, kept current across forks, so each read need not ask the kernel.
_process_id = os.getpid()


def _forked() -> None:
    global _process_id
    _process_id = os.getpid()


os.register_at_fork(after_in_child=_forked)


class Tileset:
    """One MBTiles file: a SQLite connection per thread and process, and its metadata."""

    def __init__(self, filename: str, writable: bool) -> None:
        self.filename = filename
        self.writable = writable
        self._local = threading.local()

    def db(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork)."""
        owned = getattr(self._local, "owned", None)  # (process id, connection)
        if owned is None or owned[0] != _process_id:
            if self.writable:
                conn = sqlite3.connect(self.filename, timeout=BUSY_TIMEOUT, isolation_level=None)
            else:
                uri = "file:" + self.filename.replace("?", "%3f").replace("#", "%23") + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
            owned = self._local.owned = (_process_id, conn)
        return owned[1]

    def create(self) -> None:
        """Make the tables and switch to WAL mode."""
        db = self.db()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)

    def metadata(self) -> dict[str, str]:
        """The metadata table as a dict."""
        return {str(n): str(v) for n, v in self.db().execute("SELECT name, value FROM metadata")}

    def set_metadata(self, name: str, value: str) -> None:
        self.db().execute("INSERT OR REPLACE INTO metadata (name, value) VALUES (?, ?)", (name, value))

    def get(self, coord) -> bytes | None:
        """The stored bytes of a tile, or None."""
        z = int(coord.zoom)  # tms_row, inlined: this is every cache hit
        row = self.db().execute(SELECT_TILE, (z, int(coord.column), (1 << z) - 1 - int(coord.row))).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, coord, body: bytes, saved: float | None = None) -> None:
        """Store a tile; with saved, record that time in tilestache_saved in the same transaction."""
        db = self.db()
        if saved is None:
            db.execute("INSERT OR REPLACE INTO tiles (zoom_level, tile_column, tile_row, tile_data)"
                       " VALUES (?, ?, ?, ?)", (*tms_row(coord), sqlite3.Binary(body)))
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT OR REPLACE INTO tiles (zoom_level, tile_column, tile_row, tile_data)"
                       " VALUES (?, ?, ?, ?)", (*tms_row(coord), sqlite3.Binary(body)))
            db.execute("INSERT OR REPLACE INTO tilestache_saved (zoom_level, tile_column, tile_row, saved)"
                       " VALUES (?, ?, ?, ?)", (*tms_row(coord), float(saved)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def delete(self, coord) -> None:
        where = "WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?"
        self.db().execute("DELETE FROM tiles " + where, tms_row(coord))
        self.db().execute("DELETE FROM tilestache_saved " + where, tms_row(coord))

    def saved_time(self, coord) -> float | None:
        """When the tile was saved by a TileStache cache, or None (no tile, or saved by something else)."""
        row = self.db().execute(
            "SELECT saved FROM tilestache_saved WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?"
            " AND EXISTS (SELECT 1 FROM tiles t WHERE t.zoom_level = tilestache_saved.zoom_level AND"
            " t.tile_column = tilestache_saved.tile_column AND t.tile_row = tilestache_saved.tile_row)",
            tms_row(coord)).fetchone()
        return None if row is None else float(row[0])

    def saved_tiles(self) -> list[tuple[Coordinate, float]]:
        """(coordinate, saved time) of every tile whose save time is recorded, by zoom, column, row."""
        rows = self.db().execute(
            "SELECT t.zoom_level, t.tile_column, t.tile_row, s.saved FROM tiles t JOIN tilestache_saved s"
            " ON s.zoom_level = t.zoom_level AND s.tile_column = t.tile_column AND s.tile_row = t.tile_row"
            " ORDER BY t.zoom_level, t.tile_column, t.tile_row").fetchall()
        return [(Coordinate((1 << int(z)) - 1 - int(y), int(x), int(z)), float(saved)) for z, x, y, saved in rows]

    def check(self, key: str) -> dict[str, str]:
        """The metadata, after proving the file is a readable tileset; ConfigError if not."""
        try:
            meta = self.metadata()
            self.db().execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles LIMIT 1")
        except sqlite3.Error as error:
            raise ConfigError(f"{self.filename} is not a readable MBTiles file: {error}", key=key) from None
        return meta


def open_tileset(filename: str) -> Tileset:
    """An existing MBTiles file opened read-only and checked; ConfigError if it is missing or unreadable."""
    if not os.path.isfile(filename):
        raise ConfigError(f"{filename} does not exist", key="tileset")
    tileset = Tileset(os.fspath(filename), writable=False)
    tileset.check("tileset")
    return tileset


def tileset_info(filename: str) -> list[str | None] | None:
    """[name, type, version, description, format, bounds] from a tileset's metadata; None if no file."""
    if not os.path.isfile(filename):
        return None
    meta = open_tileset(filename).metadata()
    return [meta.get(key) or None for key in ("name", "type", "version", "description", "format", "bounds")]


def list_tiles(filename: str) -> list[Coordinate]:
    """Every tile coordinate stored in a tileset, rows flipped back from TMS, by zoom, column, row."""
    try:
        rows = open_tileset(filename).db().execute(
            "SELECT zoom_level, tile_column, tile_row FROM tiles ORDER BY zoom_level, tile_column, tile_row")
        return [Coordinate((1 << int(z)) - 1 - int(y), int(x), int(z)) for z, x, y in rows]
    except sqlite3.Error as error:
        raise ConfigError(f"{filename} is not a readable MBTiles file: {error}", key="tileset") from None


def broken(error: sqlite3.Error) -> KnownUnknown:
    """The request-time error for a tileset that fails (message safe for clients)."""
    log.error("MBTiles read failed: %s", error)
    return KnownUnknown("The tileset could not be read")


class Cache:
    """Tiles of one format cached in an MBTiles file (created if missing)."""

    def __init__(self, filename: str, format: str | None = None, name: str | None = None) -> None:
        self.tileset = Tileset(os.fspath(filename), writable=True)
        try:
            self.tileset.create()
        except sqlite3.Error as error:
            raise ConfigError(f"cannot use {filename} as an MBTiles cache: {error}", key="filename") from None
        meta = self.tileset.check("filename")
        stored = meta.get("format")
        self.format = tileset_format(format) if format else stored
        if stored and self.format != stored:
            raise ConfigError(f"{filename} holds {stored} tiles, not {self.format}", key="format")
        if self.format and self.format not in TILESET_TYPES:
            raise ConfigError(f"format must be one of {', '.join(TILESET_TYPES)}", key="format")
        if self.format and not stored:
            self.tileset.set_metadata("format", self.format)
        if "name" not in meta:
            self.tileset.set_metadata("name", name or os.path.splitext(os.path.basename(filename))[0])
        self._tokens: dict[tuple[int, str], str] = {}
        self._held: str | None = None
        self.clock = time.time  # when save() says a tile was saved (tests set it back)

    def _holds(self, format: str) -> bool:
        """True when tiles of this format belong in the file (fixing the format on first use)."""
        wanted = tileset_format(format)
        if self.format is None and wanted in TILESET_TYPES:
            self.format = self.tileset.metadata().get("format") or wanted
            if self.format == wanted:
                self.tileset.set_metadata("format", wanted)
        if wanted == self.format:
            self._held = format  # the format name last found to belong: checked first next time
            return True
        return False

    def _lock_key(self, layer, coord, format) -> str:
        return f"{layer.name()}/{int(coord.zoom)}/{int(coord.column)}/{int(coord.row)}.{format}"

    def lock(self, layer, coord, format) -> None:
        """Insert a lock row, breaking one older than the stale lock timeout; wait while held."""
        key = self._lock_key(layer, coord, format)
        token = uuid.uuid4().hex
        db = self.tileset.db()
        while True:
            now = time.time()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM tilestache_locks WHERE key = ? AND created < ?",
                           (key, now - float(layer.stale_lock_timeout)))
                taken = db.execute("INSERT OR IGNORE INTO tilestache_locks (key, token, created)"
                                   " VALUES (?, ?, ?)", (key, token, now)).rowcount == 1
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if taken:
                self._tokens[(threading.get_ident(), key)] = token
                return
            time.sleep(LOCK_POLL)

    def unlock(self, layer, coord, format) -> None:
        """Delete our lock row."""
        key = self._lock_key(layer, coord, format)
        token = self._tokens.pop((threading.get_ident(), key), None)
        if token is not None:
            self.tileset.db().execute("DELETE FROM tilestache_locks WHERE key = ? AND token = ?",
                                      (key, token))

    def remove(self, layer, coord, format) -> None:
        """Delete the tile."""
        if self._holds(format):
            self.tileset.delete(coord)

    def _get(self, coord, format) -> bytes | None:
        """The stored bytes of a tile of this format, or None."""
        if format != self._held and not self._holds(format):
            return None
        try:
            return self.tileset.get(coord)
        except sqlite3.Error as error:
            raise broken(error) from None

    def read_entry(self, layer, coord, format) -> CacheEntry | None:
        """The stored tile; vector tiles come back gzipped, marked so."""
        body = self._get(coord, format)
        if body is None:
            return None
        if self.format == "pbf" and body[:2] == b"\x1f\x8b":
            return CacheEntry(body, None, "gzip")
        return CacheEntry(body)

    def read(self, layer, coord, format) -> bytes | None:
        """The tile's bytes (vector tiles inflated), or None."""
        body = self._get(coord, format)
        return unzip(body) if body is not None and self.format == "pbf" else body

    def save(self, body: bytes, layer, coord, format) -> None:
        """Store the tile; vector tiles are gzipped. Other formats than the file's are skipped."""
        if not self._holds(format):
            log.debug("MBTiles cache holds %s tiles, not %s", self.format, format)
            return
        if self.format == "pbf" and body[:2] != b"\x1f\x8b":
            body = gzip.compress(body, mtime=0)
        self.tileset.put(coord, body, saved=self.clock())

    def saved_time(self, layer, coord, format) -> float | None:
        """When this cache saved the tile (epoch seconds), or None (no tile, or its time is unknown)."""
        return self.tileset.saved_time(coord) if self._holds(format) else None

    def saved_tiles(self, layer, format) -> list[tuple[Coordinate, float]]:
        """(coordinate, saved time) of the file's tiles whose save time is recorded (the file is one tileset,
        so every layer cached in it sees them all)."""
        return self.tileset.saved_tiles() if self._holds(format) else []


class GzippedTile(bytes):
    """Tile bytes inflated from gzip that keep the stored gzip bytes as ``gzipped``.

    The layer serves ``gzipped`` as it is, with Content-Encoding: gzip, to clients that
    accept gzip, and these (plain) bytes to the others and to caches.
    """

    gzipped: bytes

    def __new__(cls, plain: bytes, gzipped: bytes) -> "GzippedTile":
        tile = super().__new__(cls, plain)
        tile.gzipped = gzipped
        return tile


class Provider:
    """Serves the tiles of an existing MBTiles file, with the MIME type of its format."""

    def __init__(self, layer, tileset: str) -> None:
        dirpath = layer.config.dirpath if layer.config is not None else "."
        filename = resolve_path(dirpath, str(tileset))
        self.tileset = open_tileset(filename)
        meta = self.tileset.metadata()
        self.format = tileset_format(meta.get("format", "png"))
        if self.format not in TILESET_TYPES:
            raise ConfigError(f"unsupported MBTiles format {self.format!r}", key="tileset")
        self.metadata = meta

    def vector_layers(self) -> list[dict]:
        """The ``vector_layers`` of the metadata's ``json`` (the MBTiles spec's place for them)."""
        try:
            layers = json.loads(self.metadata.get("json", "{}")).get("vector_layers")
        except (ValueError, AttributeError):
            return []
        return [dict(each) for each in layers or [] if isinstance(each, dict) and "id" in each]

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:
        """(MIME type, format name) for the tileset's own format; other extensions are a 400."""
        if EXTENSION_FORMATS.get(extension.lower()) != self.format:
            raise BadRequest(f"This layer serves {self.format} tiles, not {extension}")
        return TILESET_TYPES[self.format]

    def renderTile(self, width: int, height: int, srs: str, coord) -> bytes:
        """The stored tile (vector tiles inflated, gzipped ones as a GzippedTile); a missing tile is a
        NoTileLeftBehind."""
        try:
            body = self.tileset.get(coord)
        except sqlite3.Error as error:
            raise broken(error) from None
        if body is None:
            raise NoTileLeftBehind(b"")
        if self.format != "pbf":
            return body
        if body[:2] == b"\x1f\x8b":
            return GzippedTile(gzip.decompress(body), body)
        return unzip(body)
