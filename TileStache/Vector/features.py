"""Tile areas and the feature post-processing every source shares.

A source hands back ``Feature`` objects; the provider then applies the
layer's ``id_property``, ``properties`` whitelist/rename, ``skip_empty_fields``
and ``spacing`` here, so that PostGIS and file sources answer alike.
"""
from __future__ import annotations

import datetime
import decimal
import json
import math
from dataclasses import dataclass, field

# Latitude limit of the spherical mercator world.
MERCATOR_MAX_LAT = 85.0511287798066


@dataclass(frozen=True)
class TileArea:
    """A tile's bounds in its layer's projection (the "tile SRID"), and its z/x/y."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    srid: int
    zoom: int
    x: int
    y: int

    @property
    def width(self) -> float:
        return self.xmax - self.xmin

    def grown(self, fraction: float) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) grown on each side by a fraction of the tile's width."""
        d = self.width * fraction
        return self.xmin - d, self.ymin - d, self.xmax + d, self.ymax + d

    def units_per_pixel(self, size: int = 256) -> float:
        """Projected units of one pixel of a tile this many pixels wide."""
        return self.width / size


def tile_area(projection, srid: int, coord) -> TileArea:
    """The TileArea of a coordinate in a layer's projection."""
    from ModestMaps.Core import Coordinate

    ul = projection.coordinateProj(coord)
    lr = projection.coordinateProj(Coordinate(coord.row + 1, coord.column + 1, coord.zoom))
    return TileArea(min(ul.x, lr.x), min(ul.y, lr.y), max(ul.x, lr.x), max(ul.y, lr.y), srid,
                    int(coord.zoom), int(coord.column), int(coord.row))


@dataclass
class Feature:
    """One feature: a GeoJSON geometry (dict, or GeoJSON text straight from PostGIS) and properties."""

    geometry: dict | str
    properties: dict = field(default_factory=dict)
    id: object = None

    def geometry_dict(self) -> dict:
        """The geometry as a GeoJSON dict."""
        if isinstance(self.geometry, str):
            self.geometry = json.loads(self.geometry)
        return self.geometry


def plain_value(value):
    """A JSON- and MVT-friendly version of a property value; NaN and infinities become None (null)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):  # an empty numeric field read by pyogrio is NaN
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return plain_value(float(value))
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return plain_value(value.item())
    return str(value)


def shape_properties(raw: dict, whitelist: dict | None, skip_empty: bool, id_property: str | None):
    """(properties, id) of a feature after id_property, whitelist/rename and skip_empty_fields."""
    fid = None
    if id_property is not None:
        fid = plain_value(raw.get(id_property))
    if whitelist is None:
        items = ((k, v) for k, v in raw.items() if k != id_property)
    else:
        items = ((new, raw.get(old)) for old, new in whitelist.items() if old != id_property)
    properties = {}
    for key, value in items:
        value = plain_value(value)
        if skip_empty and (value is None or value == ""):
            continue
        properties[key] = value
    return properties, fid


def first_position(geometry: dict) -> tuple[float, float] | None:
    """The first position of a GeoJSON geometry (its point, for points)."""
    coords = geometry.get("coordinates")
    if coords is None:
        for member in geometry.get("geometries", []):
            found = first_position(member)
            if found is not None:
                return found
        return None
    while coords and isinstance(coords[0], (list, tuple)):
        coords = coords[0]
    return (coords[0], coords[1]) if len(coords) >= 2 else None


def space_out(features: list[Feature], distance: float) -> list[Feature]:
    """Features whose first positions are at least distance apart; earlier features win."""
    if distance <= 0:
        return features
    kept, cells = [], {}
    for feature in features:
        point = first_position(feature.geometry_dict())
        if point is None:
            continue
        cx, cy = math.floor(point[0] / distance), math.floor(point[1] / distance)
        near = (cells.get((cx + i, cy + j), ()) for i in (-1, 0, 1) for j in (-1, 0, 1))
        if any(math.dist(point, other) < distance for group in near for other in group):
            continue
        cells.setdefault((cx, cy), []).append(point)
        kept.append(feature)
    return kept


def round_coordinates(coords, precision: int):
    """Nested coordinate lists with every number rounded to some decimal places."""
    if coords and isinstance(coords[0], (int, float)):
        return [round(float(c), precision) for c in coords]
    return [round_coordinates(c, precision) for c in coords]


def round_geometry(geometry: dict, precision: int) -> dict:
    """A GeoJSON geometry dict with rounded coordinates."""
    if geometry["type"] == "GeometryCollection":
        return {"type": "GeometryCollection",
                "geometries": [round_geometry(g, precision) for g in geometry["geometries"]]}
    return {"type": geometry["type"], "coordinates": round_coordinates(geometry["coordinates"], precision)}
