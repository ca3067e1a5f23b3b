"""Retired: TileDataOSM (OSM XML from tables that MirrorOSM filled)."""
from ..retired import retired

Provider = retired("TileStache.Goodies.Providers.TileDataOSM:Provider",
                   "load OpenStreetMap data into PostGIS with osm2pgsql and serve it as GeoJSON "
                   "or MVT with the \"vector\" provider")
