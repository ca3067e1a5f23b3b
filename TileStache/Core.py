"""Layers, metatiles and the render-and-cache pipeline.

Read ``Layer.getTileResponse`` top to bottom to see what happens to a tile
request: check it, read the cache, and on a miss lock the metatile, read
again, render it once, cut it into tiles, encode and save each, unlock.
"""
from __future__ import annotations

import copy
import functools
import inspect
import io
import logging
import time
import zlib
from dataclasses import dataclass
from wsgiref.headers import Headers

from ModestMaps.Core import Coordinate
from ModestMaps.Geo import Location
from PIL import Image

from . import Formats
from .Caches import CacheEntry, entry_bytes, read_entry
from .Errors import (BadRequest, KnownUnknown, NoTileLeftBehind, NotFound,  # noqa: F401  (public names)
                     ServiceUnavailable, UpstreamError)
from .Geography import grid_size
from .Selection import tile_name

log = logging.getLogger(__name__)

# Deepest zoom a layer serves when its bounds say nothing else.
MAX_ZOOM = 31

# Formats whose responses vary with Accept-Encoding (caches may store them gzipped).
JSON_FORMATS = ("JSON", "GEOJSON", "TOPOJSON", "ARCJSON")


class Metatile:
    """How many tiles render together (rows x columns) and the pixel buffer around them."""

    def __init__(self, buffer: int = 0, rows: int = 1, columns: int = 1) -> None:
        if int(rows) < 1 or int(columns) < 1 or int(buffer) < 0:
            raise ValueError("metatile rows and columns must be >= 1 and buffer >= 0")
        self.buffer = int(buffer)
        self.rows = int(rows)
        self.columns = int(columns)

    def isForReal(self) -> bool:
        """True when tiles are rendered more than one at a time or with a buffer."""
        return self.rows > 1 or self.columns > 1 or self.buffer > 0

    def firstCoord(self, coord) -> Coordinate:
        """The top-left tile of the metatile holding a coordinate."""
        row = int(coord.row) // self.rows * self.rows
        column = int(coord.column) // self.columns * self.columns
        return Coordinate(row, column, coord.zoom)

    def allCoords(self, coord, grid: tuple[int, int] | None = None) -> list[Coordinate]:
        """Every tile of the metatile holding a coordinate, clipped to a (columns, rows) grid."""
        first = self.firstCoord(coord)
        columns, rows = self.columns, self.rows
        if grid is not None:
            columns = max(1, min(columns, grid[0] - int(first.column)))
            rows = max(1, min(rows, grid[1] - int(first.row)))
        return [Coordinate(first.row + r, first.column + c, first.zoom)
                for r in range(rows) for c in range(columns)]


class Bounds:
    """A zoom range and a geographic box; tiles outside it are not served."""

    def __init__(self, upper_left_high: Coordinate, lower_right_low: Coordinate) -> None:
        self.upper_left_high = upper_left_high
        self.lower_right_low = lower_right_low

    @property
    def low(self) -> int:
        """Lowest zoom served."""
        return int(self.lower_right_low.zoom)

    @property
    def high(self) -> int:
        """Highest zoom served."""
        return int(self.upper_left_high.zoom)

    def excludes(self, tile) -> bool:
        """True when a tile coordinate falls outside these bounds."""
        if tile.zoom < self.low or tile.zoom > self.high:
            return True
        ul = self.upper_left_high.zoomTo(tile.zoom)
        lr = self.lower_right_low.zoomTo(tile.zoom)
        return (tile.column + 1 <= ul.column or tile.column >= lr.column
                or tile.row + 1 <= ul.row or tile.row >= lr.row)


class BoundsList:
    """Several Bounds; a tile is served when any of them includes it."""

    def __init__(self, bounds: list[Bounds]) -> None:
        self.bounds = list(bounds)

    @property
    def low(self) -> int:
        """Lowest zoom any member serves."""
        return min(b.low for b in self.bounds)

    @property
    def high(self) -> int:
        """Highest zoom any member serves."""
        return max(b.high for b in self.bounds)

    def excludes(self, tile) -> bool:
        """True when every member excludes the tile."""
        return all(b.excludes(tile) for b in self.bounds)


def make_bounds(projection, north: float = 89, west: float = -180, south: float = -89,
                east: float = 180, low: int = 0, high: int = MAX_ZOOM) -> Bounds:
    """Bounds from degrees and a zoom range, in a projection's tile grid."""
    if south > north:
        raise ValueError(f"south ({south}) is above north ({north})")
    if low > high:
        raise ValueError(f"low zoom ({low}) is above high zoom ({high})")
    # The box's tile range from all four corners, whichever way the grid's rows and columns run.
    corners = [projection.locationCoordinate(Location(lat, lon)).zoomTo(high)
               for lat in (north, south) for lon in (west, east)]
    ul = Coordinate(min(c.row for c in corners), min(c.column for c in corners), high)
    lr = Coordinate(max(c.row for c in corners), max(c.column for c in corners), high).zoomTo(low)
    return Bounds(ul, lr)


@dataclass(slots=True)
class TileResult:
    """What the pipeline hands the web layer: status, header fields and (possibly gzipped) body."""

    status: int
    fields: list[tuple[str, str]]  # (name, value) pairs, in order
    body: bytes
    left_behind: bool = False  # the provider said NoTileLeftBehind: served, never cached

    @property
    def headers(self) -> Headers:
        """The header fields as a wsgiref Headers; changes made through it change fields."""
        return Headers(self.fields)


def etag_for(body: bytes) -> str:
    """A strong entity tag for some bytes: their CRC-32 and length (cheap enough for every hit)."""
    return '"%08x-%x"' % (zlib.crc32(body), len(body))


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=4096)
def http_date_of_second(whole: int) -> str:
    """The HTTP date of a whole epoch second (what formatdate writes, remembered per second)."""
    t = time.gmtime(whole)
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (_WEEKDAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1],
                                                    t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


def http_date(seconds: float) -> str:
    """An HTTP date for epoch seconds, truncated to the second as file servers do."""
    return http_date_of_second(seconds // 1)


@functools.lru_cache(maxsize=64)
def freshness_fields(max_age: int, now: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """Cache-Control and Expires header fields for a maximum age at a whole epoch second."""
    return ("Cache-Control", f"public, max-age={max_age}"), ("Expires", http_date_of_second(now + max_age))


class Layer:
    """A named tile set: a provider, a cache (the configuration's), a projection and options."""

    def __init__(self, config, projection, metatile: Metatile, stale_lock_timeout: float = 15,
                 cache_lifespan: float | None = None, write_cache: bool = True,
                 allowed_origin: str | None = None, max_cache_age: int | None = None,
                 redirects: dict | None = None, preview_lat: float = 37.80,
                 preview_lon: float = -122.26, preview_zoom: int = 10, preview_ext: str = "png",
                 bounds: Bounds | BoundsList | None = None, tile_height: int = 256) -> None:
        self.config = config
        self.provider = None
        self.projection = projection
        self.metatile = metatile
        self.stale_lock_timeout = stale_lock_timeout
        self.cache_lifespan = cache_lifespan
        self.write_cache = write_cache
        self.allowed_origin = allowed_origin
        self.max_cache_age = max_cache_age
        self.redirects = redirects or {}
        self.preview_lat = preview_lat
        self.preview_lon = preview_lon
        self.preview_zoom = preview_zoom
        self.preview_ext = preview_ext
        self.bounds = bounds
        self.dim = int(tile_height)
        self.render_scale = 1  # 2 for the @2x view of a layer (see scaled())
        self._scaled: dict = {}
        self.jpeg_options: dict = {}
        self.png_options: dict = {}
        self.webp_options: dict = {}
        self.pixel_effect = None
        self._name: str | None = None
        self._types: dict[str, tuple] = {}  # extension -> (provider, MIME type, format, is JSON), see _learn_type
        self._grids: dict[int, tuple[int, int]] = {}  # zoom -> (columns, rows) of the world

    # -- identity and formats ------------------------------------------------

    def name(self) -> str | None:
        """The layer's name in its configuration."""
        if self._name is None and self.config is not None:
            for key, layer in self.config.layers.items():
                if layer is self:
                    self._name = key
        return self._name

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:
        """(MIME type, format name) for a file extension, asking the provider first."""
        ext = extension.lower()
        asker = getattr(self.provider, "getTypeByExtension", None)
        if asker is not None:
            try:
                return asker(ext)
            except KnownUnknown as refusal:  # the documented way to refuse: the client asked for it
                if refusal.status < 500:
                    raise
                raise BadRequest(str(refusal) or f"Unsupported tile format: {extension}") from None
        if ext in Formats.IMAGE_TYPES:
            return Formats.IMAGE_TYPES[ext]
        raise BadRequest(f"Unsupported tile format: {extension}")

    def _learn_type(self, extension: str) -> tuple:
        """(provider, MIME type, format, is JSON) of an extension, remembered for the current provider."""
        mimetype, format = self.getTypeByExtension(extension)
        known = (self.provider, mimetype, format, format.upper() in JSON_FORMATS)
        if len(self._types) < 64:  # extensions come from URLs: keep the memo small
            self._types[extension] = known
        return known

    def encoder_options(self, format: str) -> dict:
        """Pillow save() keywords for a format on this layer."""
        layer_options = {"PNG": self.png_options, "JPEG": self.jpeg_options,
                         "WEBP": self.webp_options}.get(format.upper())
        return Formats.encoder_options(format, layer_options)

    def scaled(self, scale: int) -> "Layer":
        """This layer at @{scale}x: tiles of scale times the pixels, drawn with Mapnik's scale factor.

        The view shares provider and cache, and is cached under the layer name
        "{name}@{scale}x", so 1x tiles keep their usual places.
        """
        if scale == 1:
            return self
        if scale not in self._scaled:
            provider = self.provider
            methods = [getattr(provider, m) for m in ("renderTile", "renderArea") if hasattr(provider, m)]
            if not methods or not all("scale_factor" in inspect.signature(m).parameters for m in methods):
                raise NotFound(f"Layer {self.name()} has no @{scale}x tiles")
            view = copy.copy(self)
            view.dim, view.render_scale, view._scaled = self.dim * scale, self.render_scale * scale, {}
            view.metatile = Metatile(self.metatile.buffer * scale, self.metatile.rows, self.metatile.columns)
            view._name = f"{self.name()}@{scale}x"
            self._scaled[scale] = view
        return self._scaled[scale]

    def _scale_kwargs(self) -> dict:
        """scale_factor= for the provider, only when this is a scaled view."""
        if self.render_scale == 1:
            return {}
        return {"scale_factor": getattr(self, "scale_factor", 1.0) * self.render_scale}

    # -- where tiles may be --------------------------------------------------

    def zoom_range(self) -> tuple[int, int]:
        """Lowest and highest zoom served."""
        if self.bounds is None:
            return 0, MAX_ZOOM
        return self.bounds.low, self.bounds.high

    def in_world(self, coord) -> bool:
        """True when a coordinate is a real tile of the projection's world at a served zoom."""
        grid = self._grids.get(coord.zoom)
        if grid is None:
            zoom = coord.zoom
            if zoom != int(zoom) or zoom < 0 or zoom > MAX_ZOOM:
                return False
            grid = self._grids[int(zoom)] = grid_size(self.projection, int(zoom)) or ()
        if not grid:  # a grid without world edges
            return coord.column == int(coord.column) and coord.row == int(coord.row)
        return 0 <= coord.column < grid[0] and 0 <= coord.row < grid[1]

    def in_bounds(self, coord) -> bool:
        """True when a coordinate is in the world and within this layer's zooms and bounds."""
        return self.in_world(coord) and (self.bounds is None or not self.bounds.excludes(coord))

    # -- the pipeline --------------------------------------------------------

    def getTileResponse(self, coord, extension: str, ignore_cached: bool = False) -> tuple[int, Headers, bytes]:
        """Status, headers and body for one tile: from the cache, or rendered and cached."""
        result = self.tile_response(coord, extension, ignore_cached)
        return result.status, Headers(result.fields), result.body

    def tile_response(self, coord, extension: str, ignore_cached: bool = False,
                      accept_gzip: bool = False) -> TileResult:
        """As getTileResponse; with accept_gzip a gzip-stored tile is returned still compressed."""
        known = self._types.get(extension)
        if known is None or known[0] is not self.provider:  # not seen yet, or the provider was replaced
            known = self._learn_type(extension)
        _, mimetype, format, is_json = known
        # Each header is added once, so appending is enough (no name to replace).
        fields = [("Content-Type", mimetype)]
        if self.allowed_origin:
            fields.append(("Access-Control-Allow-Origin", self.allowed_origin))

        if not self.in_world(coord):
            raise NotFound("Tile outside the world")
        if self.bounds is not None and self.bounds.excludes(coord):  # in_bounds, knowing in_world
            fields.append(("Cache-Control", "no-store"))
            return TileResult(404, fields, self.empty_tile(format, mimetype))

        cache = self.config.cache
        metrics = getattr(self.config, "metrics", None)
        entry = None if ignore_cached else read_entry(cache, self, coord, format)
        if entry is None:
            lock_coord = self.metatile.firstCoord(coord)
            if metrics is None:
                cache.lock(self, lock_coord, format)
            else:
                metrics.miss(self.name())
                started = time.perf_counter()
                cache.lock(self, lock_coord, format)
                metrics.locked(self.name(), time.perf_counter() - started)
            try:
                entry = None if ignore_cached else read_entry(cache, self, coord, format)
                if entry is None:
                    try:
                        body = self.render_and_save(coord, format)
                    except NoTileLeftBehind as nothing:
                        fields.append(("Cache-Control", "no-store"))
                        return TileResult(200, fields, nothing.tile, left_behind=True)
                    # Serve what later readers will get, validators included, when it was saved.
                    entry = read_entry(cache, self, coord, format) if self.write_cache else None
                    if entry is None:
                        gzipped = getattr(body, "gzipped", None)  # bytes a provider had gzipped (MBTiles MVT)
                        entry = CacheEntry(body, time.time()) if gzipped is None \
                            else CacheEntry(gzipped, time.time(), "gzip")
            finally:
                cache.unlock(self, lock_coord, format)
        elif metrics is not None:
            metrics.hit(self.name())

        body, modified, encoding, etag = entry
        if encoding == "gzip":
            if accept_gzip:
                fields.append(("Content-Encoding", "gzip"))
            else:
                body, etag = entry_bytes(entry), None  # the stored validator is the gzipped bytes'
        if encoding or is_json:
            fields.append(("Vary", "Accept-Encoding"))
        fields.append(("ETag", etag or etag_for(body)))
        if modified is not None:
            fields.append(("Last-Modified", http_date_of_second(modified // 1)))
        if self.max_cache_age is not None:
            fields += freshness_fields(int(self.max_cache_age), int(time.time()))
        return TileResult(200, fields, body)

    def empty_tile(self, format: str, mimetype: str) -> bytes:
        """A transparent tile-sized image, or an empty body for non-image formats."""
        if mimetype.startswith("image/"):
            return Formats.transparent_tile(format, self.dim, self.dim)
        return b""

    def render_and_save(self, coord, format: str) -> bytes:
        """Render the (meta)tile holding a coordinate, save its tiles, return the coordinate's bytes.

        Raises NoTileLeftBehind, carrying the encoded tile, when the provider says not to cache.
        """
        started = time.perf_counter()
        metrics = getattr(self.config, "metrics", None)
        try:
            tiles = self.render_tiles(coord, format)
        except NoTileLeftBehind as nothing:
            raise NoTileLeftBehind(self.encode_tile(nothing.tile, format)) from None
        except (UpstreamError, ServiceUnavailable) as error:
            cause = error.__context__  # what the provider caught, kept for the log
            log.warning("upstream failed layer=%s metatile=%s error=%s%s", self.name(), tile_name(coord), error,
                        f" ({str(cause).strip().splitlines()[0]})" if cause is not None and str(cause).strip() else "")
            if metrics is not None:
                metrics.upstream_error(self.name())
            raise
        wanted = None
        cache = self.config.cache
        for other, body in tiles:
            if self.write_cache:
                cache.save(body, self, other, format)
            if (other.zoom, other.column, other.row) == (coord.zoom, coord.column, coord.row):
                wanted = body
        seconds = time.perf_counter() - started
        if metrics is not None:
            metrics.rendered(self.name(), seconds)
        log.info("rendered layer=%s metatile=%s tiles=%d ms=%.0f cache=%s", self.name(),
                 tile_name(self.metatile.firstCoord(coord)), len(tiles), seconds * 1000,
                 type(cache).__name__ if self.write_cache else "off")
        return wanted

    def render_tiles(self, coord, format: str) -> list[tuple[Coordinate, bytes]]:
        """(coordinate, encoded tile) for each tile of the metatile holding a coordinate."""
        provider = self.provider
        metatiled = self.metatile.isForReal() and hasattr(provider, "renderArea")
        if not metatiled:
            image = self.render(coord, format)
            return [(coord, self.encode_tile(image, format))]

        coords = self.metatile.allCoords(coord, grid_size(self.projection, int(coord.zoom)))
        first, last = coords[0], coords[-1]
        columns = int(last.column - first.column) + 1
        rows = int(last.row - first.row) + 1
        buffer, size = self.metatile.buffer, self.dim
        image = self._render_area(first, columns, rows, buffer)
        if not isinstance(image, Image.Image):
            raise KnownUnknown("A metatiled layer's provider must render Pillow images")
        tiles = []
        for each in coords:
            x = buffer + int(each.column - first.column) * size
            y = buffer + int(each.row - first.row) * size
            tile = image.crop((x, y, x + size, y + size))
            tiles.append((each, self.encode_tile(tile, format)))
        return tiles

    def render(self, coord, format: str | None = None):
        """Render one tile with the provider; returns what the provider returns (e.g. a Pillow image)."""
        provider = self.provider
        if hasattr(provider, "renderTile"):
            return provider.renderTile(self.dim, self.dim, self.projection.srs, coord, **self._scale_kwargs())
        return self._render_area(coord, 1, 1, 0)

    def _render_area(self, first, columns: int, rows: int, buffer: int):
        """Ask the provider for a block of tiles starting at first, with a pixel buffer around."""
        size = self.dim
        ul = self.projection.coordinateProj(first)
        lr = self.projection.coordinateProj(Coordinate(first.row + rows, first.column + columns, first.zoom))
        width, height = columns * size + 2 * buffer, rows * size + 2 * buffer
        dx = (lr.x - ul.x) / (columns * size) * buffer
        dy = (ul.y - lr.y) / (rows * size) * buffer
        return self.provider.renderArea(width, height, self.projection.srs,
                                        ul.x - dx, lr.y - dy, lr.x + dx, ul.y + dy, int(first.zoom),
                                        **self._scale_kwargs())

    def encode_tile(self, tile, format: str) -> bytes:
        """Bytes of a rendered tile: Pillow images get the layer's pixel effect and encoder options."""
        if isinstance(tile, Image.Image):
            if self.pixel_effect is not None:
                tile = self.pixel_effect.apply(tile)
            return Formats.encode(tile, format, self.encoder_options(format))
        if isinstance(tile, (bytes, bytearray)):
            return tile if isinstance(tile, bytes) else bytes(tile)  # keeps a bytes subclass's attributes
        buffer = io.BytesIO()
        tile.save(buffer, format)
        return buffer.getvalue()
