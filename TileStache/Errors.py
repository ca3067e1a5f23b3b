"""Every exception TileStache raises on purpose, in one place.

Each error that reaches the web layer carries the HTTP status it maps to, and
a message that is safe to show a client (no paths, no tracebacks).
"""


class KnownUnknown(Exception):
    """An expected failure whose message may be shown to the client."""

    status = 500


class BadRequest(KnownUnknown):
    """The request itself is malformed: bad coordinate, extension, callback."""

    status = 400


class NotFound(KnownUnknown):
    """Nothing lives at this address: unknown layer, outside bounds or zooms."""

    status = 404


class UpstreamError(KnownUnknown):
    """A remote tile source failed; nothing is cached."""

    status = 502
    upstream_status: int | None = None  # the remote's own HTTP status, when it answered one


class UpstreamTimeout(UpstreamError):
    """A remote tile source did not answer in time; nothing is cached."""

    status = 504


class ServiceUnavailable(KnownUnknown):
    """A backing service (a database, say) is down right now."""

    status = 503


class NoTileLeftBehind(Exception):
    """Raised by a provider to hand back a tile that must not be cached."""

    def __init__(self, tile: object) -> None:
        super().__init__("NoTileLeftBehind")
        self.tile = tile


class ConfigError(ValueError):
    """A configuration problem, found at load time, naming layer and key."""

    def __init__(self, message: str, layer: str | None = None, key: str | None = None) -> None:
        where = []
        if layer is not None:
            where.append(f"layer {layer!r}")
        if key is not None:
            where.append(f"key {key!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.message = message
        self.layer = layer
        self.key = key
