"""Mapbox Vector Tile constants and helpers under the goodie's module name.

VecTiles' ``.pbf`` tiles are encoded by PostGIS (``ST_AsMVT``, see
``TileStache.Vector.postgis``); this module keeps the names code written for
the original imports: ``extents`` (the tile's coordinate range) and
``decode``, which answers as it did under the mapbox-vector-tile 1.x the
original pinned: each feature's ``type`` is its MVT geometry type (1 point,
2 line, 3 polygon), its ``geometry`` a GeoJSON-like dict in tile coordinates.
"""
from __future__ import annotations

from ...Vector.encoders import MVT_EXTENT

# Coordinates are scaled to this range within a tile.
extents = MVT_EXTENT


def decode(file) -> dict:
    """The layers of an MVT tile read from a file: {name: {"extent", "features": [...]}}, 1.x style."""
    import mapbox_vector_tile

    return mapbox_vector_tile.decode(file.read(), default_options={"geojson": False})
