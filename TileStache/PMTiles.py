"""PMTiles v3 archives: a provider serving one, and the writer that seeding fills.

Provider::

    "provider": {"name": "pmtiles", "tileset": "world.pmtiles"}
    "provider": {"name": "pmtiles", "tileset": "https://example.com/world.pmtiles"}
    "provider": {"name": "pmtiles", "tileset": "s3://bucket/world.pmtiles",
                 "endpoint url": "http://minio:9000", "region": "eu-west-1"}

A ``tileset`` is a local file (read with ``pread``), an ``http(s)://`` URL
(read with Range requests) or ``s3://bucket/key`` (boto3, with the S3 cache's
``endpoint url`` and ``region`` keys and the standard AWS environment). The
header and root directory are parsed once; leaf directories are kept in an
LRU bounded in bytes (``leaf cache bytes``, 32 MiB by default). A replaced
archive is noticed and its directories read again: a file by its inode, size
and mtime, looked at at most every ``check interval`` seconds (1 for a file:
until then the open file, old or new, is read whole and consistent); a remote
archive by the ETag of every read, and of a one-byte read at most every
``check interval`` seconds (10 for a remote archive).

Tiles go out with the MIME type of the archive's tile type (MVT, PNG, JPEG,
WebP); gzipped MVT is handed to the layer as stored, so clients that accept
gzip get it with ``Content-Encoding: gzip`` (as from MBTiles). A tile absent
from the archive is a NoTileLeftBehind (a 404 over HTTP). Without ``bounds``
in the layer's configuration, the archive's bounds and zoom range become the
layer's. Parsing and the tile-id math are the ``pmtiles`` package's.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import re
import sys
import threading
import time
import zlib
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator

from ModestMaps.Core import Coordinate
from pmtiles.tile import (Compression, Entry, MagicNumberNotFound, SpecVersionUnsupported, TileType,
                          deserialize_directory, deserialize_header, tileid_to_zxy, zxy_to_tileid)
from pmtiles.writer import write

from .Config import resolve_path
from .Errors import BadRequest, ConfigError, KnownUnknown, NoTileLeftBehind, UpstreamError, UpstreamTimeout
from .Geography import SphericalMercator
from .MBTiles import Cache as MBTilesCache
from .MBTiles import GzippedTile

log = logging.getLogger(__name__)

# The archive's tile type -> (MIME type, format name, the URL extensions that ask for it).
TILE_TYPES = {
    TileType.MVT: ("application/vnd.mapbox-vector-tile", "MVT", ("mvt", "pbf")),
    TileType.PNG: ("image/png", "PNG", ("png",)),
    TileType.JPEG: ("image/jpeg", "JPEG", ("jpg", "jpeg")),
    TileType.WEBP: ("image/webp", "WEBP", ("webp",)),
}
HEADER_LENGTH = 127
FIRST_READ = 16384  # the spec keeps header and root directory within the first 16 KiB
MAX_DEPTH = 4  # directory levels a tile lookup follows (root and three of leaves, as the spec's readers)
DEFAULT_LEAF_CACHE_BYTES = 32 << 20
DEFAULT_TIMEOUT = 10.0
DEFAULT_CHECK_INTERVAL = 10.0  # seconds between two asks whether a remote archive was replaced
FILE_CHECK_INTERVAL = 1.0  # seconds between two looks whether a file was replaced
MERCATOR_LAT = 85.0511287798066
# What one parsed directory entry costs in memory: the object, its four ints and its list slot.
ENTRY_BYTES = sys.getsizeof(Entry(1 << 40, 1 << 40, 1 << 20, 1)) + 4 * sys.getsizeof(1 << 40) + 8
# What deserialize_directory raises on bytes that are not a directory.
CORRUPT = (OSError, EOFError, zlib.error, IndexError, ValueError, TypeError)


class Missing(Exception):
    """The archive is not where the tileset says."""


class Replaced(Exception):
    """The archive changed between two reads."""


class FileSource:
    """A local archive read with pread; reopened when the path names another file."""

    def __init__(self, path: str, check_interval: float = FILE_CHECK_INTERVAL) -> None:
        self.path = path
        self.check_interval = check_interval
        self._checked = time.monotonic()
        self.fd: int | None = None
        self.version: tuple | None = None
        self.reopen()

    def reopen(self) -> None:
        """Open the file the path names now."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise Missing(self.path) from None
        except OSError as error:
            raise KnownUnknown(f"cannot open the archive: {error.strerror}") from None
        old, self.fd = self.fd, fd
        self.version = self._identity(os.fstat(fd))
        if old is not None:
            os.close(old)

    @staticmethod
    def _identity(st: os.stat_result) -> tuple:
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

    def size(self) -> int:
        return self.version[2]

    def check(self) -> object:
        """The file's version, looked at (at most every check_interval seconds) and the file reopened when the
        path names another file (replaced, or rewritten)."""
        now = time.monotonic()
        if now - self._checked < self.check_interval:
            return self.version
        self._checked = now
        try:
            now = self._identity(os.stat(self.path))
        except OSError:
            return self.version  # being replaced right now: keep serving what is open
        if now != self.version:
            self.reopen()
        return self.version

    def read(self, offset: int, length: int) -> tuple[bytes, object]:
        """(bytes at offset, the file's version)."""
        return os.pread(self.fd, length, offset), self.version


class RemoteSource:
    """What HTTP and S3 archives share: a version (ETag) seen on each read and asked for now and then.

    Subclasses define ``read(offset, length) -> (bytes, version)``.
    """

    url: str
    check_interval: float
    _checked: float = 0.0

    def size(self) -> None:
        return None

    def check(self) -> object:
        """The archive's version, asked with a one-byte read when no read saw it for check_interval seconds;
        else None."""
        now = time.monotonic()
        if now - self._checked < self.check_interval:
            return None
        self._checked = now
        return self.read(0, 1)[1]


class HTTPSource(RemoteSource):
    """A remote archive read with HTTP Range requests (urllib3); the ETag is its version."""

    def __init__(self, url: str, timeout: float, check_interval: float) -> None:
        import urllib3

        self.url = url
        self.check_interval = check_interval
        self._urllib3 = urllib3
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._pools: tuple[int, object] | None = None

    def _pool(self):
        if self._pools is None or self._pools[0] != os.getpid():  # never share sockets across a fork
            self._pools = (os.getpid(), self._urllib3.PoolManager(maxsize=8, block=False))
        return self._pools[1]

    def read(self, offset: int, length: int) -> tuple[bytes, object]:
        errors = self._urllib3.exceptions
        headers = {"Range": f"bytes={offset}-{offset + length - 1}", "User-Agent": "TileStache"}
        try:
            response = self._pool().request("GET", self.url, headers=headers, timeout=self.timeout,
                                            retries=False, redirect=True)
        except errors.NewConnectionError as error:  # refused, unresolvable (a ConnectTimeoutError subclass)
            log.warning("PMTiles read from %s failed: %s", self.url, error)
            raise UpstreamError("The archive's server could not be reached") from None
        except (errors.TimeoutError, TimeoutError):
            raise UpstreamTimeout("The archive's server did not answer in time") from None
        except errors.HTTPError as error:
            log.warning("PMTiles read from %s failed: %s", self.url, error)
            raise UpstreamError("The archive's server could not be reached") from None
        if response.status == 404:
            raise Missing(self.url)
        if response.status == 416:
            return b"", response.headers.get("ETag")
        if response.status == 200 and offset == 0 and len(response.data) <= length:
            return response.data, response.headers.get("ETag")  # a small file sent whole
        if response.status != 206:
            log.warning("PMTiles read from %s: HTTP %s to a Range request", self.url, response.status)
            raise UpstreamError(f"The archive's server answered {response.status} to a Range request")
        self._checked = time.monotonic()
        return response.data, response.headers.get("ETag") or response.headers.get("Last-Modified")


class S3Source(RemoteSource):
    """An archive in an S3 bucket (or any S3-API store) read with ranged GetObject; the ETag is its version."""

    def __init__(self, url: str, endpoint_url: str | None, region: str | None, timeout: float,
                 check_interval: float) -> None:
        match = re.match(r"^s3://([^/]+)/(.+)$", url)
        if not match:
            raise ConfigError("an S3 tileset is s3://bucket/key", key="tileset")
        self.bucket, self.key = match.groups()
        self.url = url
        self.check_interval = check_interval
        self._options = {"endpoint_url": endpoint_url, "region_name": region, "timeout": timeout}
        self._clients: tuple[int, object] | None = None

    def _client(self):
        if self._clients is None or self._clients[0] != os.getpid():
            import boto3
            from botocore.config import Config as BotoConfig

            timeout = self._options["timeout"]
            client = boto3.session.Session().client(
                "s3", endpoint_url=self._options["endpoint_url"], region_name=self._options["region_name"],
                config=BotoConfig(connect_timeout=timeout, read_timeout=timeout,
                                  retries={"max_attempts": 1, "mode": "standard"}))
            self._clients = (os.getpid(), client)
        return self._clients[1]

    def read(self, offset: int, length: int) -> tuple[bytes, object]:
        from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError)

        try:
            answer = self._client().get_object(Bucket=self.bucket, Key=self.key,
                                               Range=f"bytes={offset}-{offset + length - 1}")
            self._checked = time.monotonic()
            return answer["Body"].read(), answer.get("ETag")
        except (ConnectTimeoutError, ReadTimeoutError):
            raise UpstreamTimeout("The archive's bucket did not answer in time") from None
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "NoSuchBucket", "404"):
                raise Missing(self.url) from None
            if code == "InvalidRange":
                return b"", None
            log.warning("PMTiles read from %s failed: %s", self.url, code)
            raise UpstreamError("The archive's bucket refused the read") from None
        except BotoCoreError as error:
            log.warning("PMTiles read from %s failed: %s", self.url, error)
            raise UpstreamError("The archive's bucket could not be reached") from None


class Directory:
    """A parsed PMTiles directory, searchable by tile id."""

    __slots__ = ("entries", "ids")

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.ids = [entry.tile_id for entry in entries]

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, tile_id: int) -> Entry | None:
        """The entry holding tile_id: a run of tiles covering it, or the leaf directory it falls in."""
        at = bisect_right(self.ids, tile_id) - 1
        if at < 0:
            return None
        entry = self.entries[at]
        if entry.run_length == 0 or tile_id - entry.tile_id < entry.run_length:
            return entry
        return None


class LeafCache:
    """Parsed leaf directories by (offset, length), least recently used dropped past a byte budget."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.used = 0
        self._entries: OrderedDict[tuple[int, int], Directory] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> Directory | None:
        # No lock: each OrderedDict call is atomic under the GIL, and this is every tile read.
        entries = self._entries.get(key)
        if entries is not None:
            try:
                self._entries.move_to_end(key)
            except KeyError:  # dropped by a put in another thread meanwhile
                pass
        return entries

    def put(self, key: tuple[int, int], entries: Directory) -> None:
        cost = len(entries) * ENTRY_BYTES
        if cost > self.limit:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = entries
            self.used += cost
            while self.used > self.limit:
                _, dropped = self._entries.popitem(last=False)
                self.used -= len(dropped) * ENTRY_BYTES

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.used = 0


class Corrupt(Exception):
    """The archive's bytes are not what the header promises."""


class Archive:
    """One PMTiles archive: its header and root directory parsed once, leaf directories in an LRU."""

    def __init__(self, source, leaf_cache_bytes: int = DEFAULT_LEAF_CACHE_BYTES) -> None:
        self.source = source
        self.leaves = LeafCache(leaf_cache_bytes)
        self._lock = threading.Lock()
        self.load()

    def load(self) -> None:
        """Read the header, root directory and metadata (again), forgetting every leaf."""
        first, version = self.source.read(0, FIRST_READ)
        if len(first) < HEADER_LENGTH:
            raise Corrupt(f"{len(first)} bytes is too short for a PMTiles header")
        header = deserialize_header(first[:HEADER_LENGTH])
        size = self.source.size()
        end = header["tile_data_offset"] + header["tile_data_length"]
        if size is not None and size < end:
            raise Corrupt(f"truncated: {size} bytes, the header says {end}")
        root = self._bytes(first, header["root_offset"], header["root_length"], version)
        try:
            root_entries = Directory(deserialize_directory(root))
            raw = self._bytes(first, header["metadata_offset"], header["metadata_length"], version)
            if header["internal_compression"] == Compression.GZIP:
                raw = gzip.decompress(raw)
            metadata = json.loads(raw) if raw else {}
        except CORRUPT as error:
            raise Corrupt(f"unreadable root directory or metadata: {error}") from None
        self.header, self.root, self.metadata, self.version = header, root_entries, metadata, version
        self.leaves.clear()

    def _bytes(self, first: bytes, offset: int, length: int, version) -> bytes:
        """Bytes of the archive, from the first read when they lie within it."""
        if offset + length <= len(first):
            return first[offset:offset + length]
        data, now = self.source.read(offset, length)
        if now != version:
            raise Replaced()
        return data

    def _read(self, offset: int, length: int) -> bytes:
        data, version = self.source.read(offset, length)
        if version != self.version:
            raise Replaced()
        if len(data) != length:
            raise Corrupt(f"{length} bytes wanted at {offset}, {len(data)} there")
        return data

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The stored bytes of a tile, or None when the archive does not have it."""
        try:
            now = self.source.check()
            if now is not None and now != self.version:
                raise Replaced()
            return self._find(zxy_to_tileid(z, x, y))
        except Replaced:
            with self._lock:
                log.info("PMTiles archive %s changed, reading its directories again", self.source.path
                         if hasattr(self.source, "path") else self.source.url)
                self.load()
            return self._find(zxy_to_tileid(z, x, y))

    def tile_ids(self) -> Iterator[int]:
        """Every tile id the archive addresses, in tile-id order (leaves read as met, not cached)."""
        return self._walk(self.root.entries, 1)

    def _walk(self, entries: list[Entry], depth: int) -> Iterator[int]:
        for entry in entries:
            if entry.run_length > 0:
                yield from range(entry.tile_id, entry.tile_id + entry.run_length)
                continue
            if depth >= MAX_DEPTH:
                raise Corrupt(f"directories nested deeper than {MAX_DEPTH} levels")
            raw = self._read(self.header["leaf_directory_offset"] + entry.offset, entry.length)
            try:
                leaf = deserialize_directory(raw)
            except CORRUPT as error:
                raise Corrupt(f"leaf directory at {entry.offset}: {error}") from None
            yield from self._walk(leaf, depth + 1)

    def _find(self, tile_id: int) -> bytes | None:
        header, entries, leaves = self.header, self.root, self.leaves
        data_offset, leaf_offset = header["tile_data_offset"], header["leaf_directory_offset"]
        for _ in range(MAX_DEPTH):
            entry = entries.find(tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                return self._read(data_offset + entry.offset, entry.length)
            key = (leaf_offset + entry.offset, entry.length)
            entries = leaves.get(key)
            if entries is None:
                raw = self._read(*key)
                try:
                    entries = Directory(deserialize_directory(raw))
                except CORRUPT as error:
                    raise Corrupt(f"leaf directory at {key[0]}: {error}") from None
                leaves.put(key, entries)
        raise Corrupt(f"directories nested deeper than {MAX_DEPTH} levels")


def open_source(tileset: str, dirpath: str, endpoint_url: str | None, region: str | None, timeout: float,
                check_interval: float | None):
    """The source a tileset names: a file, an HTTP(S) URL or an S3 object."""
    remote_interval = DEFAULT_CHECK_INTERVAL if check_interval is None else check_interval
    if re.match(r"^s3://", tileset, re.I):
        return S3Source(tileset, endpoint_url, region, timeout, remote_interval)
    location = resolve_path(dirpath, tileset)
    if re.match(r"^https?://", location, re.I):
        return HTTPSource(location, timeout, remote_interval)
    if re.match(r"^file://", location, re.I):
        location = location[len("file://"):]
    if "://" in location:
        raise ConfigError("a tileset is a file, an http(s):// URL or an s3://bucket/key", key="tileset")
    return FileSource(location, FILE_CHECK_INTERVAL if check_interval is None else check_interval)


def open_archive(tileset: str, dirpath: str = ".", endpoint_url: str | None = None, region: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, leaf_cache_bytes: int = DEFAULT_LEAF_CACHE_BYTES,
                 check_interval: float | None = None) -> Archive:
    """The archive a tileset names, header and root directory read; ConfigError (key tileset) if it is
    missing or not a readable PMTiles v3 archive."""
    try:
        source = open_source(tileset, dirpath, endpoint_url, region, float(timeout),
                             None if check_interval is None else float(check_interval))
        return Archive(source, int(leaf_cache_bytes))
    except Missing as missing:
        raise ConfigError(f"{missing} does not exist", key="tileset") from None
    except MagicNumberNotFound:
        raise ConfigError(f"{tileset} is not a PMTiles archive", key="tileset") from None
    except SpecVersionUnsupported:
        raise ConfigError(f"{tileset} is not a PMTiles version 3 archive", key="tileset") from None
    except (Corrupt, Replaced, KnownUnknown, ValueError) as error:
        raise ConfigError(f"cannot read {tileset}: {error or 'it changed while read'}", key="tileset") from None


def archive_bounds(header) -> dict:
    """The bounds config (north, west, south, east, low, high) of an archive's header."""
    return {"north": header["max_lat_e7"] / 1e7, "west": header["min_lon_e7"] / 1e7,
            "south": header["min_lat_e7"] / 1e7, "east": header["max_lon_e7"] / 1e7,
            "low": header["min_zoom"], "high": header["max_zoom"]}


class Provider:
    """Serves the tiles of a PMTiles v3 archive from a file, HTTP(S) or S3."""

    def __init__(self, layer, tileset: str, endpoint_url: str | None = None, region: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, leaf_cache_bytes: int = DEFAULT_LEAF_CACHE_BYTES,
                 check_interval: float | None = None) -> None:
        if not isinstance(tileset, str) or not tileset:
            raise ConfigError("a PMTiles provider needs a tileset", key="tileset")
        dirpath = layer.config.dirpath if layer.config is not None else "."
        self.archive = open_archive(tileset, dirpath, endpoint_url, region, timeout, leaf_cache_bytes,
                                    check_interval)
        header = self.archive.header
        if header["tile_type"] not in TILE_TYPES:
            raise ConfigError(f"{tileset} holds {header['tile_type'].name} tiles; served are "
                              "MVT, PNG, JPEG and WebP", key="tileset")
        if header["tile_compression"] not in (Compression.NONE, Compression.GZIP, Compression.UNKNOWN):
            raise ConfigError(f"{tileset} compresses tiles with {header['tile_compression'].name}; "
                              "served are plain and gzip", key="tileset")
        self.mimetype, self.format, self.extensions = TILE_TYPES[header["tile_type"]]
        self.layer = layer
        self.bounded = None  # the header whose bounds the layer has, when they are the archive's
        if layer.bounds is None:
            self._bound(header)

    def _bound(self, header) -> None:
        """Give the layer the archive's bounds and zoom range."""
        from .Core import make_bounds

        layer, bounds = self.layer, archive_bounds(header)
        if getattr(layer.projection, "name", "").lower() != "wgs84":
            bounds["north"] = min(bounds["north"], MERCATOR_LAT)
            bounds["south"] = max(bounds["south"], -MERCATOR_LAT)
        try:
            layer.bounds = make_bounds(layer.projection, **bounds)
        except (ValueError, ZeroDivisionError, OverflowError) as error:
            log.warning("PMTiles archive bounds %s not used: %s", bounds, error)
        self.bounded = header

    def vector_layers(self) -> list[dict]:
        """The archive's metadata ``vector_layers`` (TileJSON's shape), for MVT archives."""
        layers = self.archive.metadata.get("vector_layers") if isinstance(self.archive.metadata, dict) else None
        return [dict(each) for each in layers or [] if isinstance(each, dict) and "id" in each]

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:
        """(MIME type, format name) of the archive's tile type; other extensions are a 400."""
        if extension.lower() not in self.extensions:
            raise BadRequest(f"This layer serves {self.extensions[0]} tiles, not {extension[:16]}")
        return self.mimetype, self.format

    def renderTile(self, width: int, height: int, srs: str, coord) -> bytes:
        """The stored tile (gzipped MVT as a GzippedTile); a missing tile is a NoTileLeftBehind."""
        body = stored_tile(self.archive, coord, self.format == "MVT")
        if self.bounded is not None and self.bounded is not self.archive.header:  # a replaced archive
            self._bound(self.archive.header)
        if body is None:
            raise NoTileLeftBehind(b"")
        return body


def stored_tile(archive: Archive, coord, mvt: bool) -> bytes | None:
    """A tile of the archive, inflated (gzipped MVT as a GzippedTile that keeps the stored bytes), or None
    when the archive does not have it; KnownUnknown for an unreadable archive."""
    try:
        body = archive.tile(int(coord.zoom), int(coord.column), int(coord.row))
    except (Corrupt, Replaced, MagicNumberNotFound, SpecVersionUnsupported) as error:
        log.error("PMTiles archive unreadable: %s", error or type(error).__name__)
        raise KnownUnknown("The tileset could not be read") from None
    except Missing:
        raise UpstreamError("The tileset is gone") from None
    except ValueError:  # outside the zoom's grid
        return None
    if body is None or body[:2] != b"\x1f\x8b":
        return body
    try:
        plain = gzip.decompress(body)
    except CORRUPT as error:
        log.error("PMTiles tile %s is not gzip: %s", coord, error)
        raise KnownUnknown("The tileset could not be read") from None
    return GzippedTile(plain, body) if mvt else plain


# -- reading an archive for the scripts (tilestache-seed --from-pmtiles, tilestache-list) ----------------

def tile_extension(archive: Archive) -> str:
    """The URL extension of an archive's tiles (mvt, png, jpg, webp); ConfigError for other tile types."""
    kind = TILE_TYPES.get(archive.header["tile_type"])
    if kind is None:
        raise ConfigError(f"the archive holds {archive.header['tile_type'].name} tiles; read are "
                          "MVT, PNG, JPEG and WebP", key="tileset")
    return kind[2][0]


def stored_tiles(archive: Archive) -> Iterator[Coordinate]:
    """The coordinate of every tile the archive addresses, in tile-id order (by zoom, then Hilbert order)."""
    try:
        for tile_id in archive.tile_ids():
            z, x, y = tileid_to_zxy(tile_id)
            yield Coordinate(y, x, z)
    except (Corrupt, Replaced) as error:
        raise ConfigError(f"cannot read the archive's directories: {error}", key="tileset") from None


class Source:
    """An archive read like a cache (``read`` only): what ``tilestache-seed --from-pmtiles`` copies from."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.mvt = archive.header["tile_type"] == TileType.MVT

    def read(self, layer, coord, format) -> bytes | None:
        return stored_tile(self.archive, coord, self.mvt)


# -- writing an archive (tilestache-seed --to-pmtiles) ----------------------------------------------------

# MBTiles format of the staged tiles -> (archive tile type, tile compression).
WRITE_TYPES = {"png": (TileType.PNG, Compression.NONE), "jpg": (TileType.JPEG, Compression.NONE),
               "webp": (TileType.WEBP, Compression.NONE), "pbf": (TileType.MVT, Compression.GZIP)}
STAGING_SUFFIX = ".staging.mbtiles"


def staging_path(filename: str) -> str:
    """Where the tiles of an archive being seeded wait: an MBTiles file beside it."""
    return filename + STAGING_SUFFIX


class Cache(MBTilesCache):
    """Tiles seeded into a PMTiles archive: staged in an MBTiles file beside it (``FILE.staging.mbtiles``,
    so any number of processes can save, memory stays flat, and an interrupted run resumes), then written
    by ``finish`` in tile-id order to a temporary file renamed to ``filename`` once complete."""

    def __init__(self, filename: str, format: str | None = None, name: str | None = None) -> None:
        self.target = os.fspath(filename)
        super().__init__(staging_path(self.target), format, name or os.path.splitext(os.path.basename(filename))[0])

    def save(self, body: bytes, layer, coord, format) -> None:
        """Stage the tile; gzipped MVT read from an archive or tileset keeps its stored bytes."""
        super().save(getattr(body, "gzipped", body), layer, coord, format)

    def finish(self, metadata: dict) -> int:
        """Write the staged tiles as the archive, then remove the staging file; returns the tile count.

        ``metadata`` (e.g. name, vector_layers) goes into the archive's JSON metadata with its format.
        """
        self.format = self.tileset.metadata().get("format") or self.format  # fixed by the first save
        if self.format not in WRITE_TYPES:
            raise ConfigError(f"PMTiles archives hold MVT, PNG, JPEG or WebP tiles, not {self.format}",
                              key="filename")
        tile_type, compression = WRITE_TYPES[self.format]
        db = self.tileset.db()
        db.create_function("tileid", 3, zxy_to_tileid, deterministic=True)
        rows = db.execute("SELECT tileid(zoom_level, tile_column, (1 << zoom_level) - 1 - tile_row) AS id,"
                          " tile_data FROM tiles ORDER BY id")  # SQLite sorts on disk past its cache
        ranges: dict[int, list[int]] = {}  # zoom -> [min x, min y, max x, max y]
        partial = f"{self.target}.{os.getpid()}.tmp"
        try:
            with write(partial) as writer:
                count = 0
                for tile_id, body in rows:
                    z, x, y = tileid_to_zxy(tile_id)
                    box = ranges.setdefault(z, [x, y, x, y])
                    box[:] = min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y)
                    writer.write_tile(tile_id, bytes(body))
                    count += 1
                if not count:
                    raise ConfigError("no tiles were seeded, so no archive is written", key="filename")
                header = {"tile_type": tile_type, "tile_compression": compression, **header_bounds(ranges)}
                writer.finalize(header, {"format": self.format, **metadata})
            os.replace(partial, self.target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        db.close()
        self.tileset._local.owned = None
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.tileset.filename + suffix):
                os.remove(self.tileset.filename + suffix)
        return count


def header_bounds(ranges: dict[int, list[int]]) -> dict:
    """The header's bounds and center (E7 degrees) of tiles given as {zoom: [min x, min y, max x, max y]}."""
    mercator = SphericalMercator()
    west = south = 180.0
    east = north = -180.0
    for z, (x0, y0, x1, y1) in ranges.items():
        nw = mercator.coordinateLocation(Coordinate(y0, x0, z))
        se = mercator.coordinateLocation(Coordinate(y1 + 1, x1 + 1, z))
        west, north = min(west, nw.lon), max(north, nw.lat)
        east, south = max(east, se.lon), min(south, se.lat)
    low = min(ranges)
    e7 = lambda degrees: int(round(degrees * 1e7))  # noqa: E731
    return {"min_lon_e7": e7(west), "min_lat_e7": e7(south), "max_lon_e7": e7(east), "max_lat_e7": e7(north),
            "center_zoom": low, "center_lon_e7": e7((west + east) / 2), "center_lat_e7": e7((south + north) / 2)}


def finish_archives(cache, metadata: dict) -> list[str]:
    """Finish every PMTiles archive among a cache and its Multi tiers; returns their file names."""
    done = []
    for each in getattr(cache, "tiers", [cache]):
        if isinstance(each, Cache):
            each.finish(metadata)
            done.append(each.target)
    return done
