"""TileStache's Celery app: workers that seed metatiles for jobs sent by ``tilestache-seed --cluster``.

Start workers with ``tilestache-worker -c CONFIG --cluster redis://HOST:6379/0``
or, equivalently, with Celery's own command and two environment variables::

    TILESTACHE_CONFIG=/etc/tilestache.cfg TILESTACHE_CLUSTER=redis://HOST:6379/0 \\
        celery -A TileStache.Cluster worker --concurrency 8

A task is one sub-pyramid of metatiles (or one low-zoom metatile), rendered
in order through ``Seed.seed_metatile``, so metatiles already cached are
skipped and the cache's metatile locks apply as in a local seed. Delivery:
acknowledged only when done, redelivered when its worker process dies,
prefetch of one, and a time limit well under the broker's visibility timeout.
``TILESTACHE_VISIBILITY_TIMEOUT`` (seconds, default 7200) sets that timeout;
the hard time limit is a quarter of it, and a task running longer than a
twelfth of it hands the rest of its metatiles on to a new message. Workers
look for messages past the timeout (those of a dead worker) every tenth of it.
"""
from __future__ import annotations

import logging
import os
import socket
import time

from celery import Celery, signals
from ModestMaps.Core import Coordinate

from .ClusterJob import CANCELLED, REFUSED, WORKERS, WORKERS_READY, Job, config_digest
from .Seed import FAILED, seed_metatile
from .Selection import metatile_tiles, tile_name

log = logging.getLogger(__name__)

TASK = "tilestache.seed_metatiles"
QUEUE = "tilestache"
# Attempts at a metatile that raises; and runs of a task whose worker died at the same metatile.
ATTEMPTS = 3
LOST_RUNS = 3
RETRY_DELAY = 0.5

VISIBILITY_TIMEOUT = float(os.environ.get("TILESTACHE_VISIBILITY_TIMEOUT", 7200))
TIME_LIMIT = VISIBILITY_TIMEOUT / 4
HAND_ON_AFTER = VISIBILITY_TIMEOUT / 12
# Seconds between the workers' sweeps for messages past the visibility timeout (kombu's default is a
# sweep every 10 s x 10 calls): a tenth of the timeout, at most kombu's own 100 s.
RESTORE_SWEEP = max(1.0, min(100.0, VISIBILITY_TIMEOUT / 10))

app = Celery("TileStache")
app.conf.update(
    broker_url=os.environ.get("TILESTACHE_CLUSTER", "redis://127.0.0.1:6379/0"),
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT,
                              "unacked_restore_interval": RESTORE_SWEEP, "unacked_restore_throttle": 1},
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=False,  # a task killed by its time limit comes back after the timeout
    task_time_limit=TIME_LIMIT,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)

_state: dict = {}


def use_broker(url: str) -> None:
    """Point the app (producer or worker) at the cluster's Redis."""
    app.conf.broker_url = url


def worker_config():
    """(configuration, digest) of TILESTACHE_CONFIG, built once per worker process."""
    if _state.get("pid") != os.getpid():
        from .Config import buildConfiguration, read_config_file

        path = os.environ.get("TILESTACHE_CONFIG")
        if not path:
            raise RuntimeError("TILESTACHE_CONFIG is not set: the worker has no configuration")
        config_dict, dirpath = read_config_file(path)
        _state.update(pid=os.getpid(), path=path, config=buildConfiguration(config_dict, dirpath),
                      digest=config_digest(config_dict), redis=None)
    return _state["config"], _state["digest"]


def _redis():
    if _state.get("redis") is None or _state.get("redis_pid") != os.getpid():
        import redis

        _state["redis"] = redis.Redis.from_url(app.conf.broker_url, decode_responses=True,
                                               socket_connect_timeout=5, socket_timeout=30)
        _state["redis_pid"] = os.getpid()
    return _state["redis"]


def worker_name() -> str:
    """This worker process's name in refusals and logs."""
    return f"{socket.gethostname()}:{os.getpid()}"


@app.task(name=TASK, bind=True)
def seed_metatiles(self, job_id: str, index: int, layer_name: str, digest: str, extension: str,
                   firsts: list, ignore_cached: bool, attempts: int, sent: float) -> None:
    """Seed a task's metatiles (z, x, y of each first tile) for a job, from where an earlier run stopped."""
    started = time.time()
    job = Job(_redis(), job_id)
    if job.is_done(index):
        return
    if job.state() in (CANCELLED, REFUSED):
        job.drop_task(index)
        return
    config, own_digest = worker_config()
    if layer_name not in config.layers:
        log.error("job %s: layer %r is not in %s", job_id, layer_name, _state["path"])
        job.refuse(worker_name(), f"layer {layer_name!r} is not in the worker's configuration {_state['path']}")
        job.drop_task(index)
        return
    if own_digest != digest:
        log.error("job %s: configuration digest %s differs from the job's %s", job_id, own_digest, digest)
        job.refuse(worker_name(), f"the worker's configuration {_state['path']} (digest {own_digest}) differs "
                                  f"from the job's (digest {digest})")
        job.drop_task(index)
        return
    layer = config.layers[layer_name]
    layer.write_cache = True
    format = layer.getTypeByExtension(extension)[1]
    done, runs = job.start_task(index, max(0.0, started - sent) * 1000)
    for number, (zoom, column, row) in enumerate(firsts[done:], done + 1):
        first = Coordinate(row, column, zoom)
        if number == done + 1 and runs > LOST_RUNS:  # it took its worker process down every time
            status, error, count = FAILED, f"the worker process died rendering it {runs - 1} times", 0
        else:
            outcome = seed_metatile(layer, first, format, ignore_cached, attempts - 1, RETRY_DELAY)
            status, error, count = outcome.status, outcome.error, outcome.tiles
        failure = None
        if status == FAILED:
            tiles = metatile_tiles(layer, first)
            count = len(tiles)
            failure = {"metatile": tile_name(first), "tiles": [tile_name(c) for c in tiles], "error": error}
            log.warning("job %s: metatile %s failed: %s", job_id, tile_name(first), error)
        state = job.record(index, number, status, count, failure)
        if state in (CANCELLED, REFUSED):
            job.drop_task(index)
            return
        if number < len(firsts) and time.time() - started > HAND_ON_AFTER:
            job.pause_task(index, number)
            send_task(job_id, index, layer_name, digest, extension, firsts, ignore_cached, attempts)
            return
    job.finish_task(index)


def send_task(job_id: str, index: int, layer_name: str, digest: str, extension: str, firsts: list,
              ignore_cached: bool, attempts: int) -> None:
    """Put one task of a job on the queue."""
    app.send_task(TASK, args=[job_id, index, layer_name, digest, extension, firsts, ignore_cached, attempts,
                              time.time()],
                  queue=QUEUE, retry=True,
                  retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})


@signals.worker_ready.connect
def _announce(sender=None, **_) -> None:
    """Tell the cluster this worker and its process slots are ready."""
    client = _redis()
    name = sender.hostname if sender is not None else worker_name()
    slots = getattr(getattr(sender, "pool", None), "num_processes", None) or app.conf.worker_concurrency or 1
    with client.pipeline() as pipe:
        pipe.hset(WORKERS, name, int(slots))
        pipe.rpush(WORKERS_READY, name)
        pipe.ltrim(WORKERS_READY, -1000, -1)
        pipe.execute()


@signals.worker_shutdown.connect
def _retire(sender=None, **_) -> None:
    """Take this worker's slots off the cluster's count."""
    if sender is not None:
        try:
            _redis().hdel(WORKERS, sender.hostname)
        except Exception:  # the broker may be gone already
            pass
