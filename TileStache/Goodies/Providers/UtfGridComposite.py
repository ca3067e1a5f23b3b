"""UtfGridComposite: one UTFGrid made of other UTFGrid layers, later layers winning.

Configuration (as in 1.51)::

    "provider": {"class": "TileStache.Goodies.Providers.UtfGridComposite:Provider",
                 "kwargs": {"stack": [{"layer_id": "layer1", "src": "my_utf_layer1", "wrapper": "grid"},
                                      {"layer_id": "layer2", "src": "my_utf_layer2", "wrapper": "grid"}],
                            "layer_id": "l", "wrapper": "grid"}}

Each stack entry names a layer of this configuration (``src``) whose .json
tiles are UTFGrids, the ``wrapper`` those tiles are wrapped in (if any), and
a ``layer_id`` that each of its features' data gets under the provider's
``layer_id`` key (when both are set). ``wrapper`` wraps the result.
"""
from __future__ import annotations

import json

from ...Errors import BadRequest, ConfigError, KnownUnknown
from ...Mapnik import merge_grids

ENTRY_KEYS = {"src", "layer_id", "wrapper"}


def check_entry(entry, where: str) -> dict:
    """A stack entry, checked: an object with a layer name in ``src``."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object", key="stack")
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise ConfigError(f"{where} has unknown keys {sorted(unknown)} (known: {sorted(ENTRY_KEYS)})", key="stack")
    if not isinstance(entry.get("src"), str):
        raise ConfigError(f"{where} needs src, the name of a UTFGrid layer", key="stack")
    for key in ("layer_id", "wrapper"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise ConfigError(f"{where}: {key} must be a string", key="stack")
    return entry


class Provider:
    """Merges the UTFGrid tiles of the layers in ``stack``."""

    def __init__(self, layer, stack: list, layer_id: str | None = None, wrapper: str | None = None) -> None:
        if not isinstance(stack, list) or not stack:
            raise ConfigError("stack must be a non-empty list of layers", key="stack")
        for key, value in (("layer_id", layer_id), ("wrapper", wrapper)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{key} must be a string", key=key)
        self.layer = layer
        self.stack = [check_entry(entry, f"stack[{i}]") for i, entry in enumerate(stack)]
        self.layer_id = layer_id
        self.wrapper = wrapper

    def references(self) -> set[str]:
        """The layers this grid is made of."""
        return {entry["src"] for entry in self.stack}

    def validate(self, config) -> None:
        """Check, once every layer exists, that each src is a layer other than this one."""
        me = self.layer.name()
        for i, entry in enumerate(self.stack):
            if entry["src"] not in config.layers or entry["src"] == me:
                raise ConfigError(f"stack[{i}]: src {entry['src']!r} is not another layer of this configuration",
                                  me, "provider.stack")

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:
        """Grids are JSON only."""
        if extension.lower() == "json":
            return "application/json; charset=utf-8", "JSON"
        raise BadRequest(f"UtfGridComposite makes .json tiles, not .{extension[:12]}")

    def _grid(self, entry: dict, coord) -> dict:
        from ... import getTile

        body = getTile(self.layer.config.layers[entry["src"]], coord, "json")[1].decode("utf-8")
        wrapper = entry.get("wrapper")
        if wrapper:
            if not (body.startswith(wrapper + "(") and body.endswith(")")):
                raise KnownUnknown(f"layer {entry['src']!r} did not wrap its grid in {wrapper}(...)")
            body = body[len(wrapper) + 1:-1]
        grid = json.loads(body)
        if self.layer_id and entry.get("layer_id") is not None:
            for datum in grid["data"].values():
                datum[self.layer_id] = entry["layer_id"]
        return grid

    def renderTile(self, width: int, height: int, srs: str, coord, scale_factor: float | None = None) -> bytes:
        """The merged UTFGrid JSON, wrapped in ``wrapper(...)`` when one is set."""
        grids = [self._grid(entry, coord) for entry in self.stack]
        if len({len(grid["grid"]) for grid in grids}) > 1:
            raise KnownUnknown("the stacked UTFGrid layers have grids of different sizes (give them one scale)")
        body = json.dumps(merge_grids(grids), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return body if self.wrapper is None else self.wrapper.encode("utf-8") + b"(" + body + b")"
