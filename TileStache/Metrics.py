"""Health checks and Prometheus metrics of a tile server.

``/health`` answers "ok" once a configuration is loaded; ``/health?ready=1``
also reads one key from the cache and says 503 when the cache does not answer.

With ``"metrics": true`` at the top of a configuration, the pipeline counts
what it does through the hooks of ``Metrics`` (requests, cache hits and
misses, renders, metatile lock waits, upstream errors, seeded tiles), each
labelled by layer and never by coordinate, and ``/metrics`` shows them in
Prometheus' text format. Counting is done by ``prometheus_client``: when
``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn, see ``gunicorn.conf.py``) every
worker process writes its counts to files there and a scrape sums them all.
"""
from __future__ import annotations

import glob
import logging
import os
import threading

from ModestMaps.Core import Coordinate

from .Errors import ConfigError

log = logging.getLogger(__name__)

# Render time buckets (seconds): few, so a scrape stays small with many layers.
RENDER_BUCKETS = (0.05, 0.25, 1.0, 5.0, 30.0)
# A metatile lock taken after this many seconds counts as a wait.
LOCK_WAIT_MIN = 0.001
# The layer label of requests that are not for a configured layer (index, health, unknown names).
NO_LAYER = ""

_metrics: "Metrics | None" = None
_metrics_lock = threading.Lock()


def enable() -> "Metrics":
    """The process's Metrics, made on first use; a ConfigError naming the extra without prometheus_client."""
    global _metrics
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ConfigError("needs the optional package 'prometheus_client': pip install 'TileStache[metrics]'",
                          None, "metrics") from None
    with _metrics_lock:
        if _metrics is None:
            _metrics = Metrics()
        return _metrics


class Metrics:
    """The counters of this process, and the hooks the pipeline calls to move them."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        # In multiprocess mode values live in files and a scrape reads those; else in this registry.
        self.registry = None if self.multiprocess_dir else CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter("tilestache_requests", "HTTP requests answered, by layer and status class",
                                ["layer", "status"], registry=registry)
        self.hits = Counter("tilestache_cache_hits", "Tiles found in the cache", ["layer"], registry=registry)
        self.misses = Counter("tilestache_cache_misses", "Tiles not found in the cache", ["layer"],
                              registry=registry)
        self.render = Histogram("tilestache_render_seconds", "Time to render, cut, encode and save one metatile",
                                ["layer"], buckets=RENDER_BUCKETS, registry=registry)
        self.lock_waits = Counter("tilestache_lock_waits", "Metatile locks that were not free at once",
                                  ["layer"], registry=registry)
        self.lock_wait_seconds = Counter("tilestache_lock_wait_seconds", "Time spent taking metatile locks",
                                         ["layer"], registry=registry)
        self.upstream_errors = Counter("tilestache_upstream_errors",
                                       "Failures of a remote source (tile server, database)", ["layer"],
                                       registry=registry)
        self.seeded = Counter("tilestache_tiles_seeded", "Tiles rendered into the cache by seeding", ["layer"],
                              registry=registry)
        # metric -> {label values: child}: labels() takes a lock and builds a key, so each child is made once
        self._children: dict[object, dict[tuple, object]] = {
            m: {} for m in (self.requests, self.hits, self.misses, self.render, self.lock_waits,
                            self.lock_wait_seconds, self.upstream_errors, self.seeded)}

    def _child(self, metric, labels: tuple):
        children = self._children[metric]
        child = children.get(labels)
        if child is None:
            child = children[labels] = metric.labels(*labels)
        return child

    # -- the hooks -------------------------------------------------------------

    def request(self, layer: str, status: int) -> None:
        """One answered request."""
        self._child(self.requests, (layer, f"{status // 100}xx")).inc()

    def hit(self, layer: str) -> None:
        """A tile read from the cache."""
        self._child(self.hits, (layer,)).inc()

    def miss(self, layer: str) -> None:
        """A tile the cache did not have."""
        self._child(self.misses, (layer,)).inc()

    def rendered(self, layer: str, seconds: float) -> None:
        """One metatile rendered (and saved) in this many seconds."""
        self._child(self.render, (layer,)).observe(seconds)

    def locked(self, layer: str, seconds: float) -> None:
        """A metatile lock taken after this many seconds."""
        self._child(self.lock_wait_seconds, (layer,)).inc(seconds)
        if seconds >= LOCK_WAIT_MIN:
            self._child(self.lock_waits, (layer,)).inc()

    def upstream_error(self, layer: str) -> None:
        """A remote source failed a render."""
        self._child(self.upstream_errors, (layer,)).inc()

    def tiles_seeded(self, layer: str, count: int) -> None:
        """Tiles of a metatile seeding rendered into the cache."""
        self._child(self.seeded, (layer,)).inc(count)

    # -- the scrape ------------------------------------------------------------

    def exposition(self) -> tuple[str, bytes]:
        """(content type, body) of a scrape: this process's counts, or every worker's summed."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.registry is not None:
            return CONTENT_TYPE_LATEST, generate_latest(self.registry)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WorkerFiles(self.multiprocess_dir))
        return CONTENT_TYPE_LATEST, generate_latest(registry)


class WorkerFiles:
    """Sums the metric files of every worker, past and present, skipping any it cannot read.

    A worker killed mid-write must not fail the scrape: when the files do not
    merge, each is tried alone and the unreadable ones are left out (logged).
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self):
        from prometheus_client.multiprocess import MultiProcessCollector

        files = sorted(glob.glob(os.path.join(self.path, "*.db")))
        try:
            return MultiProcessCollector.merge(files, accumulate=True)
        except Exception:  # noqa: BLE001  (any broken file; find which below)
            pass
        readable = []
        for name in files:
            try:
                MultiProcessCollector.merge([name], accumulate=True)
                readable.append(name)
            except Exception as error:  # noqa: BLE001
                log.warning("Leaving out unreadable metrics file %s: %s", name, error)
        return MultiProcessCollector.merge(readable, accumulate=True)


# -- health ---------------------------------------------------------------------

class _ProbeLayer:
    """What a cache needs of a layer to read one key, when the configuration has no layer."""

    cache_lifespan = None
    stale_lock_timeout = 15

    @staticmethod
    def name() -> str:
        return "tilestache-health"


def cache_ready(config) -> bool:
    """True when the configuration's cache answers a read of one key (a miss is an answer)."""
    from .Caches import read_entry

    layer, format = _ProbeLayer(), "HEALTH"
    for candidate in config.layers.values():
        try:
            format = candidate.getTypeByExtension(candidate.preview_ext)[1]
            layer = candidate
            break
        except Exception:  # noqa: BLE001  (a layer without its preview format: try the next)
            continue
    cache = config.cache
    try:
        read_entry(cache, layer, Coordinate(0, 0, 0), format)
    except Exception as error:  # noqa: BLE001
        log.warning("Readiness check: reading the cache failed: %s", error)
        return False
    return all(outage.available() for outage in _outages(cache))


def _outages(cache) -> list:
    """The outage records of a cache and of its tiers (caches over a network keep one)."""
    found = [cache.outage] if hasattr(getattr(cache, "outage", None), "available") else []
    for tier in getattr(cache, "tiers", None) or []:
        found += _outages(tier)
    return found
