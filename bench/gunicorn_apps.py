"""Gunicorn entry points for bench/serve.sh (run with ``--pythonpath bench``).

``gunicorn_apps:tilestache()`` serves the TileStache config named by the
``BENCH_CONFIG`` environment variable; ``gunicorn_apps:minimal()`` serves the
portable Disk cache folder named by ``BENCH_CACHE`` with the minimal app.
"""
from __future__ import annotations

import os

import TileStache
from minimal_app import make_app


def tilestache() -> TileStache.WSGITileServer:
    """TileStache's WSGI app over the benchmark configuration."""
    return TileStache.WSGITileServer(os.environ["BENCH_CONFIG"])


def minimal():
    """The minimal file-serving WSGI app over the benchmark cache folder."""
    return make_app(os.environ["BENCH_CACHE"])
