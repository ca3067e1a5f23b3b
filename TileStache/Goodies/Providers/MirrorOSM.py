"""Retired: MirrorOSM (copied OSM API data into PostGIS tile by tile)."""
from ..retired import retired

Provider = retired("TileStache.Goodies.Providers.MirrorOSM:Provider",
                   "load OpenStreetMap data into PostGIS with osm2pgsql or imposm and serve it "
                   "with the \"vector\" or \"mapnik\" provider")
