"""The web layer: a request -> status, headers, body.

A request is a WSGI environ: PATH_INFO, QUERY_STRING, SCRIPT_NAME, and its
headers as HTTP_* keys (``request_environ`` makes one from a path). This
module only parses and answers; tiles come from ``Layer.tile_response``.
Malformed requests stop here with a short text 4xx.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs

from ModestMaps.Core import Coordinate
from ModestMaps.Geo import Location

from .Config import DEFAULT_INDEX
from .Core import TileResult
from .Errors import BadRequest, KnownUnknown, NotFound
from .TileJSON import VECTOR_EXTENSIONS, index_html, tilejson, vector_layers

log = logging.getLogger(__name__)

TILE_PATH = re.compile(r"^/(?P<layer>[^/]+)/(?P<zoom>\d{1,3})/(?P<column>-?\d{1,10})/(?P<row>-?\d{1,10})"
                       r"(?P<scale>@[23]x)?\.(?P<ext>[A-Za-z0-9]{1,12})$")
# "/layer/" (nothing after the slash) is the layer's preview page, as in the original.
LAYER_PAGE = re.compile(r"^/(?P<layer>[^/]+)/(?P<page>preview\.html|tilejson\.json|maplibre-gl\.(js|css)|)$")
# A JavaScript identifier path, matched over the whole callback (fullmatch), ASCII only.
CALLBACK = re.compile(r"[A-Za-z_$][\w$.]*", re.ASCII)
JSON_TYPES = ("application/json", "application/geo+json", "text/json", "application/vnd.geo+json")

MAX_PATH = 1024
MAX_QUERY = 2048
MAX_CALLBACK = 128


# An answer has the shape of a tile result: status, headers, body.
Response = TileResult

def text_response(status: int, message: str, extra: list | None = None) -> Response:
    """A short plain-text answer."""
    fields = [("Content-Type", "text/plain; charset=utf-8")] + (extra or [])
    return Response(status, fields, (message.rstrip("\n") + "\n").encode("utf-8"))


def request_environ(path_info: str, query_string: str = "", script_name: str = "") -> dict:
    """The WSGI environ of a header-less GET request for a path."""
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path_info, "QUERY_STRING": query_string,
            "SCRIPT_NAME": script_name}


def request_path(environ: Mapping) -> str:
    """PATH_INFO with its leading "/" (CGI and mod_wsgi set-ups may pass "layer/0/0/0.png")."""
    path = environ.get("PATH_INFO") or "/"
    return path if path.startswith("/") else "/" + path


def handle(config, environ: Mapping, router: Callable[..., Response] | None = None) -> Response:
    """Answer one request (a WSGI environ) against a configuration; never raises.

    ``router`` (config, environ) -> Response answers the request; by default
    the tile server's ``route``. Errors it raises become short text answers.
    """
    try:
        response = (router or route)(config, environ)
    except KnownUnknown as error:
        response = text_response(error.status, str(error) or "Error")
    except Exception:
        log.exception("Error answering %s", environ.get("PATH_INFO"))
        response = text_response(500, "Internal server error")
    metrics = getattr(config, "metrics", None)
    if metrics is not None:  # probes and scrapes are not traffic: not counted
        path = request_path(environ)
        if path != "/health" and path != "/metrics":
            first = path[1:].split("/", 1)[0]
            metrics.request(first if first in config.layers else "", response.status)
    return response


def route(config, environ: Mapping) -> Response:
    """Dispatch on the path: index, layer pages, or tiles."""
    path = request_path(environ)
    query_string = environ.get("QUERY_STRING") or ""
    if len(path) > MAX_PATH:
        return text_response(414, "Path too long")
    if len(query_string) > MAX_QUERY:
        return text_response(414, "Query string too long")
    if path == "/":
        mimetype, body = config.index
        if (mimetype, body) == DEFAULT_INDEX:  # no custom index: list the layers
            mimetype, body = "text/html; charset=utf-8", index_html(config, environ.get("SCRIPT_NAME", ""))
        return Response(200, [("Content-Type", mimetype)], body)

    if path == "/health" or path == "/metrics":
        return service_page(config, path, query_string)
    if path == "/WMTSCapabilities.xml":
        from .WMTS import capabilities

        return Response(200, [("Content-Type", "application/xml; charset=utf-8")], capabilities(config, environ))
    match = TILE_PATH.match(path)
    if not match:
        page = LAYER_PAGE.match(path)
        if page:
            return layer_page(config, page.group("layer"), page.group("page"), environ)
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
        target = f"{environ.get('SCRIPT_NAME', '').rstrip('/')}/{name}/{zoom}/{column}/{row}{scale or ''}" \
                 f".{layer.redirects[extension]}"
        if query_string:
            target += "?" + query_string
        return text_response(302, "Moved", [("Location", target)])

    if scale:  # @2x: the layer's double-resolution view
        layer = layer.scaled(int(scale[1]))
    callback = jsonp_callback(query_string) if query_string else None
    coord = Coordinate(int(row), int(column), int(zoom))
    accept_gzip = callback is None and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
    response = layer.tile_response(coord, extension, accept_gzip=accept_gzip)
    if response.left_behind:  # over HTTP a tile the provider won't keep is "not here"
        mimetype, format = layer.getTypeByExtension(extension)
        response.status, response.body = 404, layer.empty_tile(format, mimetype)

    if callback is not None:
        headers = response.headers
        if headers.get("Content-Type", "").split(";")[0] in JSON_TYPES:
            response.body = b"%s(%s)" % (callback.encode("ascii"), response.body)
            headers["Content-Type"] = "application/javascript; charset=utf-8"
            del headers["ETag"]
    if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:
        return conditional(response, environ)
    return response


def service_page(config, path: str, query_string: str) -> Response:
    """/health ("ok"; with ?ready=1 503 unless the cache answers) or /metrics (404 unless "metrics" is on)."""
    if path == "/health":
        ready = parse_qs(query_string).get("ready", [""])[0].lower() in ("1", "true", "yes")
        if ready:
            from .Metrics import cache_ready

            if not cache_ready(config):
                return text_response(503, "cache unavailable", [("Cache-Control", "no-store")])
        return text_response(200, "ok", [("Cache-Control", "no-store")])
    metrics = getattr(config, "metrics", None)
    if metrics is None:
        raise NotFound('Metrics are off (set "metrics": true in the configuration)')
    content_type, body = metrics.exposition()
    return Response(200, [("Content-Type", content_type), ("Cache-Control", "no-store")], body)


def preview_grid(projection) -> dict | None:
    """The preview's grid for a projection with its own resolutions (Proj4Projection), else None."""
    resolutions = getattr(projection, "resolutions", None)
    if resolutions is None:
        return None
    t = projection.transformation
    return {"resolutions": list(resolutions), "transformation": [t.ax, t.bx, t.cx, t.ay, t.by, t.cy]}


def jsonp_callback(query_string: str) -> str | None:
    """The JSONP callback named in a query string, checked to be a plain identifier path."""
    if not query_string or "callback" not in query_string:
        return None
    values = parse_qs(query_string, keep_blank_values=True).get("callback")
    if not values:
        return None
    callback = values[0]
    if len(callback) > MAX_CALLBACK or not CALLBACK.fullmatch(callback):
        raise BadRequest("Bad callback: use a JavaScript identifier")
    return callback


def conditional(response: Response, environ: Mapping) -> Response:
    """A 304 when the client's copy (If-None-Match / If-Modified-Since) is current."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if response.status != 200 or (if_none_match is None and if_modified_since is None):
        return response
    headers = response.headers
    etag = headers.get("ETag")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        fresh = etag is not None and ("*" in tags or etag in tags)
    else:
        fresh = newer_or_same(headers.get("Last-Modified"), if_modified_since)
    if not fresh:
        return response
    kept = [(k, v) for k, v in response.fields
            if k.lower() in ("etag", "last-modified", "cache-control", "expires", "vary",
                             "access-control-allow-origin")]
    return Response(304, kept, b"")


def newer_or_same(last_modified: str | None, if_modified_since: str | None) -> bool:
    """True when If-Modified-Since is at or after Last-Modified."""
    if not last_modified or not if_modified_since:
        return False
    try:
        return parsedate_to_datetime(if_modified_since) >= parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False


def layer_page(config, name: str, page: str, environ: Mapping) -> Response:
    """A layer's HTML preview."""
    if name not in config.layers:
        raise NotFound(f"Unknown layer: {name[:64]}")
    layer = config.layers[name]
    if page == "tilejson.json":
        body = json.dumps(tilejson(layer, name, environ.get("SCRIPT_NAME", ""), environ)).encode("utf-8")
        fields = [("Content-Type", "application/json; charset=utf-8")]
        if layer.allowed_origin:
            fields.append(("Access-Control-Allow-Origin", layer.allowed_origin))
        return Response(200, fields, body)
    from .Preview import STATIC_ASSETS, preview_html, static_asset, vector_preview_html

    if page in STATIC_ASSETS:  # what the vector preview loads beside itself
        mimetype, body = static_asset(page)
        return Response(200, [("Content-Type", mimetype), ("Cache-Control", "public, max-age=86400")], body)
    low, high = layer.zoom_range()
    if layer.preview_ext.lower() in VECTOR_EXTENSIONS:
        html = vector_preview_html(name, layer.preview_ext, [v["id"] for v in vector_layers(layer, low, high)],
                                   center=(layer.preview_lat, layer.preview_lon),
                                   zoom=min(max(layer.preview_zoom, low), high), min_zoom=low, max_zoom=min(high, 22))
        return Response(200, [("Content-Type", "text/html; charset=utf-8")], html.encode("utf-8"))
    center, grid = (layer.preview_lat, layer.preview_lon), preview_grid(layer.projection)
    if grid is not None:  # the page works in the grid's projected units
        point = layer.projection.locationProj(Location(layer.preview_lat, layer.preview_lon))
        center = (point.y, point.x)
    html = preview_html(name, layer.preview_ext, tile_size=layer.dim,
                        projection=getattr(layer.projection, "name", "spherical mercator"),
                        center=center, zoom=min(max(layer.preview_zoom, low), high),
                        min_zoom=low, max_zoom=min(high, 22), grid=grid)
    return Response(200, [("Content-Type", "text/html; charset=utf-8")], html.encode("utf-8"))
