"""Retired: StatusServer (per-process render status kept in Redis)."""
from .retired import retired

WSGIServer = retired("TileStache.Goodies.StatusServer:WSGIServer",
                     "scrape the server's /metrics (Prometheus) and check /health instead")
