"""tilestache-seed --cluster: send a seeding job to Celery workers, follow it, resume or cancel it.

The job is cut into tasks: each metatile above the job's root zoom alone, and
below it one sub-pyramid per root metatile (``--task-levels`` zooms deep). The
plan is a pure function of the options and the configuration, so a producer
that died is replaced by ``--resume JOB``, which plans again and goes on from
the position stored in Redis. The queue is kept a few times the workers'
process slots deep, never the whole job.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator

from ModestMaps.Core import Coordinate

from ..ClusterJob import CANCELLED, DONE, REFUSED, RUNNING, Job, JobError, config_digest, connect, worker_slots
from ..Config import read_config_file
from ..Errors import ConfigError
from ..Selection import (bbox_tile_range, metatile_size, pyramid_root, root_zoom, tile_name, whole_world,
                         window_metatiles)
from .common import (EXIT_FAILURES, EXIT_OK, EXIT_USAGE, UsageError, check_extension, metatile_in_bounds,
                     parse_selection, selected_metatiles)
from .progress import Progress

log = logging.getLogger("tilestache-seed")

# Tasks kept queued per worker process slot, and at least this many while no worker has announced itself.
QUEUE_PER_SLOT, MIN_QUEUE = 3, 4
# The seed options a job stores so --resume can plan it again without the original command line.
STORED_OPTIONS = ("config", "layer", "extension", "zooms", "bbox", "padding", "tile_list", "coverage",
                  "ignore_cached", "enable_retries", "error_list", "task_levels", "progress_file")
PATH_OPTIONS = ("config", "tile_list", "coverage", "error_list", "progress_file")
# Local-seed options a cluster job can not honour: the workers write into the layer's configured cache.
LOCAL_ONLY = ("output_directory", "to_mbtiles", "to_s3", "to_pmtiles", "from_mbtiles", "from_pmtiles",
              "jsonp_callback")


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """--cluster, --detach, --status, --resume, --cancel and --task-levels."""
    parser.add_argument("--cluster", metavar="redis://HOST:PORT/DB",
                        help="send the job to the tilestache-worker processes of this Celery broker instead of "
                             "rendering here, and follow its progress")
    parser.add_argument("--detach", action="store_true",
                        help="with --cluster: print the job id and return; the job is fed from the background")
    parser.add_argument("--status", metavar="JOB", help="with --cluster: show a job's progress and failures")
    parser.add_argument("--resume", metavar="JOB",
                        help="with --cluster: go on feeding a job whose producer stopped or that was cancelled")
    parser.add_argument("--cancel", metavar="JOB", help="with --cluster: stop a job; workers drop its tasks")
    parser.add_argument("--task-levels", type=int, default=3,
                        help="with --cluster: zoom levels in one task's sub-pyramid of metatiles "
                             "(default: %(default)s)")


def wanted(args) -> bool:
    """True when the options ask for the cluster."""
    return bool(args.cluster or args.detach or args.status or args.resume or args.cancel)


# -- planning -------------------------------------------------------------------

def plan_tasks(args, layer) -> Callable[[], Iterator[list[Coordinate]]]:
    """A function giving, each time it is called, the job's tasks in the same order: lists of metatiles."""
    sel = parse_selection(args, layer.projection, layer.zoom_range())
    levels = args.task_levels
    if sel.tiles is not None or sel.coverage is not None:
        firsts = list(selected_metatiles(args, layer)())
        zooms = sorted({int(f.zoom) for f in firsts}) or [0]
        root = root_zoom(zooms, levels)
        groups: dict = {}
        for first in sorted(firsts, key=lambda f: (int(f.zoom), int(f.row), int(f.column))):
            key = ("single", tile_name(first)) if first.zoom < root else pyramid_root(layer.metatile, first, root)
            groups.setdefault(key, []).append(first)
        tasks = list(groups.values())
        return lambda: iter(tasks)
    bbox = sel.bbox or whole_world(layer.projection)

    def from_box() -> Iterator[list[Coordinate]]:
        windows = {z: bbox_tile_range(layer.projection, bbox, z, sel.padding) for z in sel.zooms}
        root = root_zoom(sel.zooms, levels)
        for zoom in (z for z in sel.zooms if z < root):
            for first in window_metatiles(layer.metatile, zoom, windows[zoom]):
                if metatile_in_bounds(layer, first, windows[zoom]):
                    yield [first]
        deep = [z for z in sel.zooms if z >= root]
        rows, columns = layer.metatile.rows, layer.metatile.columns
        aligned = {z: (w[0] // columns * columns, w[1] // rows * rows, w[2], w[3]) for z, w in windows.items()}
        roots = (min(aligned[z][0] >> (z - root) for z in deep), min(aligned[z][1] >> (z - root) for z in deep),
                 max(aligned[z][2] >> (z - root) for z in deep), max(aligned[z][3] >> (z - root) for z in deep))
        for top in window_metatiles(layer.metatile, root, roots):
            task = []
            for zoom in deep:
                shift = zoom - root
                low_col, low_row = int(top.column) << shift, int(top.row) << shift
                high_col, high_row = ((int(top.column) + columns) << shift) - 1, ((int(top.row) + rows) << shift) - 1
                col0, row0, col1, row1 = windows[zoom]
                part = (max(col0, low_col), max(row0, low_row), min(col1, high_col), min(row1, high_row))
                if part[0] > part[2] or part[1] > part[3]:
                    continue
                for first in window_metatiles(layer.metatile, zoom, part):
                    if first.column >= low_col and first.row >= low_row \
                            and metatile_in_bounds(layer, first, windows[zoom]):
                        task.append(first)
            if task:
                yield task
    return from_box


# -- the commands -----------------------------------------------------------------

def main(args, prepare_layer) -> int:
    """Run the cluster side of tilestache-seed for parsed options; returns the exit code."""
    if not args.cluster:
        raise UsageError("--detach, --status, --resume and --cancel need --cluster redis://HOST:PORT/DB")
    if not str(args.cluster).startswith(("redis://", "rediss://")):
        raise UsageError(f"--cluster {args.cluster!r} is not a redis:// or rediss:// URL")
    if sum(1 for v in (args.status, args.resume, args.cancel) if v) > 1:
        raise UsageError("give one of --status, --resume and --cancel")
    if args.task_levels < 1:
        raise UsageError("--task-levels must be at least 1")
    for option in LOCAL_ONLY:
        if getattr(args, option, None):
            raise UsageError(f"--{option.replace('_', '-')} can not be used with --cluster: workers write into "
                             "the layer's configured cache")
    try:
        client = connect(args.cluster)
    except Exception as error:  # redis' ConnectionError, TimeoutError, a bad URL...
        raise UsageError(f"cannot reach the cluster at {args.cluster}: {error}") from None
    try:
        if args.status:
            return show_status(Job.find(client, args.status))
        if args.cancel:
            job = Job.find(client, args.cancel)
            job.set_state(CANCELLED)
            print(f"tilestache-seed: job {job.id} cancelled; workers drop its queued tasks "
                  f"(go on with --resume {job.id})", file=sys.stderr)
            return EXIT_OK
        if args.resume:
            job = Job.find(client, args.resume)
            restore_options(args, job.description())
        else:
            job = None
    except JobError as error:
        raise UsageError(str(error)) from None
    config, layer, extension = prepare_layer(args)
    check_extension(layer, extension)
    try:
        digest = config_digest(read_config_file(args.config)[0])
    except ConfigError as error:
        raise UsageError(str(error)) from None
    plan = plan_tasks(args, layer)
    tasks = tiles = 0
    for task in plan():
        tasks += 1
        tiles += sum(metatile_size(layer, first) for first in task)
    if job is None:
        stored = {name: getattr(args, name, None) for name in STORED_OPTIONS}
        stored["extension"] = extension
        for name in PATH_OPTIONS:
            if stored[name]:
                stored[name] = os.path.abspath(stored[name])
        job = Job.create(client, {"layer": layer.name(), "digest": digest, "extension": extension,
                                  "options": stored, "tasks": tasks, "tiles": tiles})
    else:
        described = job.description()
        if described.get("digest") != digest or described.get("tasks") != tasks:
            raise UsageError(f"job {job.id} was planned on another configuration or selection "
                             f"({described.get('config') or args.config} has changed): start a new job")
        job.client.delete(f"{job.key}:refused")
        job.set_state(RUNNING)
    print(f"tilestache-seed: job {job.id}: {tasks} tasks, {tiles} tiles of layer {layer.name()} "
          f"on {args.cluster}", file=sys.stderr)
    if args.detach:
        print(job.id, flush=True)
        sys.stderr.flush()
        if os.fork():
            return EXIT_OK
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        try:
            feed(args, Job(connect(args.cluster), job.id), layer, plan, extension, quiet=True)
        finally:
            os._exit(0)
    return feed(args, job, layer, plan, extension, quiet=args.quiet)


def restore_options(args, described: dict) -> None:
    """Put a stored job's seed options onto args (for --resume)."""
    for name, value in described.get("options", {}).items():
        setattr(args, name, value)


def feed(args, job: Job, layer, plan, extension: str, quiet: bool) -> int:
    """Keep the job's queue topped up until every task is done; show progress; return the exit code."""
    from ..Cluster import send_task, use_broker

    use_broker(args.cluster)
    described = job.description()
    total_tasks, total_tiles = described["tasks"], described["tiles"]
    attempts = 4 if args.enable_retries else 3
    position = job.position()
    resend = set(job.take_dropped())
    progress = Progress(total_tiles, quiet, args.progress_file, tile_format=f"{layer.name()}/{{}}.{extension}")
    shown = 0
    tasks = enumerate(plan())
    last_sent = None
    waiting_logged = False
    try:
        while True:
            done = job.done_count()
            counts = job.counts()
            finished_tiles = sum(v for k, v in counts.items() if k.startswith("tiles:"))
            if finished_tiles > shown:
                progress.advance(finished_tiles - shown, last_sent)
                shown = finished_tiles
            state = job.state()
            if state in (CANCELLED, REFUSED):
                break
            if position >= total_tasks and not resend and done >= total_tasks:
                break
            depth = max(MIN_QUEUE, QUEUE_PER_SLOT * worker_slots(job.client))
            queued = position - done
            while queued < depth and (resend or position < total_tasks):
                index, task = next(tasks, (None, None))
                if index is None:
                    break
                if index < position and index not in resend:
                    continue
                send_task(job.id, index, layer.name(), described["digest"], extension,
                          [[int(f.zoom), int(f.column), int(f.row)] for f in task],
                          bool(args.ignore_cached), attempts)
                last_sent = tile_name(task[0])
                if index in resend:
                    resend.discard(index)
                else:
                    position = index + 1
                    job.set_position(position)
                queued += 1
            if not worker_slots(job.client) and not waiting_logged and not quiet:
                log.info("job %s: waiting for workers (start them with tilestache-worker)", job.id)
                waiting_logged = True
            job.client.blpop(f"{job.key}:wake", timeout=0.5)
    except KeyboardInterrupt:
        progress.close(last_sent)
        print(f"\ntilestache-seed: stopped feeding job {job.id}; its queued tasks still run. "
              f"Go on with --resume {job.id}, or stop it with --cancel {job.id}", file=sys.stderr)
        return 130
    progress.close(last_sent)
    return summarise(args, job, quiet)


def summarise(args, job: Job, quiet: bool) -> int:
    """Print a finished (or stopped) job's counts and failures; the exit code a local seed would give."""
    described = job.description()
    counts = job.counts()
    failures = job.failures()
    state = job.state()
    if state == REFUSED:
        for worker, reason in job.refusals().items():
            print(f"tilestache-seed: worker {worker} refused job {job.id}: {reason}", file=sys.stderr)
        print(f"tilestache-seed: job {job.id} stopped; fix the workers' configuration and go on with "
              f"--resume {job.id}", file=sys.stderr)
        return EXIT_USAGE
    if state == CANCELLED:
        print(f"tilestache-seed: job {job.id} was cancelled; go on with --resume {job.id}", file=sys.stderr)
        return EXIT_FAILURES
    job.set_state(DONE)
    if not quiet or failures:
        print(f"tilestache-seed: job {job.id}: {described['tasks']} tasks, {described['tiles']} tiles: "
              f"{counts.get('tiles:rendered', 0)} rendered, {counts.get('tiles:cached', 0)} already cached, "
              f"{counts.get('tiles:failed', 0)} failed", file=sys.stderr)
    if not failures:
        return EXIT_OK
    if args.error_list:
        with open(args.error_list, "a", encoding="ascii") as file:
            file.writelines(f"{tile}\n" for failure in failures for tile in failure["tiles"])
    print(f"tilestache-seed: {len(failures)} metatiles failed"
          + (f", their tiles listed in {args.error_list}:" if args.error_list else ":"), file=sys.stderr)
    for failure in failures[:50]:
        print(f"  {failure['metatile']}: {failure['error']}", file=sys.stderr)
    if len(failures) > 50:
        print(f"  ... and {len(failures) - 50} more", file=sys.stderr)
    return EXIT_OK if args.error_list else EXIT_FAILURES


def show_status(job: Job) -> int:
    """Print a job's description, progress and failures on stdout; 1 when metatiles failed."""
    described = job.description()
    counts = job.counts()
    failures = job.failures()
    options = described.get("options", {})
    finished = sum(v for k, v in counts.items() if k.startswith("tiles:"))
    runs = counts.get("task:runs", 0)
    print(f"job {job.id}: layer {described['layer']} of {options.get('config')}, {described['state']}")
    print(f"tasks: {described['tasks']} in all, {described['position']} sent, {job.done_count()} done")
    print(f"tiles: {finished} of {described['tiles']} done: {counts.get('tiles:rendered', 0)} rendered, "
          f"{counts.get('tiles:cached', 0)} already cached, {counts.get('tiles:failed', 0)} failed")
    if runs:
        print(f"mean wait from enqueue to start: {counts.get('task:wait_ms', 0) / runs:.0f} ms over {runs} runs")
    for worker, reason in job.refusals().items():
        print(f"refused by {worker}: {reason}")
    for failure in failures:
        print(f"failed {failure['metatile']}: {failure['error']}")
    return EXIT_FAILURES if failures else EXIT_OK
