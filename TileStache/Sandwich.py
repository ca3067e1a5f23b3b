"""Sandwich: a tile made by compositing other layers of the same configuration.

A Photoshop-like stack (after Lars Ahlzen's TopOSM), drawn bottom to top
onto a transparent tile::

    "provider": {"name": "Sandwich", "stack": [
        {"color": "#f4f0e8"},
        {"src": "hillshade", "mode": "multiply", "opacity": 0.6, "zoom": "8-14"},
        {"src": "outlines", "mask": "halos"},
        {"src": "streets", "adjustments": [["curves", [0, 181, 255]]]}
    ]}

Each step takes:

- ``src``: another layer's name (its PNG tile, cache and all) or an image
  file/URL relative to the config; ``color``: ``#rgb``, ``#rgba``,
  ``#rrggbb`` or ``#rrggbbaa``. With both, the colour is drawn under the source.
- ``mask``: a layer whose tile limits where this step shows: its luminance
  times its alpha (white shows, black or transparent hides).
- ``mode``: ``screen``, ``add``, ``multiply``, ``subtract``, ``linear light``,
  ``hard light`` (default: normal). ``opacity``: 0-1 (default 1).
- ``zoom``: ``"12"`` or ``"12-18"``: only draw the step at those zooms.
- ``adjustments``: ``[name, [arguments]]`` pairs applied to the step's colours:
  ``["threshold", [red, green, blue]]`` (channels at or above become 255,
  others 0; green and blue default to red), ``["curves", [black, grey, white]]``
  (input levels mapped to 0, 128, 255 by a quadratic), ``["curves2",
  [[[in, out], ...], ...]]`` (piecewise-linear maps for red, green, blue).

A step may itself be a list: a nested stack, drawn onto a transparent tile of
its own and then put over what lies below it.

Blend modes use the W3C compositing formulas: the blended colour is mixed
with the source colour by the backdrop's alpha, then composited "over".
Referenced layers must exist and must not lead back to this layer; both are
checked at config load (``validate``).
"""
from __future__ import annotations

import io
import os
import re
import urllib.request
from numbers import Real

import numpy as np
from PIL import Image

from .Errors import ConfigError


def _clip(values: np.ndarray) -> np.ndarray:
    return np.clip(values, 0.0, 1.0)


def _hard_light(b: np.ndarray, s: np.ndarray) -> np.ndarray:
    return np.where(s <= 0.5, 2 * b * s, 1 - 2 * (1 - b) * (1 - s))


# Separable blend functions of backdrop b and source s, channel values 0-1.
BLEND_MODES = {
    "normal": lambda b, s: s,
    "screen": lambda b, s: 1 - (1 - b) * (1 - s),
    "add": lambda b, s: _clip(b + s),
    "multiply": lambda b, s: b * s,
    "subtract": lambda b, s: _clip(b - s),
    "linear light": lambda b, s: _clip(b + 2 * s - 1),
    "hard light": _hard_light,
}

COLOR = re.compile(r"^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
ZOOM = re.compile(r"^(\d+)(?:-(\d+))?$")
STEP_KEYS = {"src", "mask", "color", "mode", "opacity", "zoom", "adjustments"}


def parse_color(text: str) -> tuple[float, float, float, float]:
    """(r, g, b, a) from 0 to 1 of an HTML-style hex colour (#rgb, #rgba, #rrggbb, #rrggbbaa)."""
    if not isinstance(text, str) or not COLOR.match(text):
        raise ValueError(f"colour {text!r} is not #rgb, #rgba, #rrggbb or #rrggbbaa")
    digits = text[1:]
    if len(digits) <= 4:
        digits = "".join(d * 2 for d in digits)
    if len(digits) == 6:
        digits += "ff"
    return tuple(int(digits[i:i + 2], 16) / 255 for i in range(0, 8, 2))


def _threshold(red: float, green: float | None = None, blue: float | None = None):
    limits = np.array([red, red if green is None else green, red if blue is None else blue]) / 255

    def adjust(rgb: np.ndarray) -> np.ndarray:
        return (rgb >= limits).astype(np.float32)
    return adjust


def _curves(black: float, grey: float, white: float):
    if not black < grey < white:
        raise ValueError("curves needs black < grey < white")
    xs = np.array([black, grey, white]) / 255
    coefficients = np.polyfit(xs, [0.0, 0.5, 1.0], 2)

    def adjust(rgb: np.ndarray) -> np.ndarray:
        return _clip(np.polyval(coefficients, rgb)).astype(np.float32)
    return adjust


def _curves2(red: list, green: list | None = None, blue: list | None = None):
    maps = []
    for points in (red, green or red, blue or red):
        pairs = sorted((float(i) / 255, float(o) / 255) for i, o in points)
        maps.append(([p[0] for p in pairs], [p[1] for p in pairs]))

    def adjust(rgb: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(rgb[..., i], *maps[i]) for i in range(3)], axis=-1).astype(np.float32)
    return adjust


ADJUSTMENTS = {"threshold": _threshold, "curves": _curves, "curves2": _curves2}


class Step:
    """One checked entry of a stack."""

    def __init__(self, spec: dict, where: str) -> None:
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be an object", key="stack")
        unknown = set(spec) - STEP_KEYS
        if unknown:
            raise ConfigError(f"{where} has unknown keys {sorted(unknown)} (known: {sorted(STEP_KEYS)})", key="stack")
        self.where = where
        self.src, self.mask = spec.get("src"), spec.get("mask")
        for key in ("src", "mask"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise ConfigError(f"{where}: {key} must be a layer name", key="stack")
        if self.src is None and "color" not in spec:
            raise ConfigError(f"{where} needs src or color", key="stack")
        if self.src and self.mask and "color" in spec:
            raise ConfigError(f"{where}: src, color and mask can not all be used together", key="stack")
        try:
            self.color = parse_color(spec["color"]) if "color" in spec else None
        except ValueError as error:
            raise ConfigError(f"{where}: {error}", key="stack") from None
        mode = str(spec.get("mode", "normal")).lower()
        if mode not in BLEND_MODES:
            raise ConfigError(f"{where}: unknown mode {mode!r} (known: {', '.join(BLEND_MODES)})", key="stack")
        self.blend = BLEND_MODES[mode]
        opacity = spec.get("opacity", 1.0)
        if isinstance(opacity, bool) or not isinstance(opacity, Real) or not 0 <= opacity <= 1:
            raise ConfigError(f"{where}: opacity must be a number from 0 to 1", key="stack")
        self.opacity = float(opacity)
        self.zooms = self._zooms(spec.get("zoom"))
        self.adjustments = [self._adjustment(item) for item in spec.get("adjustments", [])]

    def _zooms(self, zoom) -> tuple[int, int] | None:
        if zoom is None:
            return None
        match = ZOOM.match(str(zoom))
        if not match:
            raise ConfigError(f"{self.where}: zoom must look like \"12\" or \"12-18\"", key="stack")
        low = int(match.group(1))
        return low, int(match.group(2) or low)

    def _adjustment(self, item):
        if not isinstance(item, list) or len(item) != 2 or item[0] not in ADJUSTMENTS or not isinstance(item[1], list):
            raise ConfigError(f"{self.where}: adjustments are [name, [arguments]] with name one of "
                              f"{sorted(ADJUSTMENTS)}, not {item!r}", key="stack")
        try:
            return ADJUSTMENTS[item[0]](*item[1])
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{self.where}: bad {item[0]} arguments {item[1]!r}: {error}", key="stack") from None

    def shows_at(self, zoom: int) -> bool:
        return self.zooms is None or self.zooms[0] <= zoom <= self.zooms[1]


class Group:
    """A nested stack: its steps are drawn onto a transparent canvas of their own, then put over the canvas below."""

    def __init__(self, specs: list, where: str) -> None:
        if not specs:
            raise ConfigError(f"{where} is an empty stack", key="stack")
        self.steps = [Group(spec, f"{where}[{i}]") if isinstance(spec, list) else Step(spec, f"{where}[{i}]")
                      for i, spec in enumerate(specs)]

    def flat(self) -> list[Step]:
        """Every Step of this group and the groups inside it."""
        return [leaf for step in self.steps for leaf in (step.flat() if isinstance(step, Group) else [step])]


class Provider:
    """Renders a tile by compositing a stack of other layers, colours and images."""

    def __init__(self, layer, stack) -> None:
        self.layer = layer
        self.stack = Group(stack if isinstance(stack, list) else [stack], "stack")
        self.steps = self.stack.flat()
        self.files: dict[str, np.ndarray] = {}

    def references(self) -> set[str]:
        """Names this stack uses as src or mask."""
        return {name for step in self.steps for name in (step.src, step.mask) if name}

    def validate(self, config) -> None:
        """Check, once every layer exists, that sources exist and no stack leads back to itself."""
        me = self.layer.name()
        for step in self.steps:
            for key, name in (("src", step.src), ("mask", step.mask)):
                if not name or name in config.layers:
                    continue
                if key == "src" and self._load_file(config, name) is not None:
                    continue
                raise ConfigError(f"{step.where}: {key} {name!r} is not a layer of this configuration"
                                  + (" nor an image file" if key == "src" else ""), me, "provider.stack")
        path = self._cycle(config, me, [me])
        if path:
            raise ConfigError(f"stack refers back to itself: {' -> '.join(path)}", me, "provider.stack")

    def _cycle(self, config, start: str, path: list[str]) -> list[str] | None:
        provider = config.layers[path[-1]].provider
        for name in sorted(getattr(provider, "references", lambda: set())()):
            if name == start:
                return path + [name]
            if name in config.layers and name not in path:
                found = self._cycle(config, start, path + [name])
                if found:
                    return found
        return None

    def _load_file(self, config, name: str) -> np.ndarray | None:
        from .Config import resolve_path

        location = resolve_path(config.dirpath, name)
        try:
            if "://" in location:
                with urllib.request.urlopen(location, timeout=30) as response:
                    body = response.read()
            elif os.path.isfile(location):
                with open(location, "rb") as file:
                    body = file.read()
            else:
                return None
            self.files[name] = to_array(Image.open(io.BytesIO(body)))
        except (OSError, ValueError):
            return None
        return self.files[name]

    def renderTile(self, width: int, height: int, srs: str, coord) -> Image.Image:
        """The composited RGBA tile."""
        tiles: dict[str, np.ndarray] = {}

        def source(name: str) -> np.ndarray:
            if name not in tiles:
                tiles[name] = self._source(name, coord, width, height)
            return tiles[name]

        return from_array(self._draw(self.stack, np.zeros((height, width, 4), np.float32), source, int(coord.zoom)))

    def _draw(self, group: Group, canvas: np.ndarray, source, zoom: int) -> np.ndarray:
        for step in group.steps:
            if isinstance(step, Group):
                layer = self._draw(step, np.zeros_like(canvas), source, zoom)
                canvas = over(canvas, layer)
                continue
            if not step.shows_at(zoom):
                continue
            top = np.empty_like(canvas)
            top[...] = step.color if step.color is not None else (0, 0, 0, 0)
            if step.src:
                top = over(top, source(step.src))
            rgb = top[..., :3]
            for adjust in step.adjustments:
                rgb = adjust(rgb)
            alpha = top[..., 3] * step.opacity
            if step.mask:
                mask = source(step.mask)
                alpha = alpha * luminance(mask[..., :3]) * mask[..., 3]
            canvas = composite(canvas, rgb, alpha, step.blend)
        return canvas

    def _source(self, name: str, coord, width: int, height: int) -> np.ndarray:
        config = self.layer.config
        if name in config.layers:
            from . import getTile

            image = Image.open(io.BytesIO(getTile(config.layers[name], coord, "png")[1]))
        else:
            image = from_array(self.files[name])
        if image.size != (width, height):
            image = image.convert("RGBA").resize((width, height), Image.Resampling.BILINEAR)
        return to_array(image)


def to_array(image: Image.Image) -> np.ndarray:
    """An RGBA image as a float32 array of 0-1 values, shape (height, width, 4)."""
    return np.asarray(image.convert("RGBA"), dtype=np.float32) / 255


def from_array(values: np.ndarray) -> Image.Image:
    """An RGBA image from a 0-1 float array."""
    return Image.fromarray(np.round(_clip(values) * 255).astype(np.uint8), "RGBA")


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of 0-1 RGB values."""
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def over(bottom: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Plain "over" compositing of two RGBA arrays."""
    return composite(bottom, top[..., :3], top[..., 3], BLEND_MODES["normal"])


def composite(bottom: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, blend) -> np.ndarray:
    """bottom with a source (rgb, alpha) blended on top (W3C separable blending, then source-over)."""
    backdrop, backdrop_alpha = bottom[..., :3], bottom[..., 3:]
    alpha = alpha[..., None]
    mixed = (1 - backdrop_alpha) * rgb + backdrop_alpha * blend(backdrop, rgb)
    out_alpha = alpha + backdrop_alpha * (1 - alpha)
    weighted = mixed * alpha + backdrop * backdrop_alpha * (1 - alpha)
    out_rgb = np.divide(weighted, out_alpha, out=np.zeros_like(weighted), where=out_alpha > 0)
    return np.concatenate([out_rgb, out_alpha], axis=-1)
