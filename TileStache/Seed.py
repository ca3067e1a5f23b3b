"""Seeding: render metatiles into a layer's cache, in one or many processes.

The unit of work is a metatile, named by its top-left coordinate; each goes
to exactly one process, which renders it once through the layer's pipeline
(``Layer.render_and_save``) under the cache's metatile lock.

Resume: before rendering, a metatile whose tiles are all in the cache is
skipped (its last-saved tile is checked first, so an unfinished metatile costs
one cache miss). The cache is the record of what is done, so a run stopped in
any way (Ctrl-C, kill -9, a crash, a reboot) resumes without a state file that
could disagree with it, and tiles someone removed get rendered again. With
``ignore_cached`` every metatile is rendered.
"""
from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from ModestMaps.Core import Coordinate

from .Caches import read_entry
from .Errors import NoTileLeftBehind
from .Selection import metatile_tiles, tile_name

log = logging.getLogger(__name__)

RENDERED, CACHED, FAILED, STOPPED, MISSING, UNCACHEABLE = (
    "rendered", "cached", "failed", "stopped", "missing", "uncacheable")


class MissingTile(Exception):
    """A copy source (e.g. --from-mbtiles) has no tile at this coordinate."""


class Outcome(NamedTuple):
    """What happened to one metatile: its first tile, how many tiles it holds, status, error text."""

    first: str
    tiles: int
    status: str
    error: str | None = None
    pid: int = 0
    maxrss_kb: int = 0


@dataclass
class Summary:
    """Counts of metatiles and tiles by status, failures, and each worker's peak memory."""

    metatiles: dict = field(default_factory=dict)
    tiles: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    worker_maxrss_kb: dict = field(default_factory=dict)
    interrupted: bool = False

    def add(self, outcome: Outcome) -> None:
        """Count one metatile's outcome."""
        self.metatiles[outcome.status] = self.metatiles.get(outcome.status, 0) + 1
        self.tiles[outcome.status] = self.tiles.get(outcome.status, 0) + outcome.tiles
        if outcome.status == FAILED:
            self.failures.append((outcome.first, outcome.error))
        if outcome.pid:
            self.worker_maxrss_kb[outcome.pid] = max(outcome.maxrss_kb,
                                                     self.worker_maxrss_kb.get(outcome.pid, 0))


def metatile_done(layer, coords: list[Coordinate], format: str) -> bool:
    """True when every tile of a metatile is in the layer's cache (checked last-saved first)."""
    cache = layer.config.cache
    return all(read_entry(cache, layer, c, format) is not None for c in reversed(coords))


def seed_metatile(layer, first: Coordinate, format: str, ignore_cached: bool = False,
                  retries: int = 0, retry_delay: float = 1.0) -> Outcome:
    """Render one metatile into the cache unless all its tiles are there already."""
    coords = metatile_tiles(layer, first)
    name = tile_name(first)
    if not ignore_cached and metatile_done(layer, coords, format):
        return Outcome(name, len(coords), CACHED)
    cache = layer.config.cache
    error = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(retry_delay * 2 ** (attempt - 1))
        try:
            cache.lock(layer, first, format)
            try:
                if not ignore_cached and metatile_done(layer, coords, format):
                    return Outcome(name, len(coords), CACHED)
                layer.render_and_save(first, format)
            finally:
                cache.unlock(layer, first, format)
            metrics = getattr(layer.config, "metrics", None)
            if metrics is not None:
                metrics.tiles_seeded(layer.name(), len(coords))
            return Outcome(name, len(coords), RENDERED)
        except NoTileLeftBehind:
            return Outcome(name, len(coords), UNCACHEABLE)
        except MissingTile:
            return Outcome(name, len(coords), MISSING)
        except Exception as failure:  # a tile failing must not stop the run
            error = f"{type(failure).__name__}: {failure}"
            log.debug("metatile %s attempt %d failed: %s", name, attempt + 1, error)
    return Outcome(name, len(coords), FAILED, error)


# -- worker processes ----------------------------------------------------------

_worker: dict = {}


def _die_with_parent() -> None:
    """Ask Linux to end this worker when the seeding process dies (e.g. kill -9)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    _die_with_parent()


def _run_one(first: tuple[int, int, int]) -> Outcome:
    zoom, column, row = first
    if _worker["stop"].is_set():
        return Outcome(f"{zoom}/{column}/{row}", 0, STOPPED)
    outcome = seed_metatile(_worker["layer"], Coordinate(row, column, zoom), _worker["format"],
                            _worker["ignore_cached"], _worker["retries"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return outcome._replace(pid=os.getpid(), maxrss_kb=rss)


class StopFlag:
    """Set by the first SIGINT/SIGTERM; a second SIGINT interrupts at once."""

    def __init__(self, event=None) -> None:
        self.event = event
        self.stopped = False

    def install(self) -> dict:
        """Install the handlers; returns the previous ones for restore()."""
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._handle)
        return previous

    def _handle(self, signum, frame) -> None:
        if self.stopped and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stopped = True
        if self.event is not None:
            self.event.set()
        log.warning("Stopping: finishing the metatiles being rendered (Ctrl-C again to abort)")

    @staticmethod
    def restore(previous: dict) -> None:
        """Put back the handlers install() replaced."""
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def seed(layer, firsts: Iterable[Coordinate], format: str, jobs: int = 1, ignore_cached: bool = False,
         retries: int = 0, report: Callable[[Outcome], None] | None = None) -> Summary:
    """Seed metatiles (by first coordinate) into the layer's cache with `jobs` processes.

    ``report`` is called in this process with each metatile's Outcome as it
    finishes. SIGINT/SIGTERM stop handing out work; metatiles being rendered
    finish, so no tile is left half written, and ``Summary.interrupted`` is set.
    """
    summary = Summary()

    def account(outcome: Outcome) -> None:
        if outcome.status != STOPPED:
            summary.add(outcome)
            if report is not None:
                report(outcome)

    if jobs <= 1:
        flag = StopFlag()
        previous = flag.install()
        try:
            for first in firsts:
                if flag.stopped:
                    break
                outcome = seed_metatile(layer, first, format, ignore_cached, retries)
                account(outcome._replace(pid=os.getpid(),
                                         maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
        finally:
            StopFlag.restore(previous)
        summary.interrupted = flag.stopped
        return summary

    context = multiprocessing.get_context("fork")
    stop = context.Event()
    _worker.update(layer=layer, format=format, ignore_cached=ignore_cached, retries=retries, stop=stop)
    keys = ((int(f.zoom), int(f.column), int(f.row)) for f in firsts)
    flag = StopFlag(stop)
    pool = context.Pool(jobs, initializer=_init_worker)
    previous = flag.install()
    try:
        for outcome in pool.imap_unordered(_run_one, keys, chunksize=1):
            account(outcome)
        pool.close()
    except KeyboardInterrupt:
        pool.terminate()
        raise
    finally:
        StopFlag.restore(previous)
        pool.join()
        _worker.clear()
    summary.interrupted = flag.stopped
    return summary


class CacheSource:
    """A provider that "renders" a tile by reading it from another cache (e.g. an MBTiles file)."""

    def __init__(self, layer, cache, format: str) -> None:
        self.layer = layer
        self.cache = cache
        self.format = format

    def renderTile(self, width: int, height: int, srs: str, coord) -> bytes:
        """The stored tile's bytes; MissingTile when the source does not have it."""
        body = self.cache.read(self.layer, coord, self.format)
        if body is None:
            raise MissingTile(tile_name(coord))
        return body
