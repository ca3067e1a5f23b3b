"""Helpers shared by the networked cache backends (Memcache, Redis, S3).

Two jobs only: build the safe pieces of a cache key (a validated layer name
and integer z/x/y), and track a backend's outages so that a cache server
going down costs one log line per failure burst and no waiting: while a
backend is marked down the caches skip it and tiles are simply rendered.
"""
from __future__ import annotations

import logging
import re
import threading
import time

from .Config import LAYER_NAME
from .Errors import ConfigError

log = logging.getLogger(__name__)

# The rule Config applies to layer names, checked again here so caches never trust a name blindly.
SAFE_NAME = LAYER_NAME
# Key prefixes and S3 paths: printable, no spaces, no control characters.
SAFE_PREFIX = re.compile(r"^[A-Za-z0-9_.\-/:]*$")

# Seconds a failed backend is left alone before it is tried again.
RETRY_AFTER = 5.0
# Socket timeout (seconds) every networked backend uses.
SOCKET_TIMEOUT = 1.0


def tile_parts(layer, coord) -> tuple[str, int, int, int]:
    """(layer name, zoom, column, row), checked: a safe layer name and plain integers."""
    name = layer.name()
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise ValueError(f"unsafe layer name for a cache key: {name!r}")
    z, x, y = coord.zoom, coord.column, coord.row
    if any(int(v) != v for v in (z, x, y)):
        raise ValueError("tile coordinates must be integers")
    return name, int(z), int(x), int(y)


def check_prefix(value: str, key: str) -> str:
    """A key prefix (or S3 path) from the config, refused when it could corrupt keys."""
    value = "" if value is None else str(value)
    if not SAFE_PREFIX.match(value):
        raise ConfigError(f"{value!r} may only use letters, digits and _ . - / :", key=key)
    return value


class Outage:
    """The health of one backend: skip it for a while after a failure, log once per burst."""

    def __init__(self, name: str, retry_after: float = RETRY_AFTER) -> None:
        self.name = name
        self.retry_after = float(retry_after)
        self._until = 0.0
        self._down = False
        self._lock = threading.Lock()

    def available(self) -> bool:
        """False while the backend is being left alone after a failure."""
        return time.monotonic() >= self._until

    def failed(self, action: str, error: BaseException) -> None:
        """Note a failure; the first of a burst is logged."""
        with self._lock:
            self._until = time.monotonic() + self.retry_after
            first, self._down = not self._down, True
        if first:
            log.warning("%s unavailable (%s failed: %s); serving tiles without it, "
                        "retrying every %.0f s", self.name, action, error or type(error).__name__,
                        self.retry_after)

    def succeeded(self) -> None:
        """Note a success; the end of a burst is logged."""
        if self._down:
            with self._lock:
                back, self._down = self._down, False
            if back:
                log.warning("%s is back", self.name)
