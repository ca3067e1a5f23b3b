"""Seeding progress: a tqdm bar on a terminal, periodic log lines otherwise, an optional JSON file."""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time

import tqdm

from ..Seed import Outcome

log = logging.getLogger("tilestache-seed")


class Progress:
    """Counts finished tiles and shows them; call update() per metatile (or advance()) and close() at the end.

    ``tile_format`` turns a "z/x/y" name into the progress file's "tile" value,
    e.g. "osm/{}.png" for the original's "layer/z/x/y.ext".
    """

    def __init__(self, total_tiles: int, quiet: bool = False, progress_file: str | None = None,
                 log_interval: float = 10.0, stream=None, tile_format: str = "{}") -> None:
        self.total = total_tiles
        self.tile_format = tile_format
        self.done = 0
        self.progress_file = progress_file
        self.log_interval = log_interval
        self.started = self.last_log = self.last_file = time.monotonic()
        stream = stream or sys.stderr
        self.bar = None
        if not quiet and stream.isatty():
            tqdm.tqdm.monitor_interval = 0  # no monitor thread: workers are forked
            self.bar = tqdm.tqdm(total=total_tiles, unit="tile", file=stream, dynamic_ncols=True)
        self.logging = not quiet and self.bar is None

    def update(self, outcome: Outcome) -> None:
        """Count a finished metatile."""
        self.advance(outcome.tiles, outcome.first)

    def advance(self, tiles: int, name: str) -> None:
        """Count finished tiles, the last of them named "z/x/y"."""
        self.done += tiles
        now = time.monotonic()
        if self.bar is not None:
            self.bar.update(tiles)
        elif self.logging and now - self.last_log >= self.log_interval:
            self.last_log = now
            log.info("%s", self.line())
        if self.progress_file and now - self.last_file >= 1.0:
            self.last_file = now
            self.write_file(name)

    def line(self) -> str:
        """One line: done/total, percent, tiles per second, time left."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate else float("inf")
        percent = 100.0 * self.done / self.total if self.total else 100.0
        eta = f"{left:.0f}s" if left != float("inf") else "?"
        return f"{self.done}/{self.total} tiles ({percent:.1f}%), {rate:.1f} tiles/s, {eta} left"

    def write_file(self, last_tile: str | None) -> None:
        """Write {"tile", "offset", "total"} to the progress file, atomically ("tile" as tile_format)."""
        folder = os.path.dirname(os.path.abspath(self.progress_file))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".progress-")
        with os.fdopen(fd, "w") as file:
            json.dump({"tile": None if last_tile is None else self.tile_format.format(last_tile), "offset": self.done, "total": self.total}, file)
        os.replace(tmp, self.progress_file)

    def close(self, last_tile: str | None = None) -> None:
        """Finish the bar (or log a last line) and write the progress file."""
        if self.bar is not None:
            self.bar.close()
        elif self.logging:
            log.info("%s", self.line())
        if self.progress_file:
            self.write_file(last_tile)
