"""gunicorn settings for TileStache with "metrics": true (see docs/deployment.md).

    PROMETHEUS_MULTIPROC_DIR=/run/tilestache/metrics \\
        gunicorn -c "$(python -c 'import TileStache, os; print(os.path.dirname(TileStache.__file__))')/gunicorn.conf.py" \\
        --workers 4 --bind 0.0.0.0:8080 "TileStache:WSGITileServer('/etc/tilestache.cfg')"

Every worker writes its counts to files in ``PROMETHEUS_MULTIPROC_DIR``, and a
scrape of ``/metrics`` on any worker sums the files of all of them, the dead
ones' included, so counters never go back. The folder is emptied when the
server starts (not on reloads, which keep counting); when the variable is not
set, a private folder is made for this server. Pass your other settings
(workers, bind, timeout) on the command line or in a config of your own that
imports these hooks.
"""
import glob
import os
import tempfile

# Before any worker (or a preloaded app) imports prometheus_client, which reads this once.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tilestache-metrics-")


def on_starting(server):
    """Empty the metrics folder (making it if needed): counts start from zero with the server."""
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in glob.glob(os.path.join(folder, "*.db")):
        os.remove(name)


def child_exit(server, worker):
    """Tell prometheus_client a worker is gone (its counts stay; its live gauges go)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
