"""A vector layer's options, checked at config load: what to read and how to shape it."""
from __future__ import annotations

from dataclasses import dataclass

from ..Errors import ConfigError

# Driver names a configuration may use (not case-sensitive) -> OGR driver name, or "postgis".
DRIVERS = {
    "postgresql": "postgis", "postgis": "postgis",
    "esri shapefile": "ESRI Shapefile", "shapefile": "ESRI Shapefile",
    "geojson": "GeoJSON",
    "gpkg": "GPKG", "geopackage": "GPKG",
    "flatgeobuf": "FlatGeobuf",
    "sqlite": "SQLite", "spatialite": "SQLite",
}

# Keys one entry of "layers" may have besides those the provider has.
LAYER_ONLY_KEYS = {"name", "minzoom", "maxzoom", "query", "table", "file", "layer"}
SHARED_KEYS = {"driver", "parameters", "properties", "clipped", "projected", "precision", "spacing",
               "skip_empty_fields", "id_property", "simplify", "buffer", "extent", "validate"}


@dataclass
class LayerSpec:
    """One named layer of a vector tile: its driver, source parameters and output options."""

    name: str
    driver: str
    parameters: dict
    properties: dict | None = None  # source column -> output name; None: all
    clipped: bool | str = True
    projected: bool = False
    precision: int = 6
    spacing: float | None = None
    skip_empty_fields: bool = False
    id_property: str | None = None
    simplify: float = 0.0  # tolerance, in pixels of a 256 px tile
    buffer: int = 256  # MVT buffer, in extent units
    extent: int = 4096
    minzoom: int = 0
    maxzoom: int = 99
    # PostGIS MVT: check every geometry with ST_IsValid and repair (logging how many) the invalid
    # ones. Off by default: it costs about 40% of the query, and ST_AsMVTGeom never fails on
    # invalid input (it rebuilds polygons in tile space and skips what it cannot encode); when
    # off, invalid geometries are counted once at load instead (PostGISSource.report_invalid).
    # GeoJSON clipping always repairs (ST_Intersection needs valid input); files are checked at load.
    validate: bool = False
    source: object = None
    index: int = 0  # position in the provider's layers (names its query parameters)
    label: str = ""  # how log lines name this layer: "<TileStache layer>" or "<TileStache layer>/<name>"

    padding: float = 0.0  # GeoJSON/TopoJSON: pixels (of a 256 px tile) the clipping box exceeds the tile

    def clip_grow(self) -> float:
        """How much (as a fraction of the tile width) the clipping box exceeds the tile."""
        return 0.05 if self.clipped == "padded" else self.padding / 256

    def serves(self, zoom: int) -> bool:
        """True when this layer has features at a zoom."""
        return self.minzoom <= zoom <= self.maxzoom


def normalise_driver(driver) -> str:
    """The canonical name of a configured driver; ConfigError when unknown."""
    if not isinstance(driver, str) or driver.strip().lower() not in DRIVERS:
        raise ConfigError(f"unknown driver {driver!r} (known: PostgreSQL/postgis, ESRI Shapefile/shapefile, "
                          "GeoJSON, GPKG, FlatGeobuf, SQLite/Spatialite)", key="driver")
    return DRIVERS[driver.strip().lower()]


def normalise_properties(properties) -> dict | None:
    """The properties option as {source: output name}: a list whitelists, a dict also renames."""
    if properties is None:
        return None
    if isinstance(properties, list) and all(isinstance(p, str) for p in properties):
        return {p: p for p in properties}
    if isinstance(properties, dict) and all(isinstance(v, str) for v in properties.values()):
        return dict(properties)
    raise ConfigError("properties must be a list of names or an object of name -> new name", key="properties")


def _number(options: dict, key: str, kind, low=None, high=None):
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise ConfigError(f"must be {'an integer' if kind is int else 'a number'}, got {value!r}", key=key)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"must be between {low} and {high}, got {value!r}", key=key)
    return kind(value)


def build_spec(name: str, options: dict) -> LayerSpec:
    """A LayerSpec from merged provider/layer options (source not attached yet)."""
    parameters = options.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ConfigError("parameters must be an object", key="parameters")
    parameters = dict(parameters)
    for key in ("query", "table", "file", "layer"):
        if options.get(key) is not None:
            parameters[key] = options[key]
    spec = LayerSpec(name=name, driver=normalise_driver(options.get("driver")), parameters=parameters,
                     properties=normalise_properties(options.get("properties")))
    clipped = options.get("clipped", True)
    if clipped not in (True, False, "padded"):
        raise ConfigError('clipped must be true, false or "padded"', key="clipped")
    spec.clipped = clipped
    for key in ("projected", "skip_empty_fields", "validate"):
        if key in options:
            if not isinstance(options[key], bool):
                raise ConfigError("must be true or false", key=key)
            setattr(spec, key, options[key])
    if options.get("id_property") is not None:
        if not isinstance(options["id_property"], str):
            raise ConfigError("must be a property name", key="id_property")
        spec.id_property = options["id_property"]
    if "precision" in options:
        spec.precision = _number(options, "precision", int, 0, 15)
    if options.get("spacing") is not None:
        spec.spacing = _number(options, "spacing", float, 0)
    if "simplify" in options:
        spec.simplify = _number(options, "simplify", float, 0)
    if "buffer" in options:
        spec.buffer = _number(options, "buffer", int, 0, 4096)
    if "extent" in options:
        spec.extent = _number(options, "extent", int, 256, 65536)
    if "minzoom" in options:
        spec.minzoom = _number(options, "minzoom", int, 0, 31)
    if "maxzoom" in options:
        spec.maxzoom = _number(options, "maxzoom", int, 0, 31)
    return spec
