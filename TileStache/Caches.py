"""Tile caches: Test, Disk and Multi, and the name -> class registry.

A cache is any object with these methods (duck typed, as in the original):

    lock(layer, coord, format)     take the lock for a (meta)tile, waiting if needed
    unlock(layer, coord, format)   release it
    remove(layer, coord, format)   forget a tile
    read(layer, coord, format)     the tile's bytes, or None
    save(body, layer, coord, format)

A cache may also offer ``read_entry(layer, coord, format) -> CacheEntry | None``
to report when a tile was written and whether its stored bytes are gzipped;
``read_entry`` below falls back to ``read`` for caches that do not. Caches that
know a tile's age (for ``tilestache-clean --older-than``) offer
``saved_time(layer, coord, format) -> float | None`` (epoch seconds) and
``saved_tiles(layer, format)``, which yields (coordinate, saved time) for every
tile of a layer they hold.
Shared backends (Memcache, Redis, S3, MBTiles, LimitedDisk) live in modules of
their own and are imported only when a configuration names them.
"""
from __future__ import annotations

import functools
import gzip
import importlib
import logging
import os
import shutil
import sys
import tempfile
import time
from typing import NamedTuple

from ModestMaps.Core import Coordinate
from ModestMaps.Tiles import fromMicrosoft, toMicrosoft

log = logging.getLogger(__name__)


class CacheEntry(NamedTuple):
    """A cached tile: its bytes, when it was written (epoch seconds), their encoding, and an entity tag."""

    body: bytes
    modified: float | None = None
    encoding: str | None = None  # "gzip" when body is gzip-compressed
    etag: str | None = None  # a validator the cache knows without hashing the body (quoted)


# A CacheEntry made without its Python-level __new__ (one less call on every cache hit).
_new_entry = functools.partial(tuple.__new__, CacheEntry)


def read_entry(cache: object, layer: object, coord: object, format: str) -> CacheEntry | None:
    """Read a tile from any cache as a CacheEntry (None on a miss)."""
    reader = getattr(cache, "read_entry", None)
    if reader is not None:
        return reader(layer, coord, format)
    body = cache.read(layer, coord, format)
    return None if body is None else CacheEntry(body)


def entry_bytes(entry: CacheEntry | None) -> bytes | None:
    """A cache entry's tile bytes, decompressed if stored gzipped (None stays None)."""
    if entry is None:
        return None
    return gzip.decompress(entry.body) if entry.encoding == "gzip" else entry.body


def tile_extension(format: str) -> str:
    """The lower-case file extension stored for a format name ("PNG" -> "png", "JPEG" -> "jpg")."""
    ext = format.lower()
    return "jpg" if ext == "jpeg" else ext


class Test:
    """A cache that stores nothing; with ``verbose`` it logs every call to stderr."""

    def __init__(self, verbose: bool = False, logfunc=None, **ignored) -> None:
        # The original ignored every other key; its sample config gives Test "path" and "umask".
        if ignored:
            log.debug("Test cache: ignoring %s", ", ".join(sorted(ignored)))
        self.verbose = bool(verbose)
        self.logfunc = logfunc

    def _say(self, what: str, layer, coord, format) -> None:
        if self.verbose or self.logfunc:
            line = f"Test cache {what}: {layer.name()}/{coord.zoom}/{coord.column}/{coord.row}.{format}"
            (self.logfunc or (lambda text: print(text, file=sys.stderr)))(line)

    def lock(self, layer, coord, format) -> None:
        """Pretend to lock."""
        self._say("lock", layer, coord, format)

    def unlock(self, layer, coord, format) -> None:
        """Pretend to unlock."""
        self._say("unlock", layer, coord, format)

    def remove(self, layer, coord, format) -> None:
        """Nothing to remove."""
        self._say("remove", layer, coord, format)

    def read(self, layer, coord, format) -> None:
        """Always a miss."""
        self._say("read", layer, coord, format)
        return None

    def save(self, body: bytes, layer, coord, format) -> None:
        """Store nothing."""
        self._say("save", layer, coord, format)


def portable_template(layer_name: str, extension: str) -> str:
    """The ``portable`` layout's relative path with %d for zoom, column and row."""
    return "%s/%%d/%%d/%%d.%s" % (layer_name.replace("%", "%%"), extension.replace("%", "%%"))


def disk_path(layout: str, layer_name: str, coord, extension: str) -> str:
    """Relative path of a tile in a Disk cache for a layout: safe, portable or quadtile."""
    if layout == "portable":  # %d also writes whole floats (3.0) as integers
        return portable_template(layer_name, extension) % (coord.zoom, coord.column, coord.row)
    if layout == "quadtile":
        quadkey = "0" + toMicrosoft(int(coord.column), int(coord.row), int(coord.zoom))
        parts = [quadkey[i:i + 3] for i in range(0, len(quadkey), 3)]
        return "/".join([layer_name, *parts[:-1], f"{parts[-1]}.{extension}"])
    xs, ys = "%06d" % coord.column, "%06d" % coord.row
    return "%s/%d/%s/%s/%s/%s.%s" % (layer_name, coord.zoom, xs[:3], xs[3:], ys[:3], ys[3:], extension)


DISK_LAYOUTS = ("safe", "portable", "quadtile")


def disk_coord(layout: str, layer_name: str, relative: str, extension: str) -> Coordinate | None:
    """The tile a Disk cache path (relative to the cache folder) holds, or None for other files."""
    parts = relative.split("/")
    if parts[0] != layer_name or not parts[-1].endswith("." + extension):
        return None
    parts = parts[1:]
    parts[-1] = parts[-1][:-len(extension) - 1]
    if not all(p.isdigit() for p in parts):
        return None
    if layout == "quadtile":
        quadkey = "".join(parts)
        if not quadkey.startswith("0") or any(d not in "0123" for d in quadkey):
            return None
        column, row, zoom = fromMicrosoft(quadkey[1:]) if len(quadkey) > 1 else (0, 0, 0)
    elif layout == "portable" and len(parts) == 3:
        zoom, column, row = (int(p) for p in parts)
    elif layout == "safe" and len(parts) == 5:
        zoom, column, row = int(parts[0]), int(parts[1] + parts[2]), int(parts[3] + parts[4])
    else:
        return None
    coord = Coordinate(int(row), int(column), int(zoom))
    return coord if disk_path(layout, layer_name, coord, extension) == relative else None


def make_folders(path: str, mode: int) -> None:
    """Create a folder and any missing parents, each with exactly this mode (the process umask aside)."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        make_folders(parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return  # another worker made it first; its mode is that worker's business
    os.chmod(path, mode)


def read_to_end(fd: int, start: bytes) -> bytes:
    """The rest of an open file after the bytes already read from it."""
    chunks = [start]
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


class Disk:
    """Tiles as files under a folder, written atomically; locks are lock directories."""

    def __init__(self, path: str, umask: int | str = 0o022, dirs: str = "safe",
                 gzip: list[str] | tuple[str, ...] = ("txt", "text", "json", "xml")) -> None:
        if dirs not in DISK_LAYOUTS:
            raise ValueError(f"dirs must be one of {', '.join(DISK_LAYOUTS)}, not {dirs!r}")
        self.cachepath = str(path)
        self.umask = int(umask, 8) if isinstance(umask, str) else int(umask)
        self.dirs = dirs
        self.gzip = [str(ext).lower() for ext in gzip]
        # (layer, format) -> (portable path template or None, layer name, file name ending)
        self._places: dict[tuple, tuple[str | None, str, str]] = {}

    def _filepath(self, layer, coord, format) -> str:
        place = self._places.get((layer, format))
        if place is None:
            place = self._place(layer, format)
        template, name, suffix = place
        if template is not None:
            return template % (coord.zoom, coord.column, coord.row)
        return f"{self.cachepath}/{disk_path(self.dirs, name, coord, suffix)}"

    def _place(self, layer, format) -> tuple[str | None, str, str]:
        ext = tile_extension(format)
        suffix = ext + ".gz" if ext in self.gzip else ext
        name = str(layer.name())
        template = None
        if self.dirs == "portable":  # one string format per tile, the common layout's hit path
            template = self.cachepath.replace("%", "%%") + "/" + portable_template(name, suffix)
        if len(self._places) >= 256:  # layers made on the fly must not grow it forever
            self._places.clear()
        place = self._places[(layer, format)] = (template, name, suffix)
        return place

    def lock(self, layer, coord, format) -> None:
        """Make a lock directory beside the tile, breaking one older than the layer's stale lock timeout."""
        lockpath = self._filepath(layer, coord, format) + ".lock"
        timeout = float(layer.stale_lock_timeout)
        mode = 0o777 & ~self.umask
        make_folders(os.path.dirname(lockpath), mode)
        while True:
            try:
                os.mkdir(lockpath, mode)
                os.chmod(lockpath, mode)
                return
            except FileExistsError:
                try:
                    age = time.time() - os.stat(lockpath).st_mtime
                except FileNotFoundError:
                    continue
                if age > timeout:
                    log.warning("Breaking stale lock %s (%.0fs old)", lockpath, age)
                    shutil.rmtree(lockpath, ignore_errors=True)
                    continue
                time.sleep(0.01)

    def unlock(self, layer, coord, format) -> None:
        """Remove the lock directory."""
        shutil.rmtree(self._filepath(layer, coord, format) + ".lock", ignore_errors=True)

    def remove(self, layer, coord, format) -> None:
        """Delete the tile's file if it exists."""
        try:
            os.remove(self._filepath(layer, coord, format))
        except FileNotFoundError:
            pass

    def read_entry(self, layer, coord, format) -> CacheEntry | None:
        """The stored file, its modification time, and "gzip" if stored compressed."""
        return self._read_path(self._filepath(layer, coord, format), layer, coord, format)

    def _read_path(self, path: str, layer, coord, format) -> CacheEntry | None:
        # Bare system calls (open, fstat, read, close): a buffered file object would fstat
        # twice more and copy through its buffer, which is a third of a small tile's read time.
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            stat = os.fstat(fd)
            lifespan = layer.cache_lifespan
            expired = lifespan and time.time() - stat.st_mtime > lifespan
            if not expired:
                body = os.read(fd, stat.st_size + 1)  # one byte more than fstat saw: the usual whole read
                if len(body) != stat.st_size:  # short, or the file grew
                    body = read_to_end(fd, body)
        finally:
            os.close(fd)
        if expired:
            self.remove(layer, coord, format)
            return None
        # Like a static file server's: modification time and size, so a hit needs no hashing.
        etag = '"%x-%x"' % (stat.st_mtime_ns, stat.st_size)
        return _new_entry((body, stat.st_mtime, "gzip" if path.endswith(".gz") else None, etag))

    def read(self, layer, coord, format) -> bytes | None:
        """The tile's bytes (decompressed), or None."""
        return entry_bytes(self.read_entry(layer, coord, format))

    def saved_time(self, layer, coord, format) -> float | None:
        """When the tile's file was last written (epoch seconds), or None when there is none."""
        try:
            return os.stat(self._filepath(layer, coord, format)).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None

    def saved_tiles(self, layer, format):
        """(coordinate, file modification time) of every tile of the layer and format on disk."""
        name = str(layer.name())
        suffix = self._places.get((layer, format)) or self._place(layer, format)
        suffix = suffix[2]
        top = os.path.join(self.cachepath, name)
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.endswith(".lock"))
            relative_folder = os.path.relpath(folder, self.cachepath).replace(os.sep, "/")
            for file in sorted(files):
                coord = disk_coord(self.dirs, name, f"{relative_folder}/{file}", suffix)
                if coord is None:
                    continue
                try:
                    yield coord, os.stat(os.path.join(folder, file)).st_mtime
                except FileNotFoundError:  # removed meanwhile
                    continue

    def save(self, body: bytes, layer, coord, format) -> None:
        """Write the tile to a temporary file beside it, then rename it into place."""
        path = self._filepath(layer, coord, format)
        if path.endswith(".gz"):
            body = gzip.compress(body, compresslevel=6, mtime=0)
        folder = os.path.dirname(path)
        make_folders(folder, 0o777 & ~self.umask)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tile-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(body)
            os.chmod(tmp, 0o666 & ~self.umask)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass
            raise


class Multi:
    """Several caches as one: read in order (filling the faster tiers), write to all, lock on the first."""

    def __init__(self, tiers: list) -> None:
        if not tiers:
            raise ValueError("Multi needs at least one tier")
        self.tiers = list(tiers)

    def lock(self, layer, coord, format) -> None:
        """Lock on the first tier."""
        self.tiers[0].lock(layer, coord, format)

    def unlock(self, layer, coord, format) -> None:
        """Unlock on the first tier."""
        self.tiers[0].unlock(layer, coord, format)

    def remove(self, layer, coord, format) -> None:
        """Remove from every tier."""
        for tier in self.tiers:
            tier.remove(layer, coord, format)

    def read_entry(self, layer, coord, format) -> CacheEntry | None:
        """The first tier's hit, copied into the tiers before it."""
        for index, tier in enumerate(self.tiers):
            entry = read_entry(tier, layer, coord, format)
            if entry is not None:
                if index:
                    body = entry_bytes(entry)
                    for faster in self.tiers[:index]:
                        faster.save(body, layer, coord, format)
                return entry
        return None

    def read(self, layer, coord, format) -> bytes | None:
        """The tile's bytes from the first tier that has it."""
        return entry_bytes(self.read_entry(layer, coord, format))

    def save(self, body: bytes, layer, coord, format) -> None:
        """Write to every tier."""
        for tier in self.tiers:
            tier.save(body, layer, coord, format)


# Cache names a configuration may use, lower case -> "module:class".
CACHE_CLASSES = {
    "test": "TileStache.Caches:Test",
    "disk": "TileStache.Caches:Disk",
    "multi": "TileStache.Caches:Multi",
    "memcache": "TileStache.Memcache:Cache",
    "memcached": "TileStache.Memcache:Cache",
    "redis": "TileStache.Redis:Cache",
    "s3": "TileStache.S3:Cache",
    "mbtiles": "TileStache.MBTiles:Cache",
    "limiteddisk": "TileStache.Goodies.Caches.LimitedDisk:Cache",
}


def load_class(path: str) -> type:
    """Import "package.module:Name" (or "package.module.Name") and return the named object."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def getCacheByName(name: str) -> type:
    """The cache class registered under a name (case-insensitive)."""
    key = name.strip().lower()
    if key not in CACHE_CLASSES:
        raise KeyError(f"unknown cache {name!r}; known: {', '.join(sorted(CACHE_CLASSES))}")
    return load_class(CACHE_CLASSES[key])
