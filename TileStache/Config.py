"""Configuration: JSON (or a dict) -> Configuration with a cache and layers.

Each part is validated before it is built, and every error names the layer
and key it is about. Plug-ins are loaded from ``"class": "Module:Name"`` with
``"kwargs"``; built-in providers and caches by ``"name"``.
"""
from __future__ import annotations

import inspect
import json
import logging
import mimetypes
import os
import re
import urllib.parse
import urllib.request
from numbers import Real

from . import Caches, Core, Geography
from .Errors import ConfigError

log = logging.getLogger(__name__)

# Layer keys and the JSON types they accept.
NUMBER = (int, float)
LAYER_KEYS: dict[str, tuple] = {
    "provider": (dict,),
    "metatile": (dict,),
    "preview": (dict,),
    "projection": (str,),
    "stale lock timeout": NUMBER,
    "cache lifespan": NUMBER,
    "write cache": (bool,),
    "bounds": (dict, list),
    "allowed origin": (str,),
    "maximum cache age": NUMBER,
    "redirects": (dict,),
    "tile height": (int,),
    "jpeg options": (dict,),
    "png options": (dict,),
    "webp options": (dict,),
    "pixel effect": (dict,),
    "attribution": (str,),
    "scale factor": NUMBER,
}

TOP_KEYS: dict[str, tuple] = {
    "cache": (dict,),
    "layers": (dict,),
    "index": (str,),
    "logging": (str,),
    "metrics": (bool,),
}

LAYER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")

# Python modules a feature needs, and the extra that installs each.
EXTRAS = {"mapnik": "mapnik", "memcache": "memcache", "redis": "redis", "boto3": "s3",
          "botocore": "s3", "shapely": "vector", "pyproj": "proj", "pyogrio": "vector",
          "psycopg": "vector", "psycopg_pool": "vector", "mapbox_vector_tile": "vector",
          "numpy": "sandwich", "pmtiles": "pmtiles", "urllib3": "pmtiles", "prometheus_client": "metrics"}

DEFAULT_INDEX = ("text/plain", b"TileStache bellows hello.\n")


class Configuration:
    """A cache, a collection of layers, and the folder relative paths resolve against."""

    def __init__(self, cache, dirpath: str) -> None:
        self.cache = cache
        self.dirpath = dirpath
        self.layers: dict[str, Core.Layer] = {}
        self.index: tuple[str, bytes] = DEFAULT_INDEX
        self.metrics = None  # a Metrics.Metrics when "metrics" is true


def _check_type(value, types: tuple, layer: str | None, key: str) -> None:
    if isinstance(value, bool) and bool not in types:
        ok = False
    elif types == NUMBER:
        ok = isinstance(value, Real) and not isinstance(value, bool)
    else:
        ok = isinstance(value, types)
    if not ok:
        names = "number" if types == NUMBER else " or ".join(t.__name__ for t in types)
        raise ConfigError(f"expected {names}, got {type(value).__name__} {value!r}", layer, key)


URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


def local_path(url: str) -> str:
    """The local path a file:// URL names: "file:///srv/tiles" -> "/srv/tiles" (percent-escapes decoded)."""
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"{url!r} names another host; a file:// path must be local")
    return urllib.request.url2pathname(parts.path)


def resolve_path(dirpath: str, path: str) -> str:
    """A path or URL from the config, made absolute against the config's folder.

    A file:// URL (given, or made by joining onto a file:// folder) becomes the
    local path it names; other URLs stay URLs.
    """
    if URL_SCHEME.match(path):
        location = path
    elif URL_SCHEME.match(dirpath):
        location = urllib.parse.urljoin(dirpath, path)
    else:
        return os.path.normpath(os.path.join(dirpath, os.path.expanduser(path)))
    return local_path(location) if location[:7].lower() == "file://" else location


def load_plugin(path: str, layer: str | None, key: str) -> type:
    """Import a "Module:Name" plug-in, explaining a missing optional extra."""
    try:
        return Caches.load_class(path)
    except ModuleNotFoundError as error:
        top = (error.name or "").split(".")[0]
        if top in EXTRAS:
            raise ConfigError(f"{path} needs the optional package {top!r}: "
                              f"pip install 'TileStache[{EXTRAS[top]}]'", layer, key) from None
        raise ConfigError(f"cannot import {path}: {error}", layer, key) from None
    except (AttributeError, ValueError) as error:
        raise ConfigError(f"cannot load {path}: {error}", layer, key) from None


def plugin_kwargs(spec: dict, layer: str | None, key: str) -> dict:
    """Keyword arguments for a plug-in: "kwargs" for a class, the other keys (spaces as _) for a name."""
    if "class" in spec:
        kwargs = spec.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise ConfigError("kwargs must be an object", layer, key)
        return dict(kwargs)
    return {k.replace(" ", "_"): v for k, v in spec.items() if k != "name"}


def build_cache(spec: dict, dirpath: str, key: str = "cache"):
    """A cache object from its config dict."""
    _check_type(spec, (dict,), None, key)
    if "class" in spec:
        cls = load_plugin(str(spec["class"]), None, key)
    elif "name" in spec:
        try:
            class_path = Caches.CACHE_CLASSES[str(spec["name"]).strip().lower()]
        except KeyError:
            known = ", ".join(sorted({n.title() for n in Caches.CACHE_CLASSES}))
            raise ConfigError(f"unknown cache name {spec['name']!r} (known: {known})", None, key) from None
        cls = load_plugin(class_path, None, key)
    else:
        raise ConfigError('a cache needs "name" or "class"', None, key)

    kwargs = plugin_kwargs(spec, None, key)
    if "class" not in spec:
        if isinstance(kwargs.get("tiers"), list):
            kwargs["tiers"] = [build_cache(tier, dirpath, f"{key}.tiers[{i}]")
                               for i, tier in enumerate(kwargs["tiers"])]
        for path_key in ("path", "filename"):
            remote = str(spec["name"]).strip().lower() == "s3"  # an S3 "path" is a key prefix
            if isinstance(kwargs.get(path_key), str) and not remote:
                kwargs[path_key] = resolve_path(dirpath, kwargs[path_key])
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError) as error:
        raise ConfigError(str(error), None, key) from None


def build_bounds(spec, projection, layer: str):
    """Bounds (or a BoundsList) from one or a list of {north, west, south, east, low, high} dicts."""
    specs = spec if isinstance(spec, list) else [spec]
    built = []
    for each in specs:
        if not isinstance(each, dict):
            raise ConfigError("each bounds must be an object", layer, "bounds")
        unknown = set(each) - {"north", "west", "south", "east", "low", "high"}
        if unknown:
            raise ConfigError(f"unknown bounds keys {sorted(unknown)}", layer, "bounds")
        for name, value in each.items():
            _check_type(value, NUMBER, layer, f"bounds.{name}")
        try:
            built.append(Core.make_bounds(projection, **each))
        except ValueError as error:
            raise ConfigError(str(error), layer, "bounds") from None
    return built[0] if len(built) == 1 else Core.BoundsList(built)


def build_layer(config: Configuration, name: str, spec: dict) -> Core.Layer:
    """A Layer (with its provider) from its config dict."""
    if not LAYER_NAME.match(name):
        raise ConfigError("layer names may use letters, digits, '_', '-' and '.' only", name)
    _check_type(spec, (dict,), name, "layer")
    for key, value in spec.items():
        if key in LAYER_KEYS:
            _check_type(value, LAYER_KEYS[key], name, key)
        else:
            log.warning("layer %r: ignoring unknown key %r", name, key)
    if "provider" not in spec:
        raise ConfigError("every layer needs a provider", name, "provider")

    try:
        projection = Geography.getProjectionByName(spec.get("projection", "spherical mercator"))
    except (ValueError, ImportError, AttributeError) as error:
        raise ConfigError(str(error), name, "projection") from None

    meta = spec.get("metatile", {})
    try:
        metatile = Core.Metatile(**{k: int(v) for k, v in meta.items()})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{error} (keys: rows, columns, buffer)", name, "metatile") from None

    preview = spec.get("preview", {})
    unknown = set(preview) - {"lat", "lon", "zoom", "ext"}
    if unknown:
        raise ConfigError(f"unknown preview keys {sorted(unknown)}", name, "preview")

    tile_height = spec.get("tile height", 256)
    if not 16 <= tile_height <= 4096:
        raise ConfigError("tile height must be between 16 and 4096", name, "tile height")

    redirects = spec.get("redirects", {})
    for source, target in redirects.items():
        _check_type(target, (str,), name, f"redirects.{source}")

    layer = Core.Layer(
        config, projection, metatile,
        stale_lock_timeout=spec.get("stale lock timeout", 15),
        cache_lifespan=spec.get("cache lifespan"),
        write_cache=spec.get("write cache", True),
        allowed_origin=spec.get("allowed origin"),
        max_cache_age=spec.get("maximum cache age"),
        redirects={k.lower(): v.lower() for k, v in redirects.items()},
        preview_lat=float(preview.get("lat", 37.80)),
        preview_lon=float(preview.get("lon", -122.26)),
        preview_zoom=int(preview.get("zoom", 10)),
        preview_ext=str(preview.get("ext", "png")),
        bounds=build_bounds(spec["bounds"], projection, name) if "bounds" in spec else None,
        tile_height=tile_height,
    )
    layer._name = name
    from .Pixels import encoder_options

    layer.jpeg_options = encoder_options("jpeg options", spec.get("jpeg options", {}), config.dirpath, name)
    layer.png_options = encoder_options("png options", spec.get("png options", {}), config.dirpath, name)
    layer.webp_options = encoder_options("webp options", spec.get("webp options", {}), config.dirpath, name)
    layer.attribution = spec.get("attribution")
    layer.scale_factor = float(spec.get("scale factor", 1))
    if "pixel effect" in spec:
        layer.pixel_effect = build_pixel_effect(spec["pixel effect"], name)
    layer.provider = build_provider(layer, spec["provider"], name)
    return layer


def build_pixel_effect(spec: dict, layer: str):
    """A pixel effect from {"name": ..., parameters...}."""
    from . import PixelEffects

    try:
        return PixelEffects.from_config(spec)
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(str(error).strip("'\""), layer, "pixel effect") from None


def check_kwargs(cls: type, kwargs: dict, layer: str | None, key: str) -> None:
    """Fail naming the key when a plug-in is given a keyword it does not take, or lacks a required one."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for unknown in sorted(set(kwargs) - {p.name for p in named}):
        raise ConfigError(f"{cls.__name__} takes no {unknown!r} (it takes: "
                          f"{', '.join(p.name for p in named[1:]) or 'nothing'})", layer, f"{key}.{unknown}")
    for p in named[1:]:
        if p.default is p.empty and p.kind is not p.VAR_POSITIONAL and p.name not in kwargs:
            raise ConfigError(f"{cls.__name__} needs {p.name!r}", layer, f"{key}.{p.name}")


def build_provider(layer: Core.Layer, spec: dict, name: str):
    """A provider object from its config dict."""
    from . import Providers

    if "class" in spec:
        cls = load_plugin(str(spec["class"]), name, "provider")
    elif "name" in spec:
        provider_name = str(spec["name"])
        try:
            class_path = Providers.PROVIDER_CLASSES[provider_name.strip().lower()]
        except KeyError:
            known = ", ".join(sorted(Providers.PROVIDER_CLASSES))
            raise ConfigError(f"unknown provider name {provider_name!r} (known: {known})",
                              name, "provider") from None
        cls = load_plugin(class_path, name, "provider")
    else:
        raise ConfigError('a provider needs "name" or "class"', name, "provider")
    kwargs = plugin_kwargs(spec, name, "provider")
    check_kwargs(cls, kwargs, name, "provider")
    try:
        return cls(layer, **kwargs)
    except ConfigError as error:
        if error.layer is None:
            raise ConfigError(error.message, name, f"provider.{error.key}" if error.key else "provider") from None
        raise
    except (TypeError, ValueError, KeyError, OSError) as error:
        raise ConfigError(str(error), name, "provider") from None


def load_index(dirpath: str, index: str) -> tuple[str, bytes]:
    """(MIME type, bytes) of the index page named by the config."""
    location = resolve_path(dirpath, index)
    try:
        if "://" in location:
            with urllib.request.urlopen(location, timeout=10) as response:
                return response.headers.get_content_type(), response.read()
        with open(location, "rb") as file:
            body = file.read()
    except OSError as error:
        raise ConfigError(f"cannot read {location}: {error}", None, "index") from None
    return mimetypes.guess_type(location)[0] or "text/html", body


def buildConfiguration(config_dict: dict, dirpath: str = ".") -> Configuration:
    """A Configuration from a config dict; relative paths resolve against dirpath."""
    _check_type(config_dict, (dict,), None, "configuration")
    for key, value in config_dict.items():
        if key in TOP_KEYS:
            _check_type(value, TOP_KEYS[key], None, key)
        else:
            log.warning("ignoring unknown top-level configuration key %r", key)

    if "logging" in config_dict:
        level = config_dict["logging"].upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError("logging must be debug, info, warning, error or critical", None, "logging")
        logging.getLogger().setLevel(level)

    cache = build_cache(config_dict.get("cache", {"name": "Test"}), dirpath)
    config = Configuration(cache, dirpath)
    if config_dict.get("metrics", False):
        from . import Metrics

        config.metrics = Metrics.enable()
    for name, spec in config_dict.get("layers", {}).items():
        config.layers[name] = build_layer(config, name, spec)
    for layer in config.layers.values():  # providers that refer to other layers check them now
        validate_layer(layer, config)
    if "index" in config_dict:
        config.index = load_index(dirpath, config_dict["index"])
    return config


def validate_layer(layer: Core.Layer, config: Configuration) -> None:
    """Let a layer's provider check what it refers to in the configuration (other layers, say)."""
    validate = getattr(layer.provider, "validate", None)
    if callable(validate):
        validate(config)


def read_config_file(location: str) -> tuple[dict, str]:
    """A config's JSON (from a path or URL) and the folder its relative paths resolve against."""
    if re.match(r"^https?://", location, re.I):
        try:
            with urllib.request.urlopen(location, timeout=30) as response:
                text = response.read().decode("utf-8")
        except OSError as error:
            raise ConfigError(f"cannot fetch configuration {location}: {error}") from None
        dirpath = urllib.parse.urljoin(location, ".")
    else:
        try:
            with open(location, encoding="utf-8") as file:
                text = file.read()
        except OSError as error:
            raise ConfigError(f"cannot read configuration {location}: {error.strerror}") from None
        dirpath = os.path.dirname(os.path.abspath(location))
    try:
        return json.loads(text), dirpath
    except json.JSONDecodeError as error:
        raise ConfigError(f"{location} is not valid JSON: {error.msg} at line {error.lineno} "
                          f"column {error.colno}") from None
