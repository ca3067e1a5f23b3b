"""Small real providers that tests plug in with "class": "plugins:Name".

They draw real Pillow images (or JSON) and can log every render to a file,
one JSON line each, so tests in several processes can count renders.
"""
from __future__ import annotations

import json
import os
import threading
import time

from PIL import Image, ImageDraw

from TileStache.Errors import NoTileLeftBehind


def record(path: str | None, **call) -> None:
    """Append one JSON line describing a render call to a log file."""
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(call) + "\n")


def read_log(path: str) -> list[dict]:
    """The render calls recorded in a log file."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as log:
        return [json.loads(line) for line in log if line.strip()]


class GridPainter:
    """Draws a grid line every 256 px and a colour per zoom; logs each renderArea call."""

    def __init__(self, layer, log: str | None = None, delay: float = 0.0) -> None:
        self.layer = layer
        self.log = log
        self.delay = float(delay)

    def renderArea(self, width, height, srs, xmin, ymin, xmax, ymax, zoom):
        record(self.log, kind="area", width=width, height=height, srs=srs,
               bbox=[xmin, ymin, xmax, ymax], zoom=zoom, pid=os.getpid(),
               thread=threading.get_ident())
        if self.delay:
            time.sleep(self.delay)  # stands in for a slow renderer, to widen race windows
        image = Image.new("RGBA", (width, height), (40 * zoom % 256, 120, 200, 255))
        draw = ImageDraw.Draw(image)
        for x in range(0, width, 64):
            draw.line([(x, 0), (x, height)], fill=(255, 255, 255, 255))
        return image


class TilePainter:
    """Draws single tiles only (no renderArea); logs each renderTile call."""

    def __init__(self, layer, log: str | None = None) -> None:
        self.layer = layer
        self.log = log

    def renderTile(self, width, height, srs, coord):
        record(self.log, kind="tile", width=width, height=height,
               coord=[coord.zoom, coord.column, coord.row])
        return Image.new("RGBA", (width, height), (200, 20, 20, 255))


class JsonBody:
    """A rendered JSON tile: anything with save(file, format)."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def save(self, file, format):
        file.write(json.dumps(self.data).encode("utf-8"))


class JsonTiles:
    """A provider of small JSON documents describing each tile."""

    def __init__(self, layer, log: str | None = None) -> None:
        self.layer = layer
        self.log = log

    def getTypeByExtension(self, extension):
        if extension == "json":
            return "application/json", "JSON"
        from TileStache.Errors import BadRequest

        raise BadRequest(f"Unsupported tile format: {extension}")

    def renderTile(self, width, height, srs, coord):
        record(self.log, kind="json", coord=[coord.zoom, coord.column, coord.row])
        return JsonBody({"zoom": coord.zoom, "column": coord.column, "row": coord.row,
                         "filler": "x" * 400})


class Forgetful:
    """Hands back a tile but asks for it not to be cached."""

    def __init__(self, layer) -> None:
        self.layer = layer

    def renderTile(self, width, height, srs, coord):
        raise NoTileLeftBehind(Image.new("RGBA", (width, height), (0, 255, 0, 255)))


class Picky:
    """Draws PNG tiles only; refuses every other extension the documented way, with KnownUnknown."""

    def __init__(self, layer) -> None:
        self.layer = layer

    def getTypeByExtension(self, extension):
        if extension == "png":
            return "image/png", "PNG"
        from TileStache.Core import KnownUnknown

        raise KnownUnknown(f"Picky only draws png, not {extension}")

    def renderTile(self, width, height, srs, coord):
        return Image.new("RGBA", (width, height), (10, 20, 30, 255))
