"""TileJSON 3.0.0 documents for layers, and the default index page listing them.

``/{layer}/tilejson.json`` describes a layer to map clients: its tile URL
template (absolute, as the client reached us: ``X-Forwarded-Proto`` /
``X-Forwarded-Host`` from a proxy, else ``Host``, plus the WSGI
``SCRIPT_NAME``), zoom range, bounds, centre and attribution.
Spec: https://github.com/mapbox/tilejson-spec/tree/master/3.0.0
"""
from __future__ import annotations

import html
import re
from collections.abc import Mapping
from urllib.parse import quote

from ModestMaps.Core import Coordinate

# TileJSON's own limit on zoom levels.
TILEJSON_MAX_ZOOM = 30
VECTOR_EXTENSIONS = {"mvt", "pbf"}
WORLD = [-180.0, -85.0511287798066, 180.0, 85.0511287798066]


HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def _first(value: str | None) -> str | None:
    """The first of a comma-separated proxy header's values (the client-facing one)."""
    if not value:
        return None
    return value.split(",")[0].strip() or None


def _host(value: str | None) -> str | None:
    """A host[:port] from a header, or None when it is missing or malformed."""
    host = _first(value)
    return host if host is not None and HOST.match(host) else None


def base_url(script_name: str, environ: Mapping) -> str:
    """Where the client reached this server: scheme://host/script_name (no trailing slash).

    Headers come from a WSGI environ (HTTP_HOST, HTTP_X_FORWARDED_HOST, HTTP_X_FORWARDED_PROTO).
    Without any host header the URL is path-only ("/script_name"), still usable from the same origin.
    """
    host = _host(environ.get("HTTP_X_FORWARDED_HOST")) or _host(environ.get("HTTP_HOST"))
    prefix = (script_name or "").rstrip("/")
    if host is None:
        return prefix
    scheme = (_first(environ.get("HTTP_X_FORWARDED_PROTO")) or "http").lower()
    if scheme not in ("http", "https"):
        scheme = "http"
    return f"{scheme}://{host}{prefix}"


def layer_bounds(layer) -> list[float]:
    """[west, south, east, north] in degrees covering a layer's bounds (the world without any)."""
    bounds = getattr(layer, "bounds", None)
    if bounds is None:
        return list(WORLD)
    members = getattr(bounds, "bounds", [bounds])
    boxes = []
    for member in members:  # the four corners of its tile range, for grids in any projection
        ul = member.upper_left_high
        lr = member.lower_right_low.zoomTo(ul.zoom)
        corners = [layer.projection.coordinateLocation(Coordinate(row, column, ul.zoom))
                   for row in (ul.row, lr.row) for column in (ul.column, lr.column)]
        boxes.append((min(c.lon for c in corners), min(c.lat for c in corners),
                      max(c.lon for c in corners), max(c.lat for c in corners)))
    box = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    return [max(box[0], WORLD[0]), max(box[1], WORLD[1]), min(box[2], WORLD[2]), min(box[3], WORLD[3])]


def vector_layers(layer, minzoom: int = 0, maxzoom: int = TILEJSON_MAX_ZOOM) -> list[dict]:
    """A vector layer's source-layers (id, fields, minzoom, maxzoom), as its provider describes them,
    zooms clipped to the layer's; [] from a provider that does not say."""
    describe = getattr(layer.provider, "vector_layers", None)
    described = []
    for each in describe() if callable(describe) else []:
        low = min(max(int(each.get("minzoom", minzoom)), minzoom), maxzoom)
        high = min(max(int(each.get("maxzoom", maxzoom)), low), maxzoom)
        fields = each.get("fields") if isinstance(each.get("fields"), dict) else {}
        described.append({**each, "id": str(each["id"]), "fields": {str(k): str(v) for k, v in fields.items()},
                          "minzoom": low, "maxzoom": high})
    return described


def tilejson(layer, name: str, script_name: str = "", environ: Mapping | None = None) -> dict:
    """The TileJSON 3.0.0 document of a layer, its URLs as the request (a WSGI environ) reached us."""
    low, high = layer.zoom_range()
    minzoom, maxzoom = max(0, low), min(high, TILEJSON_MAX_ZOOM)
    extension = layer.preview_ext.lower()
    url = f"{base_url(script_name, environ or {})}/{quote(name)}/{{z}}/{{x}}/{{y}}.{extension}"
    bounds = layer_bounds(layer)
    lat = min(max(layer.preview_lat, bounds[1]), bounds[3])
    lon = min(max(layer.preview_lon, bounds[0]), bounds[2])
    document = {
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": bounds,
        "center": [lon, lat, min(max(layer.preview_zoom, minzoom), maxzoom)],
    }
    if getattr(layer, "attribution", None):
        document["attribution"] = layer.attribution
    if extension in VECTOR_EXTENSIONS:
        document["vector_layers"] = vector_layers(layer, minzoom, maxzoom)
    if layer.dim != 256:
        document["tile_size"] = layer.dim  # not in the spec; MapLibre reads it as tileSize
    return document


def index_html(config, script_name: str = "") -> bytes:
    """The default index page: a greeting and each layer with links to its preview and TileJSON."""
    prefix = html.escape((script_name or "").rstrip("/"), quote=True)
    rows = []
    for name in sorted(config.layers.keys()):
        link = f"{prefix}/{html.escape(quote(name), quote=True)}"
        label = html.escape(name)
        rows.append(f'<li><strong>{label}</strong>: <a href="{link}/preview.html">preview</a>, '
                    f'<a href="{link}/tilejson.json">TileJSON</a></li>')
    listing = "\n".join(rows) or "<li>No layers are configured.</li>"
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>TileStache</title></head>\n"
            f"<body>\n<p>TileStache bellows hello.</p>\n<ul>\n{listing}\n</ul>\n</body>\n</html>\n")
    return page.encode("utf-8")

