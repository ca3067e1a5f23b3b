"""A Mapnik provider for the command-line tool tests that logs every render.

Each render appends one line, ``z/x/y`` of the metatile's first tile, to a log
file (appends of one short line are atomic, so several processes may share
it). ``delay`` slows each render down so a test can interrupt a run mid-way;
``fail_zoom`` makes every render at that zoom raise; with ``fail_once`` (a
file path) only the first such render fails, and it creates that file.
"""
from __future__ import annotations

import math
import os
import time

from ModestMaps.Core import Point

from TileStache.Mapnik import ImageProvider


class CountingProvider:
    """Renders with Mapnik and appends the metatile's first tile to a log file."""

    def __init__(self, layer, mapfile: str, log: str, delay: float = 0.0, fail_zoom: int | None = None,
                 fail_once: str | None = None) -> None:
        self.layer = layer
        self.inner = ImageProvider(layer, mapfile)
        self.log = log
        self.delay = float(delay)
        self.fail_zoom = fail_zoom
        self.fail_once = fail_once

    def renderArea(self, width, height, srs, xmin, ymin, xmax, ymax, zoom):
        """Render with Mapnik (or fail at fail_zoom), then log and wait."""
        if zoom == self.fail_zoom:
            if self.fail_once is None:
                raise RuntimeError(f"refusing to render zoom {zoom}")
            try:
                os.close(os.open(self.fail_once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                raise RuntimeError(f"failing once at zoom {zoom}")
            except FileExistsError:
                pass
        image = self.inner.renderArea(width, height, srs, xmin, ymin, xmax, ymax, zoom)
        middle = self.layer.projection.projCoordinate(Point((xmin + xmax) / 2, (ymin + ymax) / 2), zoom)
        middle.row, middle.column = math.floor(middle.row), math.floor(middle.column)
        first = self.layer.metatile.firstCoord(middle)
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{first.zoom}/{first.column}/{first.row}\n".encode())
        finally:
            os.close(fd)
        time.sleep(self.delay)
        return image


def rendered(log: str) -> list[str]:
    """The z/x/y lines a log holds (empty when nothing rendered yet)."""
    try:
        with open(log) as file:
            return file.read().split()
    except FileNotFoundError:
        return []
