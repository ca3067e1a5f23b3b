"""tilestache-worker: a Celery worker that renders the metatiles of tilestache-seed --cluster jobs."""
from __future__ import annotations

import argparse
import os
import sys

from .common import UsageError, add_include_path_option, apply_include_path, load_config, run


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-worker; options it does not know go to ``celery worker``."""
    p = argparse.ArgumentParser(
        prog="tilestache-worker",
        usage="%(prog)s -c CONFIG --cluster redis://HOST:PORT/DB [--concurrency N] [celery worker options]",
        description="Run a Celery worker (prefork) for TileStache seeding jobs. Each worker process builds the "
                    "configuration once and keeps its layers. Other options (e.g. -E for Flower, "
                    "--max-memory-per-child KIB, --loglevel) are passed on to celery worker.")
    p.add_argument("-c", "--config", required=True, help="TileStache configuration file (the jobs' own)")
    p.add_argument("--cluster", required=True, metavar="redis://HOST:PORT/DB", help="the Celery broker")
    p.add_argument("--concurrency", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: number of cores, %(default)s)")
    p.add_argument("-n", "--hostname", help="worker name (default: celery@HOST); unique per worker")
    add_include_path_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-worker; returns the exit code."""
    return run("tilestache-worker", _main, argv)


def _main(argv) -> int:
    args, celery_options = parser().parse_known_args(argv)
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if not args.cluster.startswith(("redis://", "rediss://")):
        raise UsageError(f"--cluster {args.cluster!r} is not a redis:// or rediss:// URL")
    apply_include_path(args.include_path)
    load_config(args.config)  # a bad configuration fails here, before any process starts
    from ..ClusterJob import connect

    try:
        connect(args.cluster)
    except Exception as error:
        raise UsageError(f"cannot reach the cluster at {args.cluster}: {error}") from None
    os.environ["TILESTACHE_CONFIG"] = os.path.abspath(args.config)
    os.environ["TILESTACHE_CLUSTER"] = args.cluster
    from ..Cluster import app, use_broker

    use_broker(args.cluster)
    command = ["worker", "--pool", "prefork", "--concurrency", str(args.concurrency), "--loglevel", "INFO",
               "--without-gossip", "--without-mingle", *celery_options]
    if args.hostname:
        command += ["--hostname", args.hostname]
    app.worker_main(command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
