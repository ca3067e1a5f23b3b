"""The web layer: a request path and query -> status, headers, body.

It only parses and answers; tiles come from ``Layer.tile_response``.
Malformed requests stop here with a short text 4xx.
"""
from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs
from wsgiref.headers import Headers

from ModestMaps.Core import Coordinate

from .Config import DEFAULT_INDEX
from .Core import TileResult
from .Errors import BadRequest, KnownUnknown, NotFound
from .TileJSON import index_html, tilejson

log = logging.getLogger(__name__)

TILE_PATH = re.compile(r"^/(?P<layer>[^/]+)/(?P<zoom>\d{1,3})/(?P<column>\d{1,10})/(?P<row>\d{1,10})"
                       r"(?P<scale>@[23]x)?\.(?P<ext>[A-Za-z0-9]{1,12})$")
LAYER_PAGE = re.compile(r"^/(?P<layer>[^/]+)/(?P<page>preview\.html|tilejson\.json)$")
CALLBACK = re.compile(r"^[A-Za-z_$][\w$.]*$")
JSON_TYPES = ("application/json", "application/geo+json", "text/json", "application/vnd.geo+json")

MAX_PATH = 1024
MAX_QUERY = 2048
MAX_CALLBACK = 128


@functools.lru_cache(maxsize=256)
def environ_key(name: str) -> str:
    """The WSGI environ key of an HTTP request header ("if-none-match" -> "HTTP_IF_NONE_MATCH")."""
    return "HTTP_" + name.upper().replace("-", "_")


class EnvironHeaders(Mapping):
    """A WSGI environ's HTTP request headers by lower-case name, looked up only when asked."""

    def __init__(self, environ: dict) -> None:
        self.environ = environ

    def __getitem__(self, name: str) -> str:
        return self.environ[environ_key(name)]

    def __contains__(self, name) -> bool:
        return environ_key(name) in self.environ

    def get(self, name: str, default=None):
        return self.environ.get(environ_key(name), default)

    def __iter__(self):
        return (key[5:].replace("_", "-").lower() for key in self.environ if key[:5] == "HTTP_")

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class Request:
    """What the web layer needs of an HTTP request."""

    path_info: str
    query_string: str = ""
    script_name: str = ""
    headers: Mapping = field(default_factory=dict)  # lower-case names -> values


# An answer has the shape of a tile result: status, headers, body.
Response = TileResult

def text_response(status: int, message: str, extra: list | None = None) -> Response:
    """A short plain-text answer."""
    headers = Headers([("Content-Type", "text/plain; charset=utf-8")] + (extra or []))
    return Response(status, headers, (message.rstrip("\n") + "\n").encode("utf-8"))


def handle(config, request: Request) -> Response:
    """Answer one request against a configuration; never raises."""
    try:
        return route(config, request)
    except KnownUnknown as error:
        return text_response(error.status, str(error) or "Error")
    except Exception:
        log.exception("Error answering %s", request.path_info)
        return text_response(500, "Internal server error")


def route(config, request: Request) -> Response:
    """Dispatch on the path: index, layer pages, or tiles."""
    path = request.path_info or "/"
    if len(path) > MAX_PATH:
        return text_response(414, "Path too long")
    if len(request.query_string or "") > MAX_QUERY:
        return text_response(414, "Query string too long")
    if path == "/":
        mimetype, body = config.index
        if (mimetype, body) == DEFAULT_INDEX:  # no custom index: list the layers
            mimetype, body = "text/html; charset=utf-8", index_html(config, request.script_name)
        return Response(200, Headers([("Content-Type", mimetype)]), body)

    match = TILE_PATH.match(path)
    if not match:
        page = LAYER_PAGE.match(path)
        if page:
            return layer_page(config, page.group("layer"), page.group("page"), request)
        parts = path.strip("/").split("/")
        if parts and parts[0] not in config.layers:
            raise NotFound(f"Unknown layer: {parts[0][:64]}")
        raise BadRequest("Bad path: expected /{layer}/{z}/{x}/{y}.{extension}")
    name, zoom, column, row, scale, extension = match.groups()
    if name not in config.layers:  # layers may be any collection with __contains__ and __getitem__
        raise NotFound(f"Unknown layer: {name[:64]}")
    layer = config.layers[name]
    extension = extension.lower()

    if extension in layer.redirects:
        target = f"{request.script_name.rstrip('/')}/{name}/{zoom}/{column}/{row}{scale or ''}" \
                 f".{layer.redirects[extension]}"
        if request.query_string:
            target += "?" + request.query_string
        return text_response(302, "Moved", [("Location", target)])

    if scale:  # @2x: the layer's double-resolution view
        layer = layer.scaled(int(scale[1]))
    callback = jsonp_callback(request.query_string)
    coord = Coordinate(int(row), int(column), int(zoom))
    accept_gzip = callback is None and "gzip" in request.headers.get("accept-encoding", "")
    result = layer.tile_response(coord, extension, accept_gzip=accept_gzip)
    response = result
    if result.left_behind:  # over HTTP a tile the provider won't keep is "not here"
        mimetype, format = layer.getTypeByExtension(extension)
        response.status, response.body = 404, layer.empty_tile(format, mimetype)

    if callback is not None and response.headers.get("Content-Type", "").split(";")[0] in JSON_TYPES:
        response.body = b"%s(%s)" % (callback.encode("ascii"), response.body)
        response.headers["Content-Type"] = "application/javascript; charset=utf-8"
        del response.headers["ETag"]
    return conditional(response, request)


def jsonp_callback(query_string: str) -> str | None:
    """The JSONP callback named in a query string, checked to be a plain identifier path."""
    if not query_string or "callback" not in query_string:
        return None
    values = parse_qs(query_string, keep_blank_values=True).get("callback")
    if not values:
        return None
    callback = values[0]
    if len(callback) > MAX_CALLBACK or not CALLBACK.match(callback):
        raise BadRequest("Bad callback: use a JavaScript identifier")
    return callback


def conditional(response: Response, request: Request) -> Response:
    """A 304 when the client's copy (If-None-Match / If-Modified-Since) is current."""
    if_none_match = request.headers.get("if-none-match")
    if response.status != 200 or (if_none_match is None and "if-modified-since" not in request.headers):
        return response
    etag = response.headers.get("ETag")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        fresh = etag is not None and ("*" in tags or etag in tags)
    else:
        fresh = newer_or_same(response.headers.get("Last-Modified"), request.headers.get("if-modified-since"))
    if not fresh:
        return response
    kept = [(k, v) for k, v in response.headers.items()
            if k.lower() in ("etag", "last-modified", "cache-control", "expires", "vary",
                             "access-control-allow-origin")]
    return Response(304, Headers(kept), b"")


def newer_or_same(last_modified: str | None, if_modified_since: str | None) -> bool:
    """True when If-Modified-Since is at or after Last-Modified."""
    if not last_modified or not if_modified_since:
        return False
    try:
        return parsedate_to_datetime(if_modified_since) >= parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False


def layer_page(config, name: str, page: str, request: Request) -> Response:
    """A layer's HTML preview."""
    if name not in config.layers:
        raise NotFound(f"Unknown layer: {name[:64]}")
    layer = config.layers[name]
    if page == "tilejson.json":
        body = json.dumps(tilejson(layer, name, request.script_name, request.headers)).encode("utf-8")
        headers = [("Content-Type", "application/json; charset=utf-8")]
        if layer.allowed_origin:
            headers.append(("Access-Control-Allow-Origin", layer.allowed_origin))
        return Response(200, Headers(headers), body)
    from .Preview import preview_html

    low, high = layer.zoom_range()
    html = preview_html(name, layer.preview_ext, tile_size=layer.dim,
                        projection=getattr(layer.projection, "name", "spherical mercator"),
                        center=(layer.preview_lat, layer.preview_lon),
                        zoom=min(max(layer.preview_zoom, low), high),
                        min_zoom=low, max_zoom=min(high, 22))
    return Response(200, Headers([("Content-Type", "text/html; charset=utf-8")]), html.encode("utf-8"))
