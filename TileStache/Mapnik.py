"""Mapnik rendering: images from a Mapnik XML style.

Mapnik maps are not thread-safe, so each provider keeps a small pool of
loaded maps: a render takes one, uses it alone, and gives it back. Threads
never wait on each other; the pool holds as many maps as renders ran at once.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request

from PIL import Image

from .Config import resolve_path
from .Errors import BadRequest, ConfigError

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


def open_style(layer, mapfile: str, fonts: str | None = None) -> MapPool:
    """A MapPool of a layer's style, loaded once now so a broken style fails at config time."""
    if not isinstance(mapfile, str) or not mapfile:
        raise ConfigError("mapnik needs a mapfile", key="mapfile")
    dirpath = layer.config.dirpath if layer.config is not None else "."
    location = resolve_path(dirpath, mapfile)
    if "://" not in location and not os.path.isfile(location):
        raise ConfigError(f"mapfile {location} does not exist", key="mapfile")
    if fonts:
        register_fonts(resolve_path(dirpath, fonts))
    maps = MapPool(location)
    try:
        maps.give(maps.load())
    except (RuntimeError, OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot load {location}: {error}", key="mapfile") from None
    return maps


class ImageProvider:
    """Renders tiles (and metatiles) from a Mapnik XML style file or URL."""

    def __init__(self, layer, mapfile: str, fonts: str | None = None,
                 scale_factor: float | None = None) -> None:
        self.layer = layer
        self.maps = open_style(layer, mapfile, fonts)
        self.mapfile = self.maps.mapfile
        self.scale_factor = float(scale_factor if scale_factor is not None
                                  else getattr(layer, "scale_factor", 1.0))

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


class GridProvider:
    """UTFGrid JSON (interactivity) of features in one or more layers of a Mapnik style.

    ``layers`` is a list of ``[layer index, [field names]]``; without it,
    ``layer_index`` (default 0) and ``fields`` name one layer. Fields left out
    (or null) mean all of the layer's fields. ``scale`` is the grid's pixel
    size (4: one grid cell per 4x4 pixels). With ``layer_id_key``, each
    feature's data also holds its Mapnik layer's name under that key. Where
    layers overlap, the later one in ``layers`` wins.
    """

    def __init__(self, layer, mapfile: str, fields: list | None = None, layer_index: int = 0,
                 layers: list | None = None, scale: int = 4, layer_id_key: str | None = None,
                 fonts: str | None = None) -> None:
        self.layer = layer
        self.maps = open_style(layer, mapfile, fonts)
        self.mapfile = self.maps.mapfile
        if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 64:
            raise ConfigError(f"scale must be a whole number from 1 to 64, not {scale!r}", key="scale")
        self.scale = scale
        if layer_id_key is not None and not isinstance(layer_id_key, str):
            raise ConfigError("layer_id_key must be a string", key="layer_id_key")
        self.layer_id_key = layer_id_key
        if layers is None:
            layers, key = [[layer_index, fields]], "layer_index"
        else:
            key = "layers"
        self.layers = self._check_layers(layers, key)

    def _check_layers(self, layers, key: str) -> list[tuple[int, list[str], str]]:
        """(index, fields, layer name) for each requested layer, checked against the style."""
        if not isinstance(layers, list) or not layers:
            raise ConfigError("layers must be a list of [layer index, [field names]]", key=key)
        m = self.maps.take()
        try:
            checked = []
            for item in layers:
                if not isinstance(item, (list, tuple)) or len(item) not in (1, 2):
                    raise ConfigError(f"{item!r} is not [layer index, [field names]]", key=key)
                index, fields = item[0], (item[1] if len(item) == 2 else None)
                if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(m.layers):
                    raise ConfigError(f"no layer {index!r} in {self.mapfile} (it has {len(m.layers)}, "
                                      f"counted from 0)", key=key)
                known = list(m.layers[index].datasource.fields())
                if fields is None:
                    fields = known
                if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
                    raise ConfigError(f"fields of layer {index} must be a list of names", key=key)
                unknown = sorted(set(fields) - set(known))
                if unknown:
                    raise ConfigError(f"layer {index} ({m.layers[index].name}) has no fields {unknown} "
                                      f"(it has {known})", key=key)
                checked.append((index, list(fields), m.layers[index].name))
            return checked
        finally:
            self.maps.give(m)

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:
        """Grids are JSON only."""
        if extension.lower() == "json":
            return "application/json; charset=utf-8", "JSON"
        raise BadRequest(f"A grid layer serves .json tiles, not .{extension[:12]}")

    def renderTile(self, width: int, height: int, srs: str, coord, scale_factor: float | None = None) -> bytes:
        """The UTFGrid JSON of one tile."""
        return self.render_grid(width, height, coord, scale_factor)

    def render_grid(self, width: int, height: int, coord, scale_factor: float | None = None,
                    buffer: int = 0) -> bytes:
        """The UTFGrid JSON of one tile, querying features ``buffer`` pixels beyond its edges."""
        projection = self.layer.projection
        ul = projection.coordinateProj(coord)
        lr = projection.coordinateProj(coord.right().down())
        factor = float(scale_factor or getattr(self.layer, "scale_factor", 1.0))
        grids = []
        m = self.maps.take()
        try:
            if m.width != width or m.height != height:
                m.resize(width, height)
            m.zoom_to_box(mapnik.Box2d(ul.x, lr.y, lr.x, ul.y))
            if buffer:
                m.buffer_size = buffer
            for index, fields, name in self.layers:
                grid = mapnik.Grid(width, height)
                mapnik.render_layer(m, grid, layer=index, fields=fields, scale_factor=factor)
                encoded = grid.encode("utf", True, self.scale)
                if self.layer_id_key:
                    for datum in encoded["data"].values():
                        datum[self.layer_id_key] = name
                grids.append(encoded)
        finally:
            self.maps.give(m)
        merged = grids[0] if len(grids) == 1 else merge_grids(grids)
        return json.dumps(merged, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_id(char: str) -> int:
    """The key index a UTFGrid character stands for (skipping '"' and '\\')."""
    code = ord(char)
    if code >= 93:
        code -= 1
    if code >= 35:
        code -= 1
    return code - 32


def encode_id(index: int) -> str:
    """The UTFGrid character for a key index."""
    code = index + 32
    if code >= 34:
        code += 1
    if code >= 92:
        code += 1
    return chr(code)


def merge_grids(grids: list[dict]) -> dict:
    """One UTFGrid of several of the same size, later ones on top; keys are renumbered."""
    keys, data, table = [""], {}, []
    for grid in grids:  # per grid: its key index -> merged key index (0: nothing here)
        mapping = []
        for key in grid["keys"]:
            if key == "" or key not in grid["data"]:
                mapping.append(0)
                continue
            merged_key = str(len(keys))
            keys.append(merged_key)
            data[merged_key] = grid["data"][key]
            mapping.append(len(keys) - 1)
        table.append(mapping)
    rows = []
    for row_index in range(len(grids[0]["grid"])):
        ids = [0] * len(grids[0]["grid"][row_index])
        for grid, mapping in zip(grids, table):
            for column, char in enumerate(grid["grid"][row_index]):
                merged = mapping[decode_id(char)]
                if merged:
                    ids[column] = merged
        rows.append("".join(encode_id(i) for i in ids))
    return {"grid": rows, "keys": keys, "data": data}
