"""VecTiles' Provider and MultiProvider, built on the vector provider's PostGIS path.

Each distinct query (and whether it is simplified) becomes a
``TileStache.Vector.Provider`` with one PostGIS layer, made at config load:
bad SQL, a missing ``__geometry__`` column or an unreadable query file fail
there, naming the layer and ``queries[zoom]``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ...Config import resolve_path
from ...Errors import BadRequest, ConfigError, KnownUnknown, UpstreamError
from ...Vector import Provider as VectorProvider
from . import geojson, topojson

DBINFO_KEYS = ("host", "user", "password", "database", "port", "dbname")
GEOMETRY_COLUMN = "__geometry__"
ID_COLUMN = "__id__"
DEFAULT_OBJECT_NAME = "vectile"  # the TopoJSON object of a single layer, as the original named it
MAX_ZOOM = 99
PIXELS = 256  # simplify and padding are in pixels of a 256 px tile

# extension -> (MIME type, format), as the original answered
TYPES = {
    "json": ("application/json", "JSON"),
    "topojson": ("application/json", "TopoJSON"),
    "pbf": ("application/x-protobuf", "PBF"),
}
NO_MVT = ("VecTiles' own .mvt format has no reader any more (it fed Mapnik 2's Python datasource): "
          "ask for .pbf, a Mapbox Vector Tile")

# Keeps GeoJSON ids alike across layers and requests: the original's hash of the geometry.
HASH_ID_SQL = ("SELECT q.*, substr(md5(ST_AsBinary(q.__geometry__)), 1, 10) AS __id__ "
               "FROM (\n{}\n) AS q")


def type_of(extension: str) -> tuple[str, str]:
    """(MIME type, format) of a VecTiles extension; BadRequest for others (``mvt`` names ``pbf``)."""
    ext = extension.lower()
    if ext == "mvt":
        raise BadRequest(NO_MVT)
    if ext not in TYPES:
        raise BadRequest(f"VecTiles makes .json, .topojson and .pbf tiles, not .{extension[:16]}")
    return TYPES[ext]


def zoom_queries(queries) -> list:
    """The queries option as a list indexed by zoom (the dict syntax filled with nulls)."""
    if isinstance(queries, dict):
        try:
            by_zoom = {int(zoom): query for zoom, query in queries.items()}
        except ValueError:
            raise ConfigError("the keys of queries must be zoom levels", key="queries") from None
        if not by_zoom or min(by_zoom) < 0 or max(by_zoom) > MAX_ZOOM:
            raise ConfigError(f"queries needs zoom levels from 0 to {MAX_ZOOM}", key="queries")
        return [by_zoom.get(zoom) for zoom in range(max(by_zoom) + 1)]
    if not isinstance(queries, list) or not queries:
        raise ConfigError("queries must be a non-empty list (one entry per zoom) or an object", key="queries")
    return list(queries)


def read_query(entry, dirpath: str, key: str) -> str:
    """The SQL of a queries entry: the text itself, a file relative to the config, or a URL's body."""
    if not isinstance(entry, str) or not entry.strip():
        raise ConfigError("must be SQL, a file name, a URL or null", key=key)
    location = resolve_path(dirpath, entry.strip())
    remote = re.match(r"^https?://\S+$", location, re.I)
    if not remote and os.path.isfile(location):
        with open(location, encoding="utf-8") as file:
            return file.read()
    if remote:
        from ...Providers import fetch_upstream

        try:
            return fetch_upstream(location, timeout=10)[0].decode("utf-8")
        except (UpstreamError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read the query at {location}: {error}", key=key) from None
    if not re.search(r"\s", entry.strip()):
        raise ConfigError(f"no query file {location}", key=key)
    return entry


@dataclass(frozen=True)
class Band:
    """The vector providers serving a range of zooms: one for .pbf, one for the JSON formats."""

    mvt: VectorProvider
    json: VectorProvider


class Provider:
    """VecTiles provider for PostGIS: a query per zoom, as .pbf, .json or .topojson."""

    def __init__(self, layer, dbinfo: dict, queries, clip: bool = True, srid: int = 900913,
                 simplify: float = 1.0, simplify_until: int = 16, padding: int = 0) -> None:
        if not isinstance(dbinfo, dict):
            raise ConfigError("dbinfo must be an object of connection parameters", key="dbinfo")
        self.layer = layer
        self.clip = bool(clip)
        self.srid = _number(srid, "srid", int)
        self.simplify = _number(simplify, "simplify", float)
        self.simplify_until = _number(simplify_until, "simplify_until", int)
        self.padding = _number(padding, "padding", int)
        self.parameters = {("dbname" if k == "database" else k): v for k, v in dbinfo.items() if k in DBINFO_KEYS}
        self.name = (layer.name() if callable(getattr(layer, "name", None)) else None) or DEFAULT_OBJECT_NAME
        dirpath = getattr(getattr(layer, "config", None), "dirpath", ".") or "."

        bands: dict[tuple[str, bool], Band] = {}
        self.bands: list[tuple[int, int, Band | None]] = []  # (first zoom, last zoom, band)
        entries = zoom_queries(queries)
        for zoom, entry in enumerate(entries):
            key = f"queries[{zoom}]"
            text = None if entry is None else read_query(entry, dirpath, key)
            last = MAX_ZOOM if zoom == len(entries) - 1 else zoom
            for first, until, simplified in self._split(zoom, last):
                band = None
                if text is not None:
                    if (text, simplified) not in bands:
                        bands[text, simplified] = self._band(text, simplified, key)
                    band = bands[text, simplified]
                self.bands.append((first, until, band))

    def _split(self, first: int, last: int) -> list[tuple[int, int, bool]]:
        """A zoom range cut where simplification stops: (first, last, simplified) pieces."""
        pieces = []
        if first < self.simplify_until:
            pieces.append((first, min(last, self.simplify_until - 1), self.simplify > 0))
        if last >= self.simplify_until:
            pieces.append((max(first, self.simplify_until), last, False))
        return pieces

    def _vector(self, sql: str, simplified: bool, id_property: str | None) -> VectorProvider:
        parameters = dict(self.parameters, query=sql, srid=self.srid, geometry_column=GEOMETRY_COLUMN)
        provider = VectorProvider(
            self.layer, driver="postgis", parameters=parameters, clipped=self.clip, id_property=id_property,
            simplify=self.simplify if simplified else None, buffer=min(4096, self.padding * 4096 // PIXELS),
            layers=[{"name": self.name}])
        provider.layers[0].padding = self.padding
        return provider

    def _band(self, sql: str, simplified: bool, key: str) -> Band:
        """The providers of one query: ids from its __id__ column, else (JSON only) a geometry hash."""
        try:
            mvt = self._vector(sql, simplified, None)
            if ID_COLUMN in mvt.layers[0].source.columns:
                mvt = self._vector(sql, simplified, ID_COLUMN)
                return Band(mvt, mvt)
            return Band(mvt, self._vector(HASH_ID_SQL.format(sql), simplified, ID_COLUMN))
        except ConfigError as error:
            raise ConfigError(error.message, key=key) from None

    def band(self, zoom: int) -> Band | None:
        """The providers serving a zoom; None where its query is null."""
        for first, last, band in self.bands:
            if first <= zoom <= last:
                return band
        return None

    def mvt(self, coord) -> bytes:
        """The tile's Mapbox Vector Tile (b"" when empty)."""
        band = self.band(coord.zoom)
        return band.mvt.encode(coord, "PBF")[0] if band else b""

    def features(self, coord) -> list:
        """The tile's features for the JSON formats (geometry in lon/lat)."""
        band = self.band(coord.zoom)
        return next(iter(band.json.collections(coord).values())) if band else []

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:
        """(MIME type, format) for json, topojson and pbf."""
        return type_of(extension)

    def renderTile(self, width: int, height: int, srs: str, coord) -> "Tile":
        """A tile that queries the database when saved."""
        return Tile([(DEFAULT_OBJECT_NAME, self)], coord)


class MultiProvider:
    """Several VecTiles layers of the configuration in one tile (``names``)."""

    def __init__(self, layer, names: list) -> None:
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError("names must be a non-empty list of layer names", key="names")
        self.layer = layer
        self.names = list(names)

    def validate(self, config) -> None:
        """ConfigError unless every name is a VecTiles:Provider layer of the configuration."""
        for name in self.names:
            provider = getattr(config.layers.get(name), "provider", None) if name in config.layers else None
            if not isinstance(provider, Provider):
                what = "no such layer" if name not in config.layers else "not a VecTiles:Provider layer"
                raise ConfigError(f"{name!r}: {what}", self.layer.name(), "provider.names")

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:
        """(MIME type, format) for json, topojson and pbf."""
        return type_of(extension)

    def renderTile(self, width: int, height: int, srs: str, coord) -> "Tile":
        """A tile holding each named layer."""
        layers = self.layer.config.layers
        return Tile([(name, layers[name].provider) for name in self.names], coord, merged=True)


class Tile:
    """One or several VecTiles layers of a coordinate, queried and encoded by ``save``."""

    def __init__(self, layers: list[tuple[str, Provider]], coord, merged: bool = False) -> None:
        self.layers = layers
        self.coord = coord
        self.merged = merged

    def save(self, file, format: str) -> None:
        """Write the tile as PBF, JSON (GeoJSON) or TopoJSON."""
        if format == "PBF":
            file.write(b"".join(provider.mvt(self.coord) for _, provider in self.layers))
            return
        layers = [(name, provider.features(self.coord), provider.clip) for name, provider in self.layers]
        if format == "TopoJSON":
            topojson.encode(file, layers)
        elif format == "JSON" and self.merged:
            geojson.merge(file, layers)
        elif format == "JSON":
            geojson.encode(file, layers[0][1], layers[0][2])
        else:
            raise KnownUnknown(f"VecTiles cannot save {format}")


def _number(value, key: str, kind):
    """A kwarg as int or float, ConfigError naming it when it is not a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
            (kind is int and value != int(value)):
        raise ConfigError(f"must be a {'whole ' if kind is int else ''}number >= 0, got {value!r}", key=key)
    return kind(value)
