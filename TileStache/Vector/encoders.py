"""Encoders: features -> GeoJSON, Arc JSON, TopoJSON bytes; shapely features -> MVT bytes.

Each JSON encoder takes ``{layer name: [Feature, ...]}``: one layer gives one
collection, several give an object with one collection per layer name
(TopoJSON: one object per layer).
"""
from __future__ import annotations

import json

from .features import Feature, TileArea

# Format names (as the layer reports them) -> encoder family.
JSON_FORMATS = {"GEOJSON": "geojson", "JSON": "geojson", "ARCJSON": "arcjson", "TOPOJSON": "topojson"}
MVT_FORMATS = {"MVT", "PBF"}

# extension -> (MIME type, format name)
TYPES = {
    "geojson": ("application/json", "GeoJSON"),
    "json": ("application/json", "JSON"),
    "arcjson": ("application/json", "ArcJSON"),
    "topojson": ("application/json", "TopoJSON"),
    "mvt": ("application/vnd.mapbox-vector-tile", "MVT"),
    "pbf": ("application/vnd.mapbox-vector-tile", "PBF"),
}

MVT_EXTENT = 4096
TOPOJSON_QUANTIZE = 4096


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _one_or_many(layers: dict[str, list[Feature]], encode_one) -> bytes:
    if len(layers) == 1:
        text = encode_one(next(iter(layers.values())))
    else:
        text = "{" + ",".join(_dumps(name) + ":" + encode_one(features)
                              for name, features in layers.items()) + "}"
    return text.encode("utf-8")


# -- GeoJSON -----------------------------------------------------------------

def _geojson_feature(feature: Feature) -> str:
    geometry = feature.geometry if isinstance(feature.geometry, str) else _dumps(feature.geometry)
    head = '{"type":"Feature",'
    if feature.id is not None:
        head += '"id":' + _dumps(feature.id) + ","
    return head + '"geometry":' + geometry + ',"properties":' + _dumps(feature.properties) + "}"


def _feature_collection(features: list[Feature]) -> str:
    return '{"type":"FeatureCollection","features":[' + ",".join(map(_geojson_feature, features)) + "]}"


def geojson(layers: dict[str, list[Feature]], area: TileArea | None = None, srid: int = 4326) -> bytes:
    """A GeoJSON FeatureCollection (PostGIS GeoJSON text is passed through untouched)."""
    return _one_or_many(layers, _feature_collection)


# -- Arc JSON ----------------------------------------------------------------

ARC_TYPES = {"Point": "esriGeometryPoint", "MultiPoint": "esriGeometryMultipoint",
             "LineString": "esriGeometryPolyline", "MultiLineString": "esriGeometryPolyline",
             "Polygon": "esriGeometryPolygon", "MultiPolygon": "esriGeometryPolygon"}


def _arc_geometry(geometry: dict, srid: int) -> dict | None:
    kind, coords = geometry["type"], geometry.get("coordinates")
    reference = {"wkid": srid}
    if kind == "Point":
        return {"x": coords[0], "y": coords[1], "spatialReference": reference}
    if kind == "MultiPoint":
        return {"points": coords, "spatialReference": reference}
    if kind == "LineString":
        return {"paths": [coords], "spatialReference": reference}
    if kind == "MultiLineString":
        return {"paths": coords, "spatialReference": reference}
    if kind == "Polygon":
        return {"rings": coords, "spatialReference": reference}
    if kind == "MultiPolygon":
        return {"rings": [ring for polygon in coords for ring in polygon], "spatialReference": reference}
    return None


def _arc_collection(features: list[Feature], srid: int) -> str:
    out, kinds = [], []
    for feature in features:
        geometry = feature.geometry_dict()
        arc = _arc_geometry(geometry, srid)
        if arc is None:
            continue
        kinds.append(ARC_TYPES[geometry["type"]])
        attributes = dict(feature.properties)
        if feature.id is not None:
            attributes.setdefault("id", feature.id)
        out.append({"geometry": arc, "attributes": attributes})
    body = {"geometryType": kinds[0] if len(set(kinds)) == 1 else "esriGeometryMixed" if kinds else None,
            "spatialReference": {"wkid": srid}, "features": out}
    return _dumps(body)


def arcjson(layers: dict[str, list[Feature]], area: TileArea | None = None, srid: int = 4326) -> bytes:
    """ESRI Arc JSON: {"geometryType", "spatialReference", "features": [{"geometry", "attributes"}]}."""
    return _one_or_many(layers, lambda features: _arc_collection(features, srid))


# -- TopoJSON ----------------------------------------------------------------

class _Quantizer:
    """Maps positions onto an integer grid over some bounds (TopoJSON "transform")."""

    def __init__(self, bounds: tuple[float, float, float, float], steps: int) -> None:
        xmin, ymin, xmax, ymax = bounds
        self.translate = [xmin, ymin]
        self.scale = [((xmax - xmin) or 1) / (steps - 1), ((ymax - ymin) or 1) / (steps - 1)]

    def point(self, position) -> list[int]:
        return [round((position[0] - self.translate[0]) / self.scale[0]),
                round((position[1] - self.translate[1]) / self.scale[1])]

    def arc(self, positions) -> list[list[int]]:
        """Delta-encoded quantized positions, repeated grid cells dropped."""
        arc, last = [], None
        for position in positions:
            q = self.point(position)
            if last is None:
                arc.append(q)
            elif q != last:
                arc.append([q[0] - last[0], q[1] - last[1]])
            else:
                continue
            last = q
        if len(arc) == 1:
            arc.append([0, 0])
        return arc


def _bounds_of(layers: dict[str, list[Feature]]) -> tuple[float, float, float, float]:
    xs, ys = [], []

    def walk(coords):
        if coords and isinstance(coords[0], (int, float)):
            xs.append(coords[0])
            ys.append(coords[1])
        else:
            for c in coords:
                walk(c)

    for features in layers.values():
        for feature in features:
            geometry = feature.geometry_dict()
            for member in geometry.get("geometries", [geometry]):
                walk(member.get("coordinates", []))
    return (min(xs), min(ys), max(xs), max(ys)) if xs else (0.0, 0.0, 1.0, 1.0)


def topojson(layers: dict[str, list[Feature]], area: TileArea | None = None, srid: int = 4326) -> bytes:
    """A quantized TopoJSON Topology, one GeometryCollection object per layer; arcs are not shared."""
    quantizer = _Quantizer(_bounds_of(layers), TOPOJSON_QUANTIZE)
    arcs: list = []

    def add_arc(positions) -> int:
        arcs.append(quantizer.arc(positions))
        return len(arcs) - 1

    def convert(geometry: dict) -> dict | None:
        kind, coords = geometry["type"], geometry.get("coordinates")
        if kind == "Point":
            return {"type": kind, "coordinates": quantizer.point(coords)}
        if kind == "MultiPoint":
            return {"type": kind, "coordinates": [quantizer.point(c) for c in coords]}
        if kind == "LineString":
            return {"type": kind, "arcs": [add_arc(coords)]}
        if kind == "MultiLineString":
            return {"type": kind, "arcs": [[add_arc(line)] for line in coords]}
        if kind == "Polygon":
            return {"type": kind, "arcs": [[add_arc(ring)] for ring in coords]}
        if kind == "MultiPolygon":
            return {"type": kind, "arcs": [[[add_arc(ring)] for ring in polygon] for polygon in coords]}
        if kind == "GeometryCollection":
            return {"type": kind, "geometries": [g for g in map(convert, geometry["geometries"]) if g]}
        return None

    objects = {}
    for name, features in layers.items():
        geometries = []
        for feature in features:
            converted = convert(feature.geometry_dict())
            if converted is None:
                continue
            converted["properties"] = feature.properties
            if feature.id is not None:
                converted["id"] = feature.id
            geometries.append(converted)
        objects[name] = {"type": "GeometryCollection", "geometries": geometries}
    topology = {"type": "Topology", "transform": {"scale": quantizer.scale, "translate": quantizer.translate},
                "objects": objects, "arcs": arcs}
    return _dumps(topology).encode("utf-8")


JSON_ENCODERS = {"geojson": geojson, "arcjson": arcjson, "topojson": topojson}


# Indent of "verbose": true output, as the original's.
VERBOSE_INDENT = 2


def encode_json(format: str, layers: dict[str, list[Feature]], srid: int, verbose: bool = False) -> bytes:
    """Bytes of the JSON format named (GeoJSON, JSON, ArcJSON, TopoJSON); indented when verbose."""
    body = JSON_ENCODERS[JSON_FORMATS[format.upper()]](layers, srid=srid)
    if verbose:
        text = json.dumps(json.loads(body), indent=VERBOSE_INDENT, ensure_ascii=False)
        body = text.encode("utf-8")
    return body


# -- MVT (file sources; PostGIS encodes its own) -----------------------------

def mvt_layer(name: str, features: list[tuple], area: TileArea, extent: int = MVT_EXTENT) -> bytes:
    """One MVT layer from (shapely geometry in the tile SRID, properties, id) triples; b"" when empty."""
    import mapbox_vector_tile
    import numpy as np
    import shapely

    if not features:
        return b""
    origin = np.array([area.xmin, area.ymin])
    scale = np.array([extent / (area.xmax - area.xmin), extent / (area.ymax - area.ymin)])
    geometries = shapely.transform(np.array([f[0] for f in features], dtype=object),
                                   lambda coords: (coords - origin) * scale)  # tile units, y up
    encoded = [{"geometry": geometry, "properties": properties, **({"id": fid} if isinstance(fid, int) else {})}
               for geometry, (_, properties, fid) in zip(geometries, features)]
    return mapbox_vector_tile.encode([{"name": name, "features": encoded}], default_options={"extents": extent})
