"""Retired: SolrGeoJSON (GeoJSON from a Solr spatial query)."""
from ..retired import retired

Provider = retired("TileStache.Goodies.Providers.SolrGeoJSON:Provider",
                   "serve the features from PostGIS or an OGR file with the \"vector\" provider")
