"""MapnikGrid: the original's UTFGrid goodie, as our Mapnik grid provider.

Configuration (as in 1.51)::

    "provider": {"class": "TileStache.Goodies.Providers.MapnikGrid:Provider",
                 "kwargs": {"mapfile": "mymap.xml", "fields": ["name", "address"],
                            "layer_index": 0, "wrapper": "grid", "scale": 4}}

``wrapper`` wraps the JSON as ``wrapper(...)`` (for wax); ``buffer`` (pixels)
widens the area Mapnik queries for features, so labels and symbols that cross
the tile edge are found.
"""
from __future__ import annotations

from ...Errors import ConfigError
from ...Mapnik import GridProvider


class Provider(GridProvider):
    """A UTFGrid provider taking the goodie's kwargs."""

    def __init__(self, layer, mapfile: str, fields: list, layer_index: int = 0,
                 wrapper: str | None = None, scale: int = 4, buffer: int = 0) -> None:
        if wrapper is not None and not isinstance(wrapper, str):
            raise ConfigError("wrapper must be a string", key="wrapper")
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 0:
            raise ConfigError(f"buffer must be a whole number of pixels, not {buffer!r}", key="buffer")
        super().__init__(layer, mapfile, fields=list(fields), layer_index=layer_index, scale=scale)
        self.wrapper = wrapper
        self.buffer = buffer

    def renderTile(self, width: int, height: int, srs: str, coord, scale_factor: float | None = None) -> bytes:
        """The tile's UTFGrid JSON, wrapped in ``wrapper(...)`` when one is set."""
        body = self.render_grid(width, height, coord, scale_factor, buffer=self.buffer)
        if self.wrapper is None:
            return body
        return self.wrapper.encode("utf-8") + b"(" + body + b")"
