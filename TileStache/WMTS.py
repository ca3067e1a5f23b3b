"""``/WMTSCapabilities.xml``: a WMTS 1.0.0 RESTful capabilities document, so QGIS and ArcGIS can add layers.

One WMTS layer per raster layer (its preview extension is an image format),
in the ``GoogleMapsCompatible`` tile matrix set for spherical mercator layers
and ``WorldCRS84Quad`` (two tiles side by side at zoom 0, as TileStache's
WGS84 grid) for WGS84 layers; layers of other tile sizes get a set of their
own. Each layer's ``ResourceURL`` template points at our tile URLs, absolute
as the client reached us (``SCRIPT_NAME``, ``X-Forwarded-*``, as TileJSON);
``WGS84BoundingBox`` and ``TileMatrixSetLimits`` come from its ``bounds``.
Spec: OGC 07-057r7.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from ModestMaps.Geo import Location

from .Formats import IMAGE_TYPES
from .TileJSON import base_url, layer_bounds

NAMESPACES = {"": "http://www.opengis.net/wmts/1.0", "ows": "http://www.opengis.net/ows/1.1",
              "xlink": "http://www.w3.org/1999/xlink"}
WMTS, OWS, XLINK = (f"{{{NAMESPACES[k]}}}" for k in ("", "ows", "xlink"))
PIXEL_METRES = 0.00028  # the standardized rendering pixel of WMTS scale denominators
EARTH_RADIUS = 6378137.0
METRES_PER_DEGREE = 2 * math.pi * EARTH_RADIUS / 360
MAX_MATRIX = 24  # deepest zoom the tile matrix sets list


@dataclass(frozen=True)
class MatrixSet:
    """A tile matrix set: its name, CRS, zoom-0 grid and resolution, top-left corner (CRS order)."""

    identifier: str
    crs: str
    columns0: int
    rows0: int
    resolution0: float  # CRS units per pixel at zoom 0
    top_left: tuple[float, float]
    tile_size: int
    well_known: str | None = None


def matrix_set(projection, tile_size: int) -> MatrixSet | None:
    """The tile matrix set of a projection and tile size; None for projections WMTS clients can't know."""
    name = str(getattr(projection, "name", "")).lower()
    suffix = "" if tile_size == 256 else f"_{tile_size}"
    if name == "spherical mercator":
        half = math.pi * EARTH_RADIUS
        return MatrixSet("GoogleMapsCompatible" + suffix, "urn:ogc:def:crs:EPSG::3857", 1, 1,
                         2 * half / tile_size, (-half, half), tile_size,
                         "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible" if tile_size == 256 else None)
    if name == "wgs84":
        return MatrixSet("WorldCRS84Quad" + suffix, "urn:ogc:def:crs:OGC:1.3:CRS84", 2, 1,
                         180.0 / tile_size, (-180.0, 90.0), tile_size)
    return None


def is_raster(layer) -> bool:
    """True when a layer's preview extension is an image format."""
    return str(layer.preview_ext).lower() in IMAGE_TYPES


def _text(parent, tag: str, text: str, **attributes) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _limits(layer, tiles: MatrixSet, low: int, high: int) -> list[tuple[int, int, int, int, int]]:
    """(zoom, min row, max row, min column, max column) of the layer's bounds at each served zoom."""
    west, south, east, north = layer_bounds(layer)
    limits = []
    for zoom in range(low, high + 1):
        columns, rows = tiles.columns0 << zoom, tiles.rows0 << zoom
        nw = layer.projection.locationCoordinate(Location(north, west)).zoomTo(zoom)
        se = layer.projection.locationCoordinate(Location(south, east)).zoomTo(zoom)
        clamp = lambda value, size: min(max(int(math.floor(value)), 0), size - 1)  # noqa: E731
        limits.append((zoom, clamp(nw.row, rows), clamp(math.ceil(se.row) - 1, rows),
                       clamp(nw.column, columns), clamp(math.ceil(se.column) - 1, columns)))
    return limits


def _layer(contents, name: str, layer, tiles: MatrixSet, base: str) -> None:
    element = ET.SubElement(contents, WMTS + "Layer")
    _text(element, OWS + "Title", name)
    west, south, east, north = layer_bounds(layer)
    box = ET.SubElement(element, OWS + "WGS84BoundingBox")
    _text(box, OWS + "LowerCorner", f"{west:.8f} {south:.8f}")
    _text(box, OWS + "UpperCorner", f"{east:.8f} {north:.8f}")
    _text(element, OWS + "Identifier", name)
    style = ET.SubElement(element, WMTS + "Style", isDefault="true")
    _text(style, OWS + "Identifier", "default")
    extension = str(layer.preview_ext).lower()
    mimetype = IMAGE_TYPES[extension][0]
    _text(element, WMTS + "Format", mimetype)
    link = ET.SubElement(element, WMTS + "TileMatrixSetLink")
    _text(link, WMTS + "TileMatrixSet", tiles.identifier)
    low, high = layer.zoom_range()
    limits = ET.SubElement(link, WMTS + "TileMatrixSetLimits")
    for zoom, min_row, max_row, min_column, max_column in _limits(layer, tiles, max(low, 0), min(high, MAX_MATRIX)):
        each = ET.SubElement(limits, WMTS + "TileMatrixLimits")
        _text(each, WMTS + "TileMatrix", str(zoom))
        _text(each, WMTS + "MinTileRow", str(min_row))
        _text(each, WMTS + "MaxTileRow", str(max_row))
        _text(each, WMTS + "MinTileCol", str(min_column))
        _text(each, WMTS + "MaxTileCol", str(max_column))
    template = f"{base}/{quote(name)}/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.{extension}"
    ET.SubElement(element, WMTS + "ResourceURL", format=mimetype, resourceType="tile", template=template)


def _matrix_set(contents, tiles: MatrixSet) -> None:
    element = ET.SubElement(contents, WMTS + "TileMatrixSet")
    _text(element, OWS + "Identifier", tiles.identifier)
    _text(element, OWS + "SupportedCRS", tiles.crs)
    if tiles.well_known:
        _text(element, WMTS + "WellKnownScaleSet", tiles.well_known)
    units = 1.0 if tiles.crs.endswith("3857") else METRES_PER_DEGREE
    for zoom in range(MAX_MATRIX + 1):
        matrix = ET.SubElement(element, WMTS + "TileMatrix")
        _text(matrix, OWS + "Identifier", str(zoom))
        _text(matrix, WMTS + "ScaleDenominator", repr(tiles.resolution0 / 2 ** zoom * units / PIXEL_METRES))
        _text(matrix, WMTS + "TopLeftCorner", f"{tiles.top_left[0]!r} {tiles.top_left[1]!r}")
        _text(matrix, WMTS + "TileWidth", str(tiles.tile_size))
        _text(matrix, WMTS + "TileHeight", str(tiles.tile_size))
        _text(matrix, WMTS + "MatrixWidth", str(tiles.columns0 << zoom))
        _text(matrix, WMTS + "MatrixHeight", str(tiles.rows0 << zoom))


def capabilities(config, environ: Mapping) -> bytes:
    """The capabilities XML of a configuration's raster layers, URLs as the request (a WSGI environ) reached us."""
    for prefix, uri in NAMESPACES.items():
        ET.register_namespace(prefix, uri)
    root = ET.Element(WMTS + "Capabilities", version="1.0.0")
    identification = ET.SubElement(root, OWS + "ServiceIdentification")
    _text(identification, OWS + "Title", "TileStache")
    _text(identification, OWS + "ServiceType", "OGC WMTS")
    _text(identification, OWS + "ServiceTypeVersion", "1.0.0")
    contents = ET.SubElement(root, WMTS + "Contents")
    base = base_url(environ.get("SCRIPT_NAME", ""), environ)
    sets: dict[str, MatrixSet] = {}
    for name in sorted(config.layers.keys()):
        layer = config.layers[name]
        tiles = matrix_set(layer.projection, layer.dim) if is_raster(layer) else None
        if tiles is None:
            continue
        sets[tiles.identifier] = tiles
        _layer(contents, name, layer, tiles, base)
    for tiles in sets.values():
        _matrix_set(contents, tiles)
    ET.SubElement(root, WMTS + "ServiceMetadataURL", {XLINK + "href": f"{base}/WMTSCapabilities.xml"})
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
