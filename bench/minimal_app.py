"""The floor for any Python tile server: a WSGI app that only serves files.

It maps ``/{layer}/{z}/{x}/{y}.{ext}`` to ``{root}/{layer}/{z}/{x}/{y}.{ext}``
in a ``portable`` Disk cache and returns the file's bytes with a
Content-Type and Content-Length; anything else is a 404. ``bench/serve.sh``
runs it under the same gunicorn settings as TileStache to measure how much
TileStache adds on a cache hit.
"""
from __future__ import annotations

import os

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
                 "webp": "image/webp", "json": "application/json", "mvt": "application/vnd.mapbox-vector-tile"}
NOT_FOUND = [b"Not found\n"]


def make_app(root: str):
    """A WSGI callable serving tiles found under a portable Disk cache folder."""
    root = os.path.abspath(root)

    def app(environ: dict, start_response):
        parts = environ.get("PATH_INFO", "").split("/")
        ext = parts[-1].rpartition(".")[2]
        if len(parts) != 5 or ".." in parts or ext not in CONTENT_TYPES:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return NOT_FOUND
        try:
            with open(os.path.join(root, *parts[1:]), "rb") as file:
                body = file.read()
        except OSError:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return NOT_FOUND
        start_response("200 OK", [("Content-Type", CONTENT_TYPES[ext]), ("Content-Length", str(len(body)))])
        return [body]

    return app
