"""OGR file source: a file read once with pyogrio, queried through an in-memory STRtree.

Geometries are reprojected into the layer's tile SRID at load time, made
valid (with a log line) or dropped when empty, and indexed with a shapely 2
STRtree. The file is read again when its modification time changes.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

import numpy as np
import shapely

from ..Errors import ConfigError
from .encoders import mvt_layer
from .features import Feature, TileArea, plain_value, shape_properties

log = logging.getLogger(__name__)


@dataclass
class FileData:
    """One loaded file: geometries in the tile SRID, their properties, and an STRtree over them."""

    geometries: np.ndarray
    properties: list[dict]
    columns: list[str]
    tree: shapely.STRtree
    mtime: float


def transformer(source_crs, target_srid: int):
    """A vectorised (N, 2) coordinate transform between two CRSs, or None when they are the same."""
    from pyproj import CRS, Transformer

    source = CRS.from_user_input(source_crs) if source_crs else CRS.from_epsg(4326)
    target = CRS.from_epsg(target_srid)
    if source == target:
        return None
    convert = Transformer.from_crs(source, target, always_xy=True)
    clamp = target_srid == 3857 and source.is_geographic

    def apply(coords: np.ndarray) -> np.ndarray:
        xs, ys = coords[:, 0], coords[:, 1]
        if clamp:
            ys = np.clip(ys, -85.0511287798066, 85.0511287798066)
        x, y = convert.transform(xs, ys)
        return np.column_stack([x, y])

    return apply


def load_file(path: str, layer: str | None, tile_srid: int, name: str) -> FileData:
    """Read a vector file and index it."""
    import pyogrio.raw

    mtime = os.stat(path).st_mtime
    meta, _, wkb, fields = pyogrio.raw.read(path, layer=layer, datetime_as_string=True)
    geometries = shapely.from_wkb(wkb)
    to_tile = transformer(meta.get("crs"), tile_srid)
    if to_tile is not None:
        geometries = shapely.transform(geometries, to_tile)
    columns = [str(c) for c in meta["fields"]]
    values = [column.tolist() for column in fields]
    properties = [{c: plain_value(values[i][row]) for i, c in enumerate(columns)} for row in range(len(geometries))]

    present = ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
    if not present.all():
        log.warning("%s: skipped %d features without geometry in %s", name, int((~present).sum()), path)
    invalid = present & ~shapely.is_valid(geometries)
    if invalid.any():
        log.warning("%s: made %d invalid geometries valid in %s", name, int(invalid.sum()), path)
        geometries[invalid] = shapely.make_valid(geometries[invalid])
    keep = np.flatnonzero(present)
    geometries = geometries[keep]
    properties = [properties[i] for i in keep]
    return FileData(geometries, properties, columns, shapely.STRtree(geometries), mtime)


class FileSource:
    """Features of a layer of an OGR file (Shapefile, GeoJSON, GeoPackage, FlatGeobuf, SQLite)."""

    def __init__(self, parameters: dict, driver: str, tile_srid: int, name: str, verbose: bool = False) -> None:
        unknown = set(parameters) - {"file", "layer"}
        if unknown:
            raise ConfigError(f"unknown file parameters {sorted(unknown)} (known: file, layer)", key="parameters")
        if not parameters.get("file"):
            raise ConfigError(f"{driver} needs parameters.file", key="parameters")
        self.path = str(parameters["file"])
        if not os.path.exists(self.path):
            raise ConfigError(f"no such file: {self.path}", key="parameters.file")
        self.layer = parameters.get("layer")
        self.driver = driver
        self.tile_srid = tile_srid
        self.name = name
        self.verbose = verbose
        self._lock = threading.Lock()
        try:
            self._data = load_file(self.path, self.layer, tile_srid, name)
        except Exception as error:  # pyogrio's DataSourceError / DataLayerError and friends
            raise ConfigError(f"cannot read {self.path}: {error}", key="parameters.file") from None

    def prepare(self, spec) -> None:
        """Check a layer's options against the file's columns."""
        known = set(self._data.columns)
        if spec.properties is not None:
            missing = [c for c in spec.properties if c not in known]
            if missing:
                raise ConfigError(f"no such columns {missing} (known: {sorted(known)})", key="properties")
        if spec.id_property is not None and spec.id_property not in known:
            raise ConfigError(f"no column {spec.id_property!r} for id_property", key="id_property")

    def data(self) -> FileData:
        """The loaded file, read again when it changed on disk."""
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            return self._data  # being replaced: serve what we have
        if mtime != self._data.mtime:
            with self._lock:
                if mtime != self._data.mtime:
                    log.info("%s: %s changed, reading it again", self.name, self.path)
                    self._data = load_file(self.path, self.layer, self.tile_srid, self.name)
        return self._data

    def _select(self, area: TileArea, spec, grow: float, clip: bool):
        """(geometries, properties) of the features near a tile, clipped and simplified in the tile SRID."""
        data = self.data()
        bounds = area.grown(grow)
        found = np.sort(data.tree.query(shapely.box(*bounds)))
        geometries = data.geometries[found]
        if clip and len(found):
            geometries = shapely.intersection(geometries, shapely.box(*bounds))
        if spec.simplify and len(found):
            geometries = shapely.simplify(geometries, spec.simplify * area.units_per_pixel(), preserve_topology=True)
        keep = ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
        return geometries[keep], [data.properties[i] for i in found[keep]]

    def features(self, area: TileArea, spec) -> list[Feature]:
        """The features of a tile, geometry as GeoJSON dicts (lon/lat unless projected)."""
        from .features import round_geometry

        geometries, properties = self._select(area, spec, spec.clip_grow(), spec.clipped is not False)
        if not spec.projected and self.tile_srid != 4326 and len(geometries):
            geometries = shapely.transform(geometries, transformer(f"EPSG:{self.tile_srid}", 4326))
        return [Feature(round_geometry(shapely.geometry.mapping(g), spec.precision), dict(p))
                for g, p in zip(geometries, properties)]

    def mvt(self, area: TileArea, spec) -> bytes:
        """One MVT layer for a tile (b"" when it has no features), encoded with mapbox-vector-tile."""
        clip = spec.clipped is not False
        geometries, properties = self._select(area, spec, spec.buffer / spec.extent, clip)
        features = []
        for geometry, raw in zip(geometries, properties):
            shaped, fid = shape_properties(raw, spec.properties, spec.skip_empty_fields, spec.id_property)
            if spec.id_property is not None and not isinstance(fid, int):
                shaped[spec.id_property] = fid
            shaped = {k: v for k, v in shaped.items() if v is not None}
            features.append((geometry, shaped, fid))
        return mvt_layer(spec.name, features, area, spec.extent)
