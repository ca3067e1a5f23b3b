"""The "vector" provider: GeoJSON, Arc JSON, TopoJSON and Mapbox Vector Tiles.

Features come from PostGIS (``postgis.py``: clipped and encoded in the
database) or from OGR files (``ogr.py``: pyogrio + an in-memory STRtree);
encoders live apart in ``encoders.py``. A provider serves one layer, configured
with the original TileStache keys::

    {"name": "vector", "driver": "PostgreSQL",
     "parameters": {"dbname": "gis", "user": "osm", "table": "roads"},
     "properties": {"name": "label"}, "clipped": "padded", "precision": 5}

or several named layers in one tile (what VecTiles' MultiProvider gave)::

    {"name": "vector", "driver": "postgis", "parameters": {"dbname": "gis"},
     "layers": [{"name": "roads", "query": "SELECT way, highway FROM roads", "minzoom": 12},
                {"name": "water", "driver": "shapefile", "file": "water.shp", "simplify": 1}]}

The extension picks the output: .geojson/.json, .arcjson, .topojson, .mvt/.pbf.
Empty tiles are an empty collection / a zero-byte MVT, or NoTileLeftBehind
with ``"no tile left behind": true``.
"""
from __future__ import annotations

import logging

from ..Errors import BadRequest, ConfigError, NoTileLeftBehind
from . import encoders
from .features import space_out, shape_properties, tile_area
from .spec import LAYER_ONLY_KEYS, SHARED_KEYS, LayerSpec, build_spec

log = logging.getLogger(__name__)

DEFAULT_LAYER_NAME = "vectile"


def tile_srid(projection) -> int:
    """The EPSG code of a layer's projection (spherical mercator 3857, WGS84 4326)."""
    srid = getattr(projection, "srid", None)
    if srid is not None:
        return int(srid)
    name = str(getattr(projection, "name", "")).lower()
    if name in ("spherical mercator", "mercator"):
        return 3857
    if name == "wgs84":
        return 4326
    raise ConfigError("the vector provider works in spherical mercator or WGS84 only", key="projection")


def make_source(spec: LayerSpec, srid: int, verbose: bool, dirpath: str):
    """The PostGIS or file source for a layer spec."""
    if spec.driver == "postgis":
        from .postgis import PostGISSource

        return PostGISSource(spec.parameters, srid, verbose)
    from ..Config import resolve_path
    from .ogr import FileSource

    parameters = dict(spec.parameters)
    if isinstance(parameters.get("file"), str):
        parameters["file"] = resolve_path(dirpath, parameters["file"])
    return FileSource(parameters, spec.driver, srid, spec.name, verbose)


class VectorTile:
    """A tile waiting for its format: ``save(file, format)`` queries, encodes and writes it."""

    def __init__(self, provider: "Provider", coord) -> None:
        self.provider = provider
        self.coord = coord

    def save(self, file, format: str) -> None:
        """Write the tile encoded in a format (GeoJSON, JSON, ArcJSON, TopoJSON, MVT, PBF)."""
        body, empty = self.provider.encode(self.coord, format)
        if empty and self.provider.no_tile_left_behind:
            raise NoTileLeftBehind(body)
        file.write(body)


class Provider:
    """Vector features from PostGIS or OGR files, as GeoJSON, Arc JSON, TopoJSON or MVT."""

    def __init__(self, layer, driver: str | None = None, parameters: dict | None = None,
                 properties=None, clipped=True, projected: bool = False, precision: int = 6,
                 spacing: float | None = None, verbose: bool = False, skip_empty_fields: bool = False,
                 id_property: str | None = None, layers: list | None = None, simplify: float | None = None,
                 buffer: int | None = None, extent: int | None = None, validate: bool | None = None,
                 no_tile_left_behind: bool = False) -> None:
        self.layer = layer
        self.verbose = bool(verbose)
        self.no_tile_left_behind = bool(no_tile_left_behind)
        self.srid = tile_srid(layer.projection)
        dirpath = getattr(getattr(layer, "config", None), "dirpath", ".") or "."
        shared = {"driver": driver, "parameters": parameters, "properties": properties, "clipped": clipped,
                  "projected": projected, "precision": precision, "spacing": spacing,
                  "skip_empty_fields": skip_empty_fields, "id_property": id_property,
                  "simplify": simplify, "buffer": buffer, "extent": extent, "validate": validate}
        shared = {k: v for k, v in shared.items() if v is not None}
        if layers is None:
            entries = [(DEFAULT_LAYER_NAME, shared, "")]
        else:
            entries = self._layer_entries(layers, shared)
        self.layers: list[LayerSpec] = []
        layer_name = layer.name() if callable(getattr(layer, "name", None)) else None
        for name, options, where in entries:
            try:
                spec = build_spec(name, options)
                spec.index = len(self.layers)
                spec.label = f"layer {layer_name or '?'}" + (f"/{name}" if layers is not None else "")
                spec.source = self._source_for(spec, dirpath)
                spec.source.prepare(spec)
            except ConfigError as error:
                raise ConfigError(str(error).split(": ", 1)[-1] if error.key else str(error),
                                  key=f"{where}{error.key}" if error.key else where.rstrip(".") or None) from None
            self.layers.append(spec)

    @staticmethod
    def _layer_entries(layers, shared: dict) -> list[tuple[str, dict, str]]:
        """(name, merged options, key prefix) of each entry of "layers"."""
        if not isinstance(layers, list) or not layers:
            raise ConfigError("layers must be a non-empty list of objects", key="layers")
        entries, names = [], set()
        for i, entry in enumerate(layers):
            where = f"layers[{i}]."
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
                raise ConfigError("each layer needs a name", key=f"{where}name")
            unknown = set(entry) - LAYER_ONLY_KEYS - SHARED_KEYS
            if unknown:
                raise ConfigError(f"unknown keys {sorted(unknown)}", key=where.rstrip("."))
            if entry["name"] in names:
                raise ConfigError(f"duplicate layer name {entry['name']!r}", key=f"{where}name")
            names.add(entry["name"])
            options = dict(shared)
            if any(k in entry for k in ("driver", "file")) and "parameters" not in entry and \
                    str(entry.get("driver", shared.get("driver"))).lower() not in ("postgis", "postgresql"):
                options.pop("parameters", None)  # a file layer under a PostGIS provider
            options.update(entry)
            entries.append((entry["name"], options, where))
        return entries

    def _source_for(self, spec: LayerSpec, dirpath: str):
        """A source per layer; PostGIS layers on one database share its pool (see postgis.get_pool)."""
        return make_source(spec, self.srid, self.verbose, dirpath)

    def vector_layers(self) -> list[dict]:
        """Each MVT layer as TileJSON's ``vector_layers`` has it: id, fields (name -> column type), zooms."""
        described = []
        for spec in self.layers:
            source = spec.source
            columns = source.columns if hasattr(source, "columns") else source.data().columns
            types = getattr(source, "column_types", {})
            names = spec.properties if spec.properties is not None else {c: c for c in columns}
            fields = {new: types.get(old, "") for old, new in names.items() if old != spec.id_property}
            described.append({"id": spec.name, "fields": fields, "minzoom": spec.minzoom, "maxzoom": spec.maxzoom})
        return described

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:
        """(MIME type, format) for geojson, json, arcjson, topojson, mvt and pbf."""
        try:
            return encoders.TYPES[extension.lower()]
        except KeyError:
            raise BadRequest(f"Unsupported vector format: {extension[:16]} "
                             f"(use {', '.join(sorted(encoders.TYPES))})") from None

    def renderTile(self, width: int, height: int, srs: str, coord) -> VectorTile:
        """A tile that queries its sources when saved in a format."""
        return VectorTile(self, coord)

    def encode(self, coord, format: str) -> tuple[bytes, bool]:
        """(encoded tile, whether it has no features) for a coordinate in a format."""
        if format.upper() in encoders.MVT_FORMATS:
            area = tile_area(self.layer.projection, self.srid, coord)
            active = [spec for spec in self.layers if spec.serves(area.zoom)]
            body = b"".join(self._mvt_group(group, area) for group in self._mvt_groups(active))
            return body, not body
        collections = self.collections(coord)
        body = encoders.encode_json(format, collections, self.output_srid(), self.verbose)
        return body, not any(collections.values())

    def collections(self, coord) -> dict[str, list]:
        """The features of a coordinate for the JSON formats, by layer name (one empty layer at least)."""
        area = tile_area(self.layer.projection, self.srid, coord)
        collections = {spec.name: self._json_features(area, spec) for spec in self.layers if spec.serves(area.zoom)}
        return collections or {spec.name: [] for spec in self.layers[:1]}

    def output_srid(self) -> int:
        """The SRID of JSON output: the layer's when projected, else 4326."""
        return self.srid if any(s.projected for s in self.layers) else 4326

    @staticmethod
    def _mvt_groups(active: list[LayerSpec]) -> list[list[tuple]]:
        """Runs of (source, spec) that one database query can answer together."""
        from .postgis import same_database

        groups: list[list[tuple]] = []
        for spec in active:
            pair = (spec.source, spec)
            if groups and same_database(groups[-1][0], pair):
                groups[-1].append(pair)
            else:
                groups.append([pair])
        return groups

    @staticmethod
    def _mvt_group(group: list[tuple], area) -> bytes:
        if len(group) == 1:
            return group[0][0].mvt(area, group[0][1])
        from .postgis import mvt_layers

        return mvt_layers(group, area)

    def _json_features(self, area, spec: LayerSpec) -> list:
        """A layer's features for a tile with properties shaped and spacing applied."""
        features = spec.source.features(area, spec)
        for feature in features:
            feature.properties, feature.id = shape_properties(
                feature.properties, spec.properties, spec.skip_empty_fields, spec.id_property)
        if spec.spacing:
            width = area.width if spec.projected or self.srid == 4326 else 360.0 / 2 ** area.zoom
            features = space_out(features, spec.spacing * width / 256)
        return features
