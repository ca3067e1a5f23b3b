"""Retired: Cascadenik (MML/Carto stylesheets compiled to Mapnik XML at load)."""
from ..retired import retired

Provider = retired("TileStache.Goodies.Providers.Cascadenik:Provider",
                   "compile the stylesheet to Mapnik XML ahead of time (for example with carto) "
                   "and use the \"mapnik\" provider")
