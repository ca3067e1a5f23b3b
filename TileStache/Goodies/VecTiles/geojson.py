"""VecTiles' GeoJSON: the vector provider's encoding, with the goodie's ``clipped`` flag.

A clipping VecTiles layer marks each feature with ``"clipped": true``, as the
original did; features carry the query's ``__id__`` (or a hash of the geometry)
as their GeoJSON ``id``.
"""
from __future__ import annotations

import json

from ...Vector import encoders


def dumps(value) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def collection(features: list, is_clipped: bool) -> dict:
    """A FeatureCollection dict of vector-provider features."""
    body = json.loads(encoders.geojson({"vectile": features}))
    if is_clipped:
        for feature in body["features"]:
            feature["clipped"] = True
    return body


def encode(file, features: list, is_clipped: bool) -> None:
    """Write one layer's features as a GeoJSON FeatureCollection."""
    file.write(dumps(collection(features, is_clipped)))


def merge(file, layers: list[tuple[str, list, bool]]) -> None:
    """Write several (name, features, is_clipped) layers as {name: FeatureCollection}."""
    body = {name: collection(features, is_clipped) for name, features, is_clipped in layers}
    file.write(dumps(body))
