"""Image encoder options from a layer's config, and palettes for PNG tiles.

A layer's ``png options``, ``jpeg options`` and ``webp options`` are checked
and translated here once, at config load; ``Formats.encode`` applies them.

- ``png options``: ``palette`` (an Adobe Colour Table .act file, path relative
  to the config or a URL), ``palette256`` (true: an adaptive palette of up to
  256 colours, alpha kept), ``optimize`` (true: smaller, slower files),
  ``compress_level`` (0-9).
- ``jpeg options``: ``quality`` (1-100), ``progressive``, ``optimize``.
- ``webp options``: ``quality`` (0-100), ``lossless``, ``method`` (0-6).

An .act file is 768 bytes of 256 RGB triples, optionally followed by two
big-endian 16-bit numbers: how many colours are used and which index is
transparent (0xFFFF for none). Pixels less than half opaque become that index.
"""
from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from numbers import Real

from PIL import Image

from .Errors import ConfigError

# Keys each options block accepts, and what kind of value: bool, or an inclusive int range.
OPTION_RULES: dict[str, dict[str, object]] = {
    "png options": {"palette": str, "palette256": bool, "optimize": bool, "compress_level": (0, 9)},
    "jpeg options": {"quality": (1, 100), "progressive": bool, "optimize": bool},
    "webp options": {"quality": (0, 100), "lossless": bool, "method": (0, 6)},
}


@dataclass(frozen=True)
class Palette:
    """A fixed palette read from an .act file: a "P" image carrying it, and its transparent index."""

    image: Image.Image
    transparent: int | None
    source: str

    def __repr__(self) -> str:
        return f"Palette({self.source!r})"


def read_act(data: bytes, source: str = "") -> Palette:
    """A Palette from the bytes of an Adobe Colour Table."""
    if len(data) not in (768, 772):
        raise ValueError(f"{source or 'palette'} is not an .act file (768 or 772 bytes, got {len(data)})")
    count, transparent = 256, None
    if len(data) == 772:
        count = int.from_bytes(data[768:770], "big") or 256
        index = int.from_bytes(data[770:772], "big")
        transparent = index if index < count else None
    colours = data[: 3 * count]
    image = Image.new("P", (1, 1))
    image.putpalette(colours + colours[-3:] * (256 - count))  # pad with a used colour
    return Palette(image, transparent, source)


def load_palette(location: str) -> Palette:
    """A Palette from an .act file path or URL."""
    if "://" in location:
        with urllib.request.urlopen(location, timeout=30) as response:
            return read_act(response.read(), location)
    with open(location, "rb") as file:
        return read_act(file.read(), location)


def encoder_options(key: str, raw: dict, dirpath: str, layer: str) -> dict:
    """Checked Pillow save() options for one options block ("png options", ...) of a layer."""
    from .Config import resolve_path

    rules = OPTION_RULES[key]
    options: dict = {}
    for name, value in raw.items():
        rule = rules.get(name)
        if rule is None:
            raise ConfigError(f"unknown option {name!r} (known: {', '.join(sorted(rules))})", layer, key)
        if rule is bool and not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, not {value!r}", layer, key)
        if rule is str and not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, not {value!r}", layer, key)
        if isinstance(rule, tuple):
            low, high = rule
            if isinstance(value, bool) or not isinstance(value, Real) or not low <= value <= high:
                raise ConfigError(f"{name} must be a number from {low} to {high}, not {value!r}", layer, key)
            value = int(value)
        options[name] = value

    if "palette" in options:
        location = resolve_path(dirpath, options["palette"])
        try:
            options["palette"] = load_palette(location)
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read palette {location}: {error}", layer, key) from None
    if options.get("palette256") is False:
        del options["palette256"]
    if "palette" in options and "palette256" in options:
        raise ConfigError("use palette or palette256, not both", layer, key)
    return options


def apply_palette(image: Image.Image, options: dict) -> tuple[Image.Image, dict]:
    """(image, Pillow save() keywords): the image quantised as "palette"/"palette256" ask."""
    options = dict(options)
    palette = options.pop("palette", None)
    adaptive = options.pop("palette256", False)
    if palette is not None:
        return quantize_to(image, palette, options)
    if adaptive:
        return adaptive_palette(image), options
    return image, options


def adaptive_palette(image: Image.Image) -> Image.Image:
    """A "P" image of up to 256 colours chosen for this image; alpha survives in the palette."""
    if image.mode == "P":
        return image
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA")
    return image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def quantize_to(image: Image.Image, palette: Palette, options: dict) -> tuple[Image.Image, dict]:
    """(a "P" image using a fixed palette, save() keywords with its transparency)."""
    rgba = image.convert("RGBA")
    indexed = rgba.convert("RGB").quantize(palette=palette.image, dither=Image.Dither.NONE)
    if palette.transparent is not None:
        clear = rgba.getchannel("A").point(lambda a: 255 if a < 128 else 0, "L")
        indexed.paste(palette.transparent, mask=clear)
        options["transparency"] = palette.transparent
    return indexed, options
