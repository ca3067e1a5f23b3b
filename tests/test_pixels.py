"""Encoder options (palettes, JPEG, WebP) and pixel effects, on real Mapnik tiles of the world style."""
import io
import json
import os

import pytest
from ModestMaps.Core import Coordinate
from PIL import Image, ImageChops, ImageFilter, ImageStat

import TileStache
from TileStache.Errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = os.path.join(ROOT, "examples", "world.xml")
COORD = Coordinate(2, 2, 2)  # Europe, Africa and the Atlantic: several fills, borders and labels


def layer(**extra):
    return dict({"provider": {"name": "mapnik", "mapfile": WORLD}}, **extra)


def config_with(layers, tmp_path=None, files=None):
    """A configuration; with tmp_path it is written as a file so relative paths resolve there."""
    spec = {"cache": {"name": "Test"}, "layers": layers}
    if tmp_path is None:
        return TileStache.parseConfig(spec)
    for name, data in (files or {}).items():
        (tmp_path / name).write_bytes(data)
    path = tmp_path / "tilestache.cfg"
    path.write_text(json.dumps(spec))
    return TileStache.parseConfig(str(path))


def tile(config, name, ext="png"):
    mime, body = TileStache.getTile(config.layers[name], COORD, ext)
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


@pytest.fixture(scope="module")
def plain():
    """The unaffected RGBA tile, the reference for every effect."""
    return tile(config_with({"plain": layer()}), "plain").convert("RGBA")


def max_difference(a, b):
    """The largest per-channel difference between two images of one mode (alpha included)."""
    return max(high for low, high in ImageChops.difference(a, b).getextrema())


def colours(image):
    return {rgb for count, rgb in image.getcolors(image.width * image.height)}


def total(image):
    return sum(ImageStat.Stat(image).sum)


def luminance(image):
    return image.convert("RGB").convert("L")


def act_bytes(colours, transparent=None):
    body = b"".join(bytes(c) for c in colours) + bytes(3 * (256 - len(colours)))
    if transparent is None:
        return body
    return body + len(colours).to_bytes(2, "big") + transparent.to_bytes(2, "big")


# -- palettes and encoders -----------------------------------------------------

def test_palette256_gives_a_paletted_png_close_to_the_original(plain):
    image = tile(config_with({"p": layer(**{"png options": {"palette256": True}})}), "p")
    assert image.format == "PNG" and image.mode == "P"
    assert len(image.getcolors(256)) <= 256
    assert max_difference(image.convert("RGBA"), plain) <= 64  # an adaptive palette stays close


def test_act_palette_maps_every_pixel_to_a_palette_colour(tmp_path, plain):
    colours = [(0, 0, 0), (255, 255, 255), (166, 203, 227), (241, 213, 155), (188, 217, 166), (244, 191, 166)]
    config = config_with({"p": layer(**{"png options": {"palette": "colours.act"}})},
                         tmp_path, {"colours.act": act_bytes(colours)})
    image = tile(config, "p")
    assert image.mode == "P"
    used = {rgb for count, rgb in image.convert("RGB").getcolors(256)}
    assert used <= set(colours) and len(used) >= 3
    # the sea colour of the style is in the palette, so sea pixels keep it exactly
    assert image.convert("RGB").getpixel((5, 5)) == plain.convert("RGB").getpixel((5, 5)) == (166, 203, 227)


def test_act_palette_transparent_index(tmp_path):
    colours = [(0, 0, 0), (255, 255, 255), (166, 203, 227)]
    config = config_with({"p": layer(**{"png options": {"palette": "t.act"}})},
                         tmp_path, {"t.act": act_bytes(colours, transparent=2)})
    image = tile(config, "p")
    assert image.info.get("transparency") == 2
    rgba = image.convert("RGBA")
    assert rgba.getpixel((5, 5))[3] == 0  # the sea colour is the transparent index


def test_missing_palette_file_names_layer_and_key(tmp_path):
    with pytest.raises(ConfigError) as error:
        config_with({"roads": layer(**{"png options": {"palette": "nope.act"}})}, tmp_path)
    assert "roads" in str(error.value) and "png options" in str(error.value)
    assert error.value.layer == "roads" and error.value.key == "png options"


def test_bad_encoder_option_fails_at_load():
    with pytest.raises(ConfigError) as error:
        config_with({"j": layer(**{"jpeg options": {"quality": 500}})})
    assert error.value.key == "jpeg options" and "quality" in str(error.value)


def test_jpeg_quality_and_progressive(plain):
    config = config_with({"low": layer(**{"jpeg options": {"quality": 20}}),
                          "high": layer(**{"jpeg options": {"quality": 95, "progressive": True}})})
    low = TileStache.getTile(config.layers["low"], COORD, "jpg")[1]
    high = TileStache.getTile(config.layers["high"], COORD, "jpg")[1]
    assert len(low) < len(high)
    assert Image.open(io.BytesIO(high)).info.get("progressive") and not Image.open(io.BytesIO(low)).info.get("progressive")
    diff_low = ImageChops.difference(Image.open(io.BytesIO(low)).convert("RGB"), plain.convert("RGB"))
    diff_high = ImageChops.difference(Image.open(io.BytesIO(high)).convert("RGB"), plain.convert("RGB"))
    assert total(diff_high) < total(diff_low)


def test_webp_lossless_is_exact(plain):
    config = config_with({"w": layer(**{"webp options": {"lossless": True}})})
    mime, body = TileStache.getTile(config.layers["w"], COORD, "webp")
    assert mime == "image/webp"
    image = Image.open(io.BytesIO(body)).convert("RGBA")
    assert max_difference(image, plain) == 0


# -- pixel effects -------------------------------------------------------------

def effect_tile(spec):
    return tile(config_with({"e": layer(**{"pixel effect": spec})}), "e").convert("RGBA")


def test_blackwhite_is_pure_black_or_white(plain):
    image = effect_tile({"name": "blackwhite"})
    values = {pixel[:3] for pixel in colours(image)}
    assert values == {(0, 0, 0), (255, 255, 255)}
    assert image.getchannel("A").tobytes() == plain.getchannel("A").tobytes()


def test_greyscale_is_the_luminance(plain):
    image = effect_tile({"name": "greyscale"})
    r, g, b, a = image.split()
    assert r.tobytes() == g.tobytes() == b.tobytes()
    assert ImageChops.difference(r, luminance(plain)).getextrema()[1] <= 1


def test_desaturate_is_between_colour_and_grey(plain):
    image = effect_tile({"name": "desaturate", "factor": 0.5}).convert("RGB")
    grey = luminance(plain).convert("RGB")
    expected = Image.blend(plain.convert("RGB"), grey, 0.5)
    assert ImageChops.difference(image, expected).getextrema() <= ((0, 1), (0, 1), (0, 1))
    assert max_difference(image, plain.convert("RGB")) > 20


def test_pixelate_makes_uniform_blocks(plain):
    image = effect_tile({"name": "pixelate", "reduction": 8})
    for top in range(0, 256, 8):
        for left in range(0, 256, 8):
            block = image.crop((left, top, left + 8, top + 8))
            assert len(block.getcolors(64)) == 1
    assert max_difference(image, plain) > 20


def test_halftone_inks_are_on_or_off(plain):
    image = effect_tile({"name": "halftone"})
    assert {v for pixel in colours(image) for v in pixel[:3]} == {0, 255}
    assert image.getchannel("A").tobytes() == plain.getchannel("A").tobytes()


def roughness(image):
    grey = luminance(image)
    shifted = ImageChops.offset(grey, 1, 0)
    return total(ImageChops.difference(grey, shifted))


def test_blur_smooths(plain):
    image = effect_tile({"name": "blur", "radius": 3})
    assert roughness(image) < roughness(plain) * 0.6
    assert ImageChops.difference(image, plain.filter(ImageFilter.GaussianBlur(3))).getextrema()[0][1] <= 2


@pytest.mark.parametrize("spec, words", [
    ({"name": "sparkle"}, ["unknown pixel effect", "sparkle"]),
    ({"name": "blur", "sigma": 2}, ["blur", "sigma"]),
    ({"name": "pixelate", "reduction": "big"}, ["reduction"]),
])
def test_bad_pixel_effect_fails_at_load(spec, words):
    with pytest.raises(ConfigError) as error:
        config_with({"fx": layer(**{"pixel effect": spec})})
    assert error.value.layer == "fx" and error.value.key == "pixel effect"
    for word in words:
        assert word in str(error.value)
