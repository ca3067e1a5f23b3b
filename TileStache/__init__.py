"""TileStache: a stylish alternative for caching your map tiles.

Public entry points: ``parseConfig``, ``getTile``, ``requestHandler``,
``requestHandler2``, ``WSGITileServer`` and ``cgiHandler``.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from http import HTTPStatus
from wsgiref.headers import Headers

from . import Config, Core, Web  # noqa: F401  (public modules)
from .Errors import ConfigError, KnownUnknown  # noqa: F401

__version__ = "2.0.0"

log = logging.getLogger(__name__)


def parseConfig(configHandle) -> Config.Configuration:
    """A Configuration from a dict, a file path, or an http(s) URL of a JSON config."""
    if isinstance(configHandle, Config.Configuration):
        return configHandle
    if isinstance(configHandle, dict):
        return Config.buildConfiguration(configHandle, os.getcwd())
    config_dict, dirpath = Config.read_config_file(os.fspath(configHandle))
    return Config.buildConfiguration(config_dict, dirpath)


def getTile(layer: Core.Layer, coord, extension: str, ignore_cached: bool = False) -> tuple[str, bytes]:
    """(MIME type, bytes) of one tile of a layer, from its cache or freshly rendered."""
    status, headers, body = layer.getTileResponse(coord, extension, ignore_cached)
    return headers.get("Content-Type"), body


def requestHandler2(config_hint, path_info: str, query_string: str | None = None,
                    script_name: str = "") -> tuple[int, Headers, bytes]:
    """(status, headers, body) for a request path against a config (object, dict or path)."""
    config = parseConfig(config_hint)
    response = Web.handle(config, Web.request_environ(path_info, query_string or "", script_name))
    return response.status, Headers(response.fields), response.body


def requestHandler(config_hint, path_info: str, query_string: str | None = None,
                   script_name: str = "") -> tuple[str, bytes]:
    """(MIME type, body) for a request path against a config (object, dict or path)."""
    status, headers, body = requestHandler2(config_hint, path_info, query_string, script_name)
    return headers.get("Content-Type"), body


STATUS_LINES = {code: f"{code} {HTTPStatus(code).phrase}" for code in HTTPStatus}


class WSGITileServer:
    """A WSGI application serving a configuration's layers.

    ``config`` is a Configuration, a dict, or a path to a JSON file; with
    ``autoreload`` a config file is re-read whenever it changes.
    """

    def __init__(self, config, autoreload: bool = False) -> None:
        self.autoreload = bool(autoreload) and isinstance(config, (str, os.PathLike))
        self.config_path = os.fspath(config) if isinstance(config, (str, os.PathLike)) else None
        self.config = parseConfig(config)
        self._mtime = self._config_mtime()
        self._reload_lock = threading.Lock()

    def _config_mtime(self) -> float | None:
        try:
            return os.stat(self.config_path).st_mtime if self.config_path else None
        except OSError:
            return None

    def _reloaded_config(self) -> Config.Configuration:
        """The configuration, re-read first when its file changed (used with autoreload)."""
        mtime = self._config_mtime()
        if mtime != self._mtime:
            with self._reload_lock:
                if mtime != self._mtime:
                    try:
                        self.config = parseConfig(self.config_path)
                    except ConfigError:
                        log.exception("Keeping the previous configuration")
                    self._mtime = mtime
        return self.config

    def answer(self, config: Config.Configuration, environ: dict) -> Web.Response:
        """The response to one GET or HEAD request (servers built on this one replace it)."""
        return Web.handle(config, environ)

    def __call__(self, environ: dict, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET" or method == "HEAD":
            response = self.answer(self._reloaded_config() if self.autoreload else self.config, environ)
        else:
            response = Web.text_response(405, "Only GET and HEAD", [("Allow", "GET, HEAD")])
        fields = response.fields  # this response's own list, never sent before: append, don't replace
        fields.append(("Content-Length", str(len(response.body))))
        start_response(STATUS_LINES.get(response.status) or f"{response.status} Unknown", fields)
        return [] if method == "HEAD" else [response.body]


def cgiHandler(environ: dict, config="./tilestache.cfg", debug: bool = False) -> None:
    """Answer one CGI request on stdout."""
    from wsgiref.handlers import BaseCGIHandler

    if debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    handler = BaseCGIHandler(sys.stdin.buffer, sys.stdout.buffer, sys.stderr, dict(environ),
                             multithread=False, multiprocess=True)
    handler.run(WSGITileServer(config))
