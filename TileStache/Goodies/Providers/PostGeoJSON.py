"""PostGeoJSON: GeoJSON tiles from one PostGIS query, as in TileStache 1.51.

A thin adapter over the vector provider's PostGIS path (``TileStache.Vector``):
the query runs with the tile's ``!bbox!`` (SRID 900913, spherical mercator)
filled in by the database as a parameter; clipping and reprojection to lon/lat
happen there too. Sample configuration::

    "points-of-interest": {
      "provider": {
        "class": "TileStache.Goodies.Providers.PostGeoJSON:Provider",
        "kwargs": {
          "dsn": "dbname=geodata user=postgres",
          "query": "SELECT osm_id, name, way FROM planet_osm_point WHERE way && !bbox! AND name IS NOT NULL",
          "id_column": "osm_id", "geometry_column": "way",
          "indent": 2
        }
      }
    }

kwargs: ``dsn`` (a libpq connection string), ``query``, ``clipping`` (false),
``id_column`` ("id"), ``geometry_column`` ("geometry"), ``indent`` (2; 0 for
none), ``precision`` (6 decimals). Only ``.json`` tiles.
"""
from __future__ import annotations

import json

from ...Errors import BadRequest, ConfigError
from ...Vector import Provider as VectorProvider

SRID = 900913


class Provider:
    """GeoJSON from a PostGIS query with a !bbox! token."""

    def __init__(self, layer, dsn: str, query: str, clipping: bool = False, id_column: str = "id",
                 geometry_column: str = "geometry", indent: int = 2, precision: int = 6) -> None:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        if not isinstance(query, str) or not query.strip():
            raise ConfigError("must be SQL text", key="query")
        try:
            parameters = conninfo_to_dict(str(dsn))
        except ProgrammingError as error:
            raise ConfigError(f"not a connection string: {error}", key="dsn") from None
        if isinstance(indent, bool) or not isinstance(indent, int) or indent < 0:
            raise ConfigError(f"must be a whole number >= 0, got {indent!r}", key="indent")
        self.indent = indent or None
        parameters.update(query=query, srid=SRID, geometry_column=str(geometry_column))
        self.vector = VectorProvider(layer, driver="postgis", parameters=parameters, clipped=bool(clipping),
                                     id_property=str(id_column), precision=precision)

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:
        """("application/json", "JSON"): PostGeoJSON makes .json tiles only."""
        if extension.lower() != "json":
            raise BadRequest(f"PostGeoJSON only makes .json tiles, not .{extension[:16]}")
        return "application/json", "JSON"

    def renderTile(self, width: int, height: int, srs: str, coord) -> "Response":
        """A tile that queries the database when saved."""
        return Response(self, coord)


class Response:
    """A PostGeoJSON tile: ``save`` writes its FeatureCollection."""

    def __init__(self, provider: Provider, coord) -> None:
        self.provider = provider
        self.coord = coord

    def save(self, file, format: str) -> None:
        """Write the FeatureCollection, indented as configured."""
        body, _ = self.provider.vector.encode(self.coord, "JSON")
        if self.provider.indent:
            body = json.dumps(json.loads(body), indent=self.provider.indent, ensure_ascii=False).encode("utf-8")
        file.write(body)
