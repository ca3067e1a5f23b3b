"""Monkeycache: serve only the tiles that an existing cache already holds.

Configuration (as in 1.51)::

    "provider": {"class": "TileStache.Goodies.Providers.Monkeycache:Provider",
                 "kwargs": {"layer_name": "expensive-layer",
                            "cache_config": {"name": "Disk", "path": "/var/cache"},
                            "format": "PNG"}}

A tile the cache lacks is a 404 (the original failed there); nothing is
rendered. ``format`` is the name the seeding layer stored tiles under
("PNG", "JPEG", "GeoJSON", ...; "png", "jpg" and "jpeg" are understood).
"""
from __future__ import annotations

from ...Caches import entry_bytes, read_entry
from ...Config import buildConfiguration
from ...Errors import ConfigError, NotFound

FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}


class Provider:
    """Reads tiles of ``layer_name`` from the cache described by ``cache_config``."""

    def __init__(self, layer, cache_config: dict, layer_name: str, format: str = "PNG") -> None:
        if not isinstance(cache_config, dict):
            raise ConfigError("cache_config must be a cache configuration object", key="cache_config")
        if not isinstance(layer_name, str) or not layer_name:
            raise ConfigError("layer_name must name the seeded layer", key="layer_name")
        if not isinstance(format, str):
            raise ConfigError("format must be a string such as \"PNG\"", key="format")
        self.layer = layer
        # The seeded layer stands in as a layer of its own configuration, so the cache sees a real layer.
        stand_in = {"provider": {"name": "Proxy", "url": "http://localhost/{Z}/{X}/{Y}.png"}}
        try:
            source = buildConfiguration({"cache": cache_config, "layers": {layer_name: stand_in}},
                                        layer.config.dirpath)
        except ConfigError as error:
            raise ConfigError(error.message, key="cache_config") from None
        self.source_layer = source.layers[layer_name]
        self.source_cache = source.cache
        self.tile_format = FORMATS.get(format.lower(), format)

    def renderTile(self, width: int, height: int, srs: str, coord, scale_factor: float | None = None) -> bytes:
        """The cached tile's bytes, or 404 when the cache does not hold it."""
        body = entry_bytes(read_entry(self.source_cache, self.source_layer, coord, self.tile_format))
        if body is None:
            raise NotFound(f"no {self.tile_format} tile {coord.zoom}/{coord.column}/{coord.row} "
                           f"in the cache of {self.source_layer.name()!r}")
        return body
