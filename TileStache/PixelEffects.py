"""Pixel effects: whole-tile image filters named by a layer's ``pixel effect``.

A layer applies its effect to every rendered image tile before encoding::

    "pixel effect": {"name": "desaturate", "factor": 0.6}

Effects and their parameters (the original TileStache's names and defaults):

- ``blackwhite``: every pixel becomes pure black or pure white (dithered), alpha kept.
- ``greyscale``: colours become their luminance, alpha kept.
- ``desaturate``: ``factor`` from 0 (unchanged) to 1 (greyscale), default 0.85.
- ``pixelate``: blocks of ``reduction`` x ``reduction`` pixels (default 5) share one colour.
- ``halftone``: each CMYK ink is dithered to on/off, alpha kept.
- ``blur``: Gaussian blur of ``radius`` pixels (default 5).
"""
from __future__ import annotations

from numbers import Real

from PIL import Image, ImageFilter


def _keep_alpha(original: Image.Image, changed: Image.Image) -> Image.Image:
    """changed in the original's mode, with the original's alpha channel if it had one."""
    changed = changed.convert(original.mode)
    if "A" in original.getbands():
        changed.putalpha(original.getchannel("A"))
    return changed


def _rgb(image: Image.Image) -> Image.Image:
    """The image's colour channels as RGB (alpha dropped, palettes expanded)."""
    if image.mode in ("RGB", "L"):
        return image
    return image.convert("RGBA").convert("RGB") if image.mode == "P" else image.convert("RGB")


class PixelEffect:
    """Base of all effects: ``apply(image) -> image`` in the image's own mode."""

    name = ""

    def apply(self, image: Image.Image) -> Image.Image:
        """The image with this effect applied; mode and size unchanged."""
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA")
        return self.apply_effect(image)

    def apply_effect(self, image: Image.Image) -> Image.Image:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class Blackwhite(PixelEffect):
    """Pure black and white (Floyd-Steinberg dithered), alpha kept."""

    def apply_effect(self, image: Image.Image) -> Image.Image:
        return _keep_alpha(image, _rgb(image).convert("1"))


class Greyscale(PixelEffect):
    """Luminance only, alpha kept."""

    def apply_effect(self, image: Image.Image) -> Image.Image:
        return _keep_alpha(image, _rgb(image).convert("L"))


class Desaturate(PixelEffect):
    """A blend towards greyscale: factor 0 leaves the image, 1 makes it grey."""

    def __init__(self, factor: float = 0.85) -> None:
        self.factor = min(max(_number(factor, "factor"), 0.0), 1.0)

    def apply_effect(self, image: Image.Image) -> Image.Image:
        grey = _keep_alpha(image, _rgb(image).convert("L"))
        return Image.blend(image, grey, self.factor)


class Pixelate(PixelEffect):
    """Square blocks of ``reduction`` pixels a side, each one colour."""

    def __init__(self, reduction: int = 5) -> None:
        self.reduction = max(int(_number(reduction, "reduction")), 1)

    def apply_effect(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        small = image.resize((max(1, width // self.reduction), max(1, height // self.reduction)),
                             Image.Resampling.NEAREST)
        return small.resize(image.size, Image.Resampling.NEAREST)


class Halftone(PixelEffect):
    """Each CMYK ink dithered to fully on or off, alpha kept."""

    def apply_effect(self, image: Image.Image) -> Image.Image:
        inks = [band.convert("1").convert("L") for band in _rgb(image).convert("CMYK").split()]
        return _keep_alpha(image, Image.merge("CMYK", inks))


class Blur(PixelEffect):
    """Gaussian blur; a larger radius is blurrier."""

    def __init__(self, radius: float = 5) -> None:
        self.radius = max(_number(radius, "radius"), 0)

    def apply_effect(self, image: Image.Image) -> Image.Image:
        return image.filter(ImageFilter.GaussianBlur(self.radius))


EFFECTS: dict[str, type[PixelEffect]] = {
    "blackwhite": Blackwhite,
    "greyscale": Greyscale,
    "desaturate": Desaturate,
    "pixelate": Pixelate,
    "halftone": Halftone,
    "blur": Blur,
}


def _number(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{key} must be a number, not {value!r}")
    return float(value)


def from_config(spec: dict) -> PixelEffect:
    """A pixel effect from its config dict: {"name": ..., parameters...}."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError('a pixel effect needs a "name"')
    name = str(spec["name"]).strip().lower()
    if name not in EFFECTS:
        raise ValueError(f"unknown pixel effect {spec['name']!r} (known: {', '.join(sorted(EFFECTS))})")
    params = {key: value for key, value in spec.items() if key != "name"}
    try:
        return EFFECTS[name](**params)
    except TypeError:
        raise ValueError(f"pixel effect {name!r} does not take {sorted(params)}") from None
