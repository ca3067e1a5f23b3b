"""The ``/{layer}/preview.html`` page: a slippy map of one layer.

Raster layers get a single standalone HTML document: Leaflet (BSD-2, vendored
in ``TileStache/static/leaflet/`` with its licence) is inlined into it, so the
preview works without any network access beyond the tile server itself.

Vector-tile layers (preview extension ``mvt`` or ``pbf``) get a MapLibre GL JS
page (BSD-3, vendored in ``TileStache/static/maplibre-gl/``), which loads the
library from ``maplibre-gl.js`` and ``maplibre-gl.css`` beside it (served by
TileStache at ``/{layer}/maplibre-gl.js``). Its style is generated from the
layer's source-layers: a fill, line and circle layer per source-layer, each in
a colour of its own, and a click popup listing a feature's properties; it
needs no glyphs or sprites.

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

__all__ = ["preview_html", "vector_preview_html", "static_asset", "STATIC_ASSETS"]

_STATIC = Path(__file__).resolve().parent / "static" / "leaflet"
_MAPLIBRE = Path(__file__).resolve().parent / "static" / "maplibre-gl"

# The files a vector preview loads beside itself -> their MIME types.
STATIC_ASSETS = {"maplibre-gl.js": "application/javascript; charset=utf-8",
                 "maplibre-gl.css": "text/css; charset=utf-8"}

# One colour per source-layer, in order (Tableau 10).
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]

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


def _checked_view(extension, center, zoom, min_zoom, max_zoom) -> tuple[float, float, int, int, int]:
    """(lat, lon, zoom, min_zoom, max_zoom) of a page's view, checked; ValueError when they are unusable."""
    if not isinstance(extension, str) or not _EXTENSION.match(extension):
        raise ValueError(f"preview: bad tile extension {extension!r}")
    lat, lon = (float(v) for v in center)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"preview: bad center {center!r}")
    min_zoom, max_zoom = int(min_zoom), int(max_zoom)
    if min_zoom > max_zoom:
        raise ValueError(f"preview: min_zoom {min_zoom} > max_zoom {max_zoom}")
    return lat, lon, min(max(int(zoom), min_zoom), max_zoom), min_zoom, max_zoom


def _checked_grid(grid: dict, tile_size: int) -> dict:
    """A projected grid's resolutions and transformation, checked; ValueError when they are unusable."""
    try:
        resolutions = [float(r) for r in grid["resolutions"]]
        transformation = [float(v) for v in grid["transformation"]]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"preview: bad grid {grid!r}") from None
    if not resolutions or not all(math.isfinite(r) and r > 0 for r in resolutions):
        raise ValueError(f"preview: bad grid resolutions {resolutions!r}")
    ax, bx, _, ay, by, _ = transformation if len(transformation) == 6 else [0.0] * 6
    if not all(math.isfinite(v) for v in transformation) or ax * by - bx * ay == 0:
        raise ValueError(f"preview: bad grid transformation {transformation!r}")
    return {"resolutions": resolutions, "transformation": transformation}


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
    grid: dict | None = None,
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
    grid: for a projected grid without world edges (a Proj4Projection layer),
        ``{"resolutions": [units per pixel, zoom 0 first], "transformation":
        [ax, bx, cx, ay, by, cy]}`` mapping projected units over a tile's size
        in them to tile columns and rows. The page then works in projected
        units: ``center`` and the URL fragment hold ``(y, x)``, and
        ``projection`` is not used.

    The initial view also follows the URL fragment ``#zoom/lat/lon`` (tile
    zoom, degrees), which is kept up to date as the map moves.

    Raises ValueError for an unknown projection, an extension that is not
    alphanumeric, a non-positive tile size, non-finite coordinates or an
    empty zoom range.
    """
    tile_size = int(tile_size)
    if tile_size <= 0:
        raise ValueError(f"preview: bad tile size {tile_size!r}")
    lat, lon, zoom, min_zoom, max_zoom = _checked_view(extension, center, zoom, min_zoom, max_zoom)
    if grid is not None:
        crs, grid = None, _checked_grid(grid, tile_size)
        offset, display_size = 0, tile_size  # the grid's own tiles, at their own size
        max_zoom = min(max_zoom, len(grid["resolutions"]) - 1)
        min_zoom, zoom = min(min_zoom, max_zoom), min(zoom, max_zoom)
    else:
        try:
            crs = _CRS[projection.lower()]
        except (KeyError, AttributeError):
            raise ValueError(
                f"preview: unsupported projection {projection!r}; "
                "expected 'spherical mercator' or 'WGS84'"
            ) from None
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
        "grid": grid,
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

  // A projected grid's CRS: "latitude" and "longitude" are its y and x, a
  // zoom's scale is 1 / resolution, and pixels follow the grid's transformation.
  function gridCRS(grid, size) {{
    var r = grid.resolutions, n = r.length, t = grid.transformation;
    var det = t[0] * t[4] - t[1] * t[3];
    function resolution(z) {{
      z = Math.min(Math.max(z, 0), n - 1);
      var i = Math.floor(z);
      return i + 1 < n ? r[i] * Math.pow(r[i + 1] / r[i], z - i) : r[i];
    }}
    return L.extend({{}}, L.CRS.Simple, {{
      infinite: true,
      scale: function (z) {{ return 1 / resolution(z); }},
      zoom: function (scale) {{
        var wanted = 1 / scale;
        for (var i = 0; i + 1 < n; i++) {{
          if (wanted >= r[i + 1] || i + 2 === n) return i + Math.log(wanted / r[i]) / Math.log(r[i + 1] / r[i]);
        }}
        return 0;
      }},
      latLngToPoint: function (latlng, z) {{
        var units = size * resolution(z), x = latlng.lng / units, y = latlng.lat / units;
        return L.point(size * (t[0] * x + t[1] * y + t[2]), size * (t[3] * x + t[4] * y + t[5]));
      }},
      pointToLatLng: function (point, z) {{
        var units = size * resolution(z), u = point.x / size - t[2], v = point.y / size - t[5];
        return L.latLng(units * (t[0] * v - t[3] * u) / det, units * (t[4] * u - t[1] * v) / det);
      }}
    }});
  }}

  function formatHash(map) {{
    var z = map.getZoom() - offset, c = map.wrapLatLng(map.getCenter());
    var digits = Math.max(2, Math.ceil(z * Math.LN2 / Math.LN10) + 2);
    return "#" + z + "/" + c.lat.toFixed(digits) + "/" + c.lng.toFixed(digits);
  }}

  var start = parseHash(window.location.hash) ||
      {{ zoom: options.zoom, center: L.latLng(options.center[0], options.center[1]) }};

  var map = L.map("map", {{
    crs: options.grid ? gridCRS(options.grid, options.tileSize) : L.CRS[options.crs],
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


@functools.cache
def static_asset(name: str) -> tuple[str, bytes]:
    """(MIME type, bytes) of a file the vector preview loads (a key of STATIC_ASSETS), read once."""
    body = (_MAPLIBRE / name).read_bytes()
    if name.endswith(".js"):  # the source map is not shipped
        body = re.sub(rb"^//# sourceMappingURL=.*$", b"", body, flags=re.MULTILINE)
    return STATIC_ASSETS[name], body


def vector_style(tiles_url: str, source_layers: list[str], min_zoom: int, max_zoom: int) -> dict:
    """A MapLibre style drawing every source-layer: fills, lines and circles, a colour per source-layer."""
    layers: list[dict] = [{"id": "background", "type": "background", "paint": {"background-color": "#f8f8f4"}}]
    for index, name in enumerate(source_layers):
        colour = PALETTE[index % len(PALETTE)]
        common = {"source": "tiles", "source-layer": name}
        layers += [
            {"id": f"{name}-fill", "type": "fill", **common, "filter": ["==", ["geometry-type"], "Polygon"],
             "paint": {"fill-color": colour, "fill-opacity": 0.35, "fill-outline-color": colour}},
            {"id": f"{name}-line", "type": "line", **common,
             "filter": ["in", ["geometry-type"], ["literal", ["LineString", "Polygon"]]],
             "paint": {"line-color": colour, "line-width": 1.5}},
            {"id": f"{name}-circle", "type": "circle", **common, "filter": ["==", ["geometry-type"], "Point"],
             "paint": {"circle-color": colour, "circle-radius": 5, "circle-stroke-color": "#ffffff",
                       "circle-stroke-width": 1}},
        ]
    return {"version": 8, "sources": {"tiles": {"type": "vector", "tiles": [tiles_url], "tileSize": 512,
                                                 "minzoom": min_zoom, "maxzoom": max_zoom}},
            "layers": layers}


def vector_preview_html(
    layer_name: str,
    extension: str,
    source_layers: list[str],
    *,
    center: tuple[float, float] = (0.0, 0.0),
    zoom: int = 1,
    min_zoom: int = 0,
    max_zoom: int = 14,
) -> str:
    """Return an HTML5 page drawing a vector-tile layer with MapLibre GL JS.

    The page loads ``maplibre-gl.js`` and ``maplibre-gl.css`` from beside
    itself and tiles from the relative template ``{z}/{x}/{y}.{extension}``,
    so it works under any script name, offline. ``source_layers`` are the
    MVT layer names to draw; clicking the map lists the properties of the
    features under the pointer. ``center`` is (latitude, longitude); the
    zooms are tile zooms. The map object is ``window.tilestachePreview``.
    Raises ValueError as preview_html does.
    """
    lat, lon, zoom, min_zoom, max_zoom = _checked_view(extension, center, zoom, min_zoom, max_zoom)
    style = vector_style("{z}/{x}/{y}." + extension, [str(n) for n in source_layers], min_zoom, max_zoom)
    options = {"style": style, "center": [lon, lat], "zoom": zoom,
               "clickable": [f"{n}-{kind}" for n in source_layers for kind in ("fill", "line", "circle")]}
    name = html.escape(str(layer_name), quote=True)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{name}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="maplibre-gl.css">
<style>
html, body {{ margin: 0; padding: 0; width: 100%; height: 100%; }}
#map {{ position: absolute; top: 0; right: 0; bottom: 0; left: 0; }}
#layer-name {{
  position: absolute; z-index: 1000; top: 10px; left: 10px;
  padding: 2px 6px; background: rgba(255, 255, 255, 0.8);
  border-radius: 3px; font: 12px/1.4 sans-serif; pointer-events: none;
}}
.tilestache-popup table {{ border-collapse: collapse; font: 12px/1.4 sans-serif; }}
.tilestache-popup th {{ text-align: left; padding-right: 8px; }}
</style>
<script src="maplibre-gl.js"></script>
</head>
<body>
<div id="map"></div>
<div id="layer-name">{name}</div>
<script>
(function () {{
  "use strict";
  var options = {_js(options)};
  // Tile URLs must be absolute for MapLibre's workers: resolve the template against this page.
  var here = window.location.href.replace(/[?#].*$/, "").replace(/[^/]*$/, "");
  options.style.sources.tiles.tiles = [here + options.style.sources.tiles.tiles[0]];

  var map = new maplibregl.Map({{
    container: "map", style: options.style, center: options.center, zoom: options.zoom,
    hash: true, attributionControl: false
  }});
  map.addControl(new maplibregl.NavigationControl(), "top-right");

  function text(value) {{
    var span = document.createElement("span");
    span.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    return span;
  }}

  map.on("click", function (event) {{
    var features = map.queryRenderedFeatures(event.point, {{ layers: options.clickable }});
    if (!features.length) return;
    var box = document.createElement("div");
    box.className = "tilestache-popup";
    features.slice(0, 5).forEach(function (feature) {{
      var table = document.createElement("table");
      var caption = document.createElement("caption");
      caption.appendChild(text(feature.sourceLayer));
      table.appendChild(caption);
      Object.keys(feature.properties).forEach(function (key) {{
        var row = table.insertRow(), th = document.createElement("th");
        th.appendChild(text(key));
        row.appendChild(th);
        row.insertCell().appendChild(text(feature.properties[key]));
      }});
      box.appendChild(table);
    }});
    new maplibregl.Popup().setLngLat(event.lngLat).setDOMContent(box).addTo(map);
  }});
  map.on("mousemove", function (event) {{
    var over = map.queryRenderedFeatures(event.point, {{ layers: options.clickable }}).length > 0;
    map.getCanvas().style.cursor = over ? "pointer" : "";
  }});
  window.tilestachePreview = map;
}})();
</script>
</body>
</html>
"""
