"""Tile formats: extension -> (MIME type, format name), and image encoding.

Per-format encoder defaults live here and nowhere else; a layer's
``png options``, ``jpeg options`` and ``webp options`` are merged over them.
"""
from __future__ import annotations

import io

from PIL import Image

# Extensions every layer understands unless its provider says otherwise.
IMAGE_TYPES: dict[str, tuple[str, str]] = {
    "png": ("image/png", "PNG"),
    "jpg": ("image/jpeg", "JPEG"),
    "jpeg": ("image/jpeg", "JPEG"),
    "webp": ("image/webp", "WEBP"),
    "gif": ("image/gif", "GIF"),
    "tif": ("image/tiff", "TIFF"),
    "tiff": ("image/tiff", "TIFF"),
}

# Pillow keyword defaults for each format we encode.
ENCODER_DEFAULTS: dict[str, dict] = {
    "PNG": {"compress_level": 6},
    "JPEG": {"quality": 75},
    "WEBP": {"quality": 80, "method": 2},
    "GIF": {},
    "TIFF": {},
}

# Layer config keys holding encoder options, by format name.
OPTION_KEYS = {"PNG": "png options", "JPEG": "jpeg options", "WEBP": "webp options"}

# Formats that can not carry transparency.
OPAQUE_FORMATS = {"JPEG"}


def encoder_options(format: str, layer_options: dict | None = None) -> dict:
    """Pillow save() keywords for a format: defaults, then the layer's options."""
    options = dict(ENCODER_DEFAULTS.get(format.upper(), {}))
    options.update(layer_options or {})
    return options


def encode(image: Image.Image, format: str, options: dict | None = None) -> bytes:
    """Encode a Pillow image in a format with the given save() keywords."""
    if format.upper() in OPAQUE_FORMATS and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    if options and ("palette" in options or "palette256" in options):
        from .Pixels import apply_palette

        image, options = apply_palette(image, options)
    buffer = io.BytesIO()
    image.save(buffer, format, **(options or {}))
    return buffer.getvalue()


def transparent_tile(format: str, width: int, height: int) -> bytes:
    """A fully transparent image of the given size (white for formats without alpha)."""
    if format.upper() in OPAQUE_FORMATS:
        image = Image.new("RGB", (width, height), (255, 255, 255))
    else:
        image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    return encode(image, format)
