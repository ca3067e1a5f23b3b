"""The ``/{layer}/preview.html`` page: a slippy map of one layer.

The page is a single standalone HTML document. Leaflet (BSD-2, vendored in
``TileStache/static/leaflet/`` with its licence) is inlined into it, so the
preview works without any network access beyond the tile server itself.

Tiles are fetched from the *relative* URL template ``{z}/{x}/{y}.{ext}``:
the page lives at ``/{layer}/preview.html``, so the browser resolves the
tiles to ``/{layer}/{z}/{x}/{y}.{ext}`` under whatever script name the
server is mounted at.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
from pathlib import Path

__all__ = ["preview_html"]

_STATIC = Path(__file__).resolve().parent / "static" / "leaflet"

# Leaflet's coordinate reference systems for TileStache's projection names
# (matched case-insensitively, like Geography.getProjectionByName).
_CRS = {
    "spherical mercator": "EPSG3857",
    "wgs84": "EPSG4326",
}

_EXTENSION = re.compile(r"^[A-Za-z0-9]+$")

# Characters that must not appear literally inside an inline <script>.
_JS_UNSAFE = str.maketrans({
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
})


@functools.cache
def _leaflet() -> tuple[str, str]:
    """Leaflet's CSS and JavaScript, read once from the package."""
    css = (_STATIC / "leaflet.css").read_text(encoding="utf-8")
    js = (_STATIC / "leaflet.js").read_text(encoding="utf-8")
    # The source map is not shipped; don't let developer tools ask the
    # tile server for /{layer}/leaflet.js.map.
    js = re.sub(r"^//# sourceMappingURL=.*$", "", js, flags=re.MULTILINE)
    return css, js


def _js(value: object) -> str:
    """A JSON literal that is safe inside an HTML <script> element."""
    return json.dumps(value, allow_nan=False).translate(_JS_UNSAFE)


def _zoom_offset(tile_size: int) -> int | None:
    """log2(tile_size / 256) when that is a whole number, else None."""
    exponent = math.log2(tile_size / 256)
    return int(exponent) if exponent == int(exponent) else None


def preview_html(
    layer_name: str,
    extension: str,
    *,
    tile_size: int = 256,
    projection: str = "spherical mercator",
    center: tuple[float, float] = (0.0, 0.0),
    zoom: int = 1,
    min_zoom: int = 0,
    max_zoom: int = 18,
) -> str:
    """Return a standalone HTML5 page showing one layer as a slippy map.

    The page inlines Leaflet, so it needs nothing but the tile server. It
    requests tiles from the relative template ``{z}/{x}/{y}.{extension}``
    and is meant to be served at ``/{layer_name}/preview.html``.

    layer_name: shown as the page title and in a small label; escaped, so
        any configuration text is safe.
    extension: tile file extension, e.g. ``"png"`` (letters and digits).
    tile_size: width and height of the layer's tiles in pixels. A tile at
        ``z/x/y`` always covers the same area whatever its size; for sizes
        of 256 * 2**k the map shows tiles at their natural size, for any
        other size they are drawn scaled to 256 pixels.
    projection: ``"spherical mercator"`` (Leaflet's EPSG3857) or ``"WGS84"``
        (Leaflet's EPSG4326: zoom 0 is two columns by one row), any case.
    center: initial ``(latitude, longitude)`` in degrees.
    zoom, min_zoom, max_zoom: initial, lowest and highest tile zoom level.

    The initial view also follows the URL fragment ``#zoom/lat/lon`` (tile
    zoom, degrees), which is kept up to date as the map moves.

    Raises ValueError for an unknown projection, an extension that is not
    alphanumeric, a non-positive tile size, non-finite coordinates or an
    empty zoom range.
    """
    try:
        crs = _CRS[projection.lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"preview: unsupported projection {projection!r}; "
            "expected 'spherical mercator' or 'WGS84'"
        ) from None
    if not isinstance(extension, str) or not _EXTENSION.match(extension):
        raise ValueError(f"preview: bad tile extension {extension!r}")
    tile_size = int(tile_size)
    if tile_size <= 0:
        raise ValueError(f"preview: bad tile size {tile_size!r}")
    lat, lon = (float(v) for v in center)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"preview: bad center {center!r}")
    min_zoom, max_zoom = int(min_zoom), int(max_zoom)
    if min_zoom > max_zoom:
        raise ValueError(f"preview: min_zoom {min_zoom} > max_zoom {max_zoom}")
    zoom = min(max(int(zoom), min_zoom), max_zoom)

    # Leaflet asks for tile zoom = map zoom + zoomOffset. Tiles of
    # 256 * 2**k pixels are drawn at their own size one k levels up;
    # other sizes are scaled to 256 px, as the original preview did.
    offset = _zoom_offset(tile_size)
    if offset is None:
        offset, display_size = 0, 256
    else:
        display_size = tile_size

    options = {
        "crs": crs,
        "url": "{z}/{x}/{y}." + extension,
        "tileSize": display_size,
        "zoomOffset": -offset,
        "minZoom": min_zoom,
        "maxZoom": max_zoom,
        "center": [lat, lon],
        "zoom": zoom,
    }

    css, js = _leaflet()
    name = html.escape(str(layer_name), quote=True)

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{name}</title>
<link rel="icon" href="data:,">
<style>
{css}
</style>
<style>
html, body {{ margin: 0; padding: 0; width: 100%; height: 100%; }}
#map {{ position: absolute; top: 0; right: 0; bottom: 0; left: 0; }}
#layer-name {{
  position: absolute; z-index: 1000; top: 10px; right: 10px;
  padding: 2px 6px; background: rgba(255, 255, 255, 0.8);
  border-radius: 3px; font: 12px/1.4 sans-serif; pointer-events: none;
}}
</style>
</head>
<body>
<div id="map"></div>
<div id="layer-name">{name}</div>
<script>
{js}
</script>
<script>
(function () {{
  "use strict";
  var options = {_js(options)};
  var offset = -options.zoomOffset;  // map zoom = tile zoom + offset

  // "#zoom/lat/lon" with the zoom in tile levels, as in the original preview.
  function parseHash(hash) {{
    var parts = hash.replace(/^#/, "").split("/");
    if (parts.length !== 3) return null;
    var z = parseInt(parts[0], 10), lat = parseFloat(parts[1]), lon = parseFloat(parts[2]);
    if (!isFinite(z) || !isFinite(lat) || !isFinite(lon)) return null;
    z = Math.min(Math.max(z, options.minZoom), options.maxZoom);
    return {{ zoom: z, center: L.latLng(lat, lon) }};
  }}

  function formatHash(map) {{
    var z = map.getZoom() - offset, c = map.getCenter().wrap();
    var digits = Math.max(2, Math.ceil(z * Math.LN2 / Math.LN10) + 2);
    return "#" + z + "/" + c.lat.toFixed(digits) + "/" + c.lng.toFixed(digits);
  }}

  var start = parseHash(window.location.hash) ||
      {{ zoom: options.zoom, center: L.latLng(options.center[0], options.center[1]) }};

  var map = L.map("map", {{
    crs: L.CRS[options.crs],
    minZoom: options.minZoom + offset,
    maxZoom: options.maxZoom + offset
  }});
  L.tileLayer(options.url, {{
    tileSize: options.tileSize,
    zoomOffset: options.zoomOffset,
    minZoom: options.minZoom + offset,
    maxZoom: options.maxZoom + offset
  }}).addTo(map);
  map.setView(start.center, start.zoom + offset);

  var current = formatHash(map);
  map.on("moveend", function () {{
    var next = formatHash(map);
    if (next !== current) {{
      current = next;
      window.history.replaceState(null, "", next);
    }}
  }});
  window.addEventListener("hashchange", function () {{
    if (window.location.hash === current) return;
    var view = parseHash(window.location.hash);
    if (view) map.setView(view.center, view.zoom + offset);
  }});
  window.tilestachePreview = map;
}})();
</script>
</body>
</html>
"""
