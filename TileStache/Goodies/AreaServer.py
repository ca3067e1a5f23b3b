"""AreaServer: images of any size and box from layers whose provider has renderArea(), WMS-style.

No tiles and no cache: each request is one ``renderArea`` call. Run it as a
WSGI application, for example under gunicorn::

    gunicorn --bind localhost:8888 "TileStache.Goodies.AreaServer:WSGIServer('tilestache.cfg')"

A request names the layer in its path and the area in six query parameters,
all required (others are ignored); the box is in the layer's projection::

    http://localhost:8888/layer-name?width=600&height=600&xmin=-100&ymin=-100&xmax=100&ymax=100

These URLs fit the URL Template provider, so one TileStache can tile another's
areas. The answer is a PNG with the layer's ``allowed origin`` and
``maximum cache age`` headers. ``/health`` and ``/metrics`` work as on the
tile server.
"""
from __future__ import annotations

import io
import math
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

from TileStache import WSGITileServer, Web
from TileStache.Core import freshness_fields
from TileStache.Errors import BadRequest, NotFound

AREA_PARAMETERS = ("width", "height", "xmin", "ymin", "xmax", "ymax")
MAX_SIDE = 8192  # pixels; a bigger image is a 400, not an hour of rendering


class WSGIServer(WSGITileServer):
    """A WSGI application answering area requests against a configuration (see the module's docstring).

    Takes the tile server's arguments: a config path, dict or Configuration,
    and ``autoreload``.
    """

    def answer(self, config, environ: dict) -> Web.Response:
        """The PNG of the requested area, or a short text error."""
        return Web.handle(config, environ, area_route)


def area_route(config, environ: Mapping) -> Web.Response:
    """Answer one area request: /health, /metrics, or /{layer}?width=..&ymax=.."""
    path = Web.request_path(environ)
    query_string = environ.get("QUERY_STRING") or ""
    if path == "/health" or path == "/metrics":
        return Web.service_page(config, path, query_string)
    if len(query_string) > Web.MAX_QUERY or len(path) > Web.MAX_PATH:
        return Web.text_response(414, "Request too long")

    query = dict(parse_qsl(query_string))
    for name in AREA_PARAMETERS:
        if name not in query:
            raise BadRequest(f'Missing "{name}" parameter')
    width, height = (whole_pixels(query, name) for name in ("width", "height"))
    xmin, ymin, xmax, ymax = (finite_number(query, name) for name in ("xmin", "ymin", "xmax", "ymax"))
    if not (xmin < xmax and ymin < ymax):
        raise BadRequest("The box needs xmin < xmax and ymin < ymax")

    name = path.strip("/")
    if not name or name not in config.layers:
        raise NotFound(f"Unknown layer: {name[:64]}")
    layer = config.layers[name]
    provider = layer.provider
    if not hasattr(provider, "renderArea"):
        raise BadRequest(f'Layer "{name}" has a provider without renderArea(): it only makes tiles')

    image = provider.renderArea(width, height, layer.projection.srs, xmin, ymin, xmax, ymax, None)
    output = io.BytesIO()
    image.save(output, format="PNG")

    fields = [("Content-Type", "image/png")]
    if layer.allowed_origin:
        fields.append(("Access-Control-Allow-Origin", layer.allowed_origin))
    if layer.max_cache_age is not None:
        fields += freshness_fields(int(layer.max_cache_age), int(time.time()))
    return Web.Response(200, fields, output.getvalue())


def whole_pixels(query: dict, name: str) -> int:
    """A width or height parameter as pixels from 1 to MAX_SIDE."""
    try:
        value = int(query[name])
    except ValueError:
        raise BadRequest(f'"{name}" must be a whole number of pixels') from None
    if not 1 <= value <= MAX_SIDE:
        raise BadRequest(f'"{name}" must be from 1 to {MAX_SIDE} pixels')
    return value


def finite_number(query: dict, name: str) -> float:
    """A box parameter as a finite number."""
    try:
        value = float(query[name])
    except ValueError:
        raise BadRequest(f'"{name}" must be a number') from None
    if not math.isfinite(value):
        raise BadRequest(f'"{name}" must be a finite number')
    return value
