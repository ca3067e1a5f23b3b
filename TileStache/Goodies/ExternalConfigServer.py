"""ExternalConfigServer: a tile server whose cache and layers come from a configuration web service.

Use it in place of WSGITileServer, for example under gunicorn::

    gunicorn --bind localhost:8888 "TileStache.Goodies.ExternalConfigServer:WSGIServer(url)"

The service at ``url`` answers two kinds of GET:

- ``{url}/cache``: the JSON of the configuration's cache (as the ``cache``
  key of a config file), read once at start-up;
- ``{url}/layer/{name}``: the JSON of one layer (as a value under
  ``layers``), read the first time the layer is asked for.

With ``cache_responses`` (the default) each layer is built once and reused,
and a layer the service does not know (404 or 410) or cannot describe (bad
JSON, a bad key) is remembered as unknown. Without it every request asks the
service again. Relative paths in layers resolve against ``/tmp/stache``.
A service that cannot be reached answers 502 (504 after ``timeout``
seconds), and nothing about the layer is remembered.
"""
from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator, Mapping

from TileStache import WSGITileServer
from TileStache.Config import Configuration, build_cache, build_layer, validate_layer
from TileStache.Core import Layer
from TileStache.Errors import ConfigError, NotFound, UpstreamError
from TileStache.Providers import fetch_upstream

log = logging.getLogger(__name__)

DIRPATH = "/tmp/stache"
UNKNOWN_STATUSES = (404, 410)  # the service says "no such layer"; any other failure is its fault


def fetch_json(url: str, timeout: float):
    """The JSON document at a URL; None when the service answers 404/410 or with something not JSON."""
    try:
        body, _ = fetch_upstream(url, timeout, source="The configuration service")
    except UpstreamError as error:
        if error.upstream_status in UNKNOWN_STATUSES:
            return None
        raise
    try:
        return json.loads(body)
    except ValueError:
        log.error("Invalid JSON from %s", url)
        return None


class DynamicLayers(Mapping):
    """The layers of an external configuration, fetched from the service as they are asked for.

    Iterating gives the layers built so far.
    """

    def __init__(self, config: Configuration, url_root: str, cache_responses: bool, timeout: float) -> None:
        self.config = config
        self.url_root = url_root.rstrip("/")
        self.cache_responses = cache_responses
        self.timeout = timeout
        self.seen_layers: dict[str, Layer] = {}
        self.lookup_failures: set[str] = set()
        self._last = threading.local()  # without caching: the layer a __contains__ just built

    def _lookup(self, name: str) -> Layer | None:
        """The layer the service describes under a name, or None if it knows none."""
        if self.cache_responses:
            if name in self.seen_layers:
                return self.seen_layers[name]
            if name in self.lookup_failures:
                return None
        spec = fetch_json(f"{self.url_root}/layer/{urllib.parse.quote(name, safe='')}", self.timeout)
        layer = None
        if isinstance(spec, dict):
            try:
                layer = build_layer(self.config, name, spec)
                validate_layer(layer, self.config)
            except ConfigError as error:
                log.error("The configuration service's layer is unusable: %s", error)
                layer = None
        elif spec is not None:
            log.error("The configuration service's layer %r is not a JSON object", name)
        if self.cache_responses:
            if layer is None:
                self.lookup_failures.add(name)
            else:
                self.seen_layers[name] = layer
        return layer

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        layer = self._lookup(name)
        if not self.cache_responses:
            self._last.pair = (name, layer)
        return layer is not None

    def __getitem__(self, name: str) -> Layer:
        pair = getattr(self._last, "pair", None)
        self._last.pair = None
        layer = pair[1] if pair is not None and pair[0] == name else self._lookup(name)
        if layer is None:
            raise NotFound(f"Unknown layer: {name[:64]}")
        return layer

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.seen_layers))

    def __len__(self) -> int:
        return len(self.seen_layers)


class WSGIServer(WSGITileServer):
    """A tile server on a configuration fetched from ``url_root`` (see the module's docstring).

    ``debug_level`` sets the root logger's level, as in the original;
    ``timeout`` (seconds) bounds each request to the service.
    """

    def __init__(self, url_root: str, cache_responses: bool = True, debug_level: str = "DEBUG",
                 timeout: float = 10.0) -> None:
        logging.basicConfig(level=debug_level)
        try:
            cache_spec = fetch_json(url_root.rstrip("/") + "/cache", timeout)
        except UpstreamError as error:
            raise ConfigError(f"cannot read {url_root}/cache: {error}", key="cache") from None
        if not isinstance(cache_spec, dict):
            raise ConfigError(f"{url_root}/cache gave no cache configuration (a JSON object)", key="cache")
        config = Configuration(build_cache(cache_spec, DIRPATH), DIRPATH)
        config.layers = DynamicLayers(config, url_root, bool(cache_responses), timeout)
        super().__init__(config)
