"""Mapnik rendering: images from a Mapnik XML style.

Mapnik maps are not thread-safe, so each provider keeps a small pool of
loaded maps: a render takes one, uses it alone, and gives it back. Threads
never wait on each other; the pool holds as many maps as renders ran at once.
"""
from __future__ import annotations

import logging
import os
import threading
import urllib.request

from PIL import Image

from .Config import resolve_path
from .Errors import ConfigError

import mapnik  # noqa: E402  (after our imports so a missing extra names itself)

log = logging.getLogger(__name__)

_registered_fonts: set[str] = set()
_fonts_lock = threading.Lock()


def register_fonts(folder: str) -> None:
    """Make the fonts in a folder known to Mapnik, once per process."""
    with _fonts_lock:
        if folder in _registered_fonts:
            return
        if not os.path.isdir(folder):
            raise ConfigError(f"fonts folder {folder} does not exist", key="fonts")
        mapnik.register_fonts(folder)
        _registered_fonts.add(folder)


class MapPool:
    """Loaded copies of one Mapnik style, lent to one render at a time."""

    def __init__(self, mapfile: str) -> None:
        self.mapfile = mapfile
        self._xml: str | None = None
        self._idle: list = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def load(self):
        """A freshly loaded mapnik.Map of the style."""
        m = mapnik.Map(256, 256)
        if "://" in self.mapfile:
            if self._xml is None:
                with urllib.request.urlopen(self.mapfile, timeout=30) as response:
                    self._xml = response.read().decode("utf-8")
            mapnik.load_map_from_string(m, self._xml, True, self.mapfile.rsplit("/", 1)[0] + "/")
        else:
            mapnik.load_map(m, self.mapfile, True)
        return m

    def take(self):
        """An idle map, or a new one when all are busy."""
        with self._lock:
            if self._pid != os.getpid():  # forked: maps may hold the parent's connections
                self._idle.clear()
                self._pid = os.getpid()
            if self._idle:
                return self._idle.pop()
        return self.load()

    def give(self, m) -> None:
        """Return a map to the pool."""
        with self._lock:
            if self._pid == os.getpid():
                self._idle.append(m)


class ImageProvider:
    """Renders tiles (and metatiles) from a Mapnik XML style file or URL."""

    def __init__(self, layer, mapfile: str, fonts: str | None = None,
                 scale_factor: float | None = None) -> None:
        if not isinstance(mapfile, str) or not mapfile:
            raise ConfigError("mapnik needs a mapfile", key="mapfile")
        self.layer = layer
        dirpath = layer.config.dirpath if layer.config is not None else "."
        self.mapfile = resolve_path(dirpath, mapfile)
        if "://" not in self.mapfile and not os.path.isfile(self.mapfile):
            raise ConfigError(f"mapfile {self.mapfile} does not exist", key="mapfile")
        if fonts:
            register_fonts(resolve_path(dirpath, fonts))
        self.scale_factor = float(scale_factor if scale_factor is not None
                                  else getattr(layer, "scale_factor", 1.0))
        self.maps = MapPool(self.mapfile)
        try:
            self.maps.give(self.maps.load())  # load once now, so a broken style fails at config time
        except (RuntimeError, OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot load {self.mapfile}: {error}", key="mapfile") from None

    def renderArea(self, width: int, height: int, srs: str, xmin: float, ymin: float,
                   xmax: float, ymax: float, zoom: int, scale_factor: float | None = None) -> Image.Image:
        """An RGBA Pillow image of the area (in the layer's projection)."""
        m = self.maps.take()
        try:
            if m.width != width or m.height != height:
                m.resize(width, height)
            m.zoom_to_box(mapnik.Box2d(xmin, ymin, xmax, ymax))
            canvas = mapnik.Image(width, height)
            mapnik.render(m, canvas, scale_factor or self.scale_factor)
        finally:
            self.maps.give(m)
        return Image.frombuffer("RGBA", (width, height), canvas.to_string(), "raw", "RGBA", 0, 1)
