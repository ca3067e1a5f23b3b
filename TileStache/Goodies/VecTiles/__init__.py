"""VecTiles: vector tiles from PostGIS queries, one query per zoom, as in TileStache 1.51.

A thin adapter over the vector provider's PostGIS path (``TileStache.Vector``):
the database clips, simplifies and encodes (``ST_AsMVT`` for ``.pbf``), one
connection pool serves every layer of a database, and a database that is down
answers 503. Configuration, as the original documented it::

    "provider": {
      "class": "TileStache.Goodies.VecTiles:Provider",
      "kwargs": {
        "dbinfo": {"host": "localhost", "user": "gis", "password": "gis", "database": "gis"},
        "queries": [
          null, null, null, null, null, null, null, null, null, null,
          "SELECT way AS __geometry__, highway, name FROM planet_osm_line -- zoom 10+ ",
          "http://example.com/query-z11.pgsql",
          "query-z12-plus.pgsql"
        ]
      }
    }

``queries`` has one entry per zoom; ``null`` gives empty tiles, the last entry
serves every deeper zoom. An entry is SQL, a file (relative to the config) or
an http(s) URL, read once at load. ``{"10": "...", "12": "..."}`` is the same
list keyed by zoom. Each query names its geometry column ``__geometry__`` (in
spherical mercator, ``srid``) and may have an ``__id__`` column; ``!bbox!``,
``!zoom!``, ``!scale_denominator!``, ``!pixel_width!`` and ``!pixel_height!``
are filled in by the database as query parameters.

Other kwargs: ``clip`` (true), ``srid`` (900913, taken as 3857),
``simplify`` (1.0 pixel), ``simplify_until`` (zoom 16, unsimplified from
there), ``padding`` (0 pixels around the tile).

Extensions: ``pbf`` (Mapbox Vector Tile, one layer named like the TileStache
layer), ``json`` (GeoJSON) and ``topojson``. The original's own ``mvt``
container is answered with a 400 that points to ``pbf``: its only readers were
Mapnik 2's Python datasource and the goodie's decoder, neither of which runs
any more.

``MultiProvider`` (``names``) puts several VecTiles layers in one tile.
"""
from .server import MultiProvider, Provider

__all__ = ["Provider", "MultiProvider"]
