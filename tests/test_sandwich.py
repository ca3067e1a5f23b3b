"""Sandwich compositing on real Mapnik tiles, against NumPy reference compositions."""
import io
import os

import numpy as np
import pytest
from ModestMaps.Core import Coordinate
from PIL import Image

import TileStache
from TileStache.Errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = os.path.join(ROOT, "examples", "world.xml")
COORD = Coordinate(2, 4, 3)


def build(stack, **more):
    layers = {"world": {"provider": {"name": "mapnik", "mapfile": WORLD}},
              "stencil": {"provider": {"name": "mapnik", "mapfile": WORLD}, "pixel effect": {"name": "blackwhite"}},
              "sandwich": {"provider": {"name": "Sandwich", "stack": stack}}}
    layers.update(more)
    return TileStache.parseConfig({"cache": {"name": "Test"}, "layers": layers})


def pixels(config, name):
    body = TileStache.getTile(config.layers[name], COORD, "png")[1]
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"), dtype=np.float64) / 255


def assert_close(actual, expected, tolerance=1.5 / 255):
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= tolerance


@pytest.fixture(scope="module")
def world():
    return pixels(build([{"color": "#000"}]), "world")  # opaque map tile: the sea is painted


def solid(hex_rgb):
    return np.array([int(hex_rgb[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def test_color_alone():
    out = pixels(build({"color": "#ff9900"}), "sandwich")
    assert_close(out, np.broadcast_to([1, 0.6, 0, 1], out.shape))
    half = pixels(build([{"color": "#ff990080"}]), "sandwich")
    assert_close(half, np.broadcast_to([1, 0.6, 0, 128 / 255], out.shape))


def test_src_echoes_the_layer(world):
    assert_close(pixels(build([{"src": "world"}]), "sandwich"), world, 0)


@pytest.mark.parametrize("mode, formula", [
    ("multiply", lambda b, s: b * s),
    ("screen", lambda b, s: 1 - (1 - b) * (1 - s)),
    ("add", lambda b, s: np.minimum(1, b + s)),
    ("subtract", lambda b, s: np.maximum(0, b - s)),
    ("linear light", lambda b, s: np.clip(b + 2 * s - 1, 0, 1)),
    ("hard light", lambda b, s: np.where(s <= 0.5, 2 * b * s, 1 - 2 * (1 - b) * (1 - s))),
])
def test_blend_modes_with_opacity(world, mode, formula):
    base = solid("#5a7fb0")
    out = pixels(build([{"color": "#5a7fb0"}, {"src": "world", "mode": mode, "opacity": 0.4}]), "sandwich")
    top = world[..., :3]
    expected_rgb = base * 0.6 + formula(base, top) * 0.4
    assert_close(out[..., :3], expected_rgb)
    assert_close(out[..., 3], np.ones(out.shape[:2]))
    assert np.abs(out[..., :3] - base).max() > 0.05  # the map shows through


def test_mask_shows_source_only_where_the_mask_is_white(world):
    config = build([{"color": "#204060"}, {"src": "world", "mask": "stencil"}])
    out, stencil = pixels(config, "sandwich"), pixels(config, "stencil")
    white = stencil[..., 0] > 0.5
    assert 0.05 < white.mean() < 0.95  # the stencil really has both
    expected = np.where(white[..., None], world[..., :3], solid("#204060"))
    assert_close(out[..., :3], expected)


def test_zoom_limits_and_adjustments(world):
    stack = [{"color": "#ffffff"},
             {"src": "world", "zoom": "5-9"},
             {"color": "#102030", "zoom": "3", "adjustments": [["threshold", [20]]]}]
    out = pixels(build(stack), "sandwich")
    assert_close(out[..., :3], np.broadcast_to([0, 1, 1], out[..., :3].shape))  # 16 < 20, 32 >= 20, 48 >= 20
    skipped = pixels(build(stack[:2]), "sandwich")  # the map step is for zooms 5-9 only
    assert_close(skipped, np.ones(skipped.shape), 0)
    curves = pixels(build([{"src": "world", "adjustments": [["curves2", [[[0, 255], [255, 0]]]]]}]), "sandwich")
    assert_close(curves[..., :3], 1 - world[..., :3])  # an inverting map


def test_alpha_over_transparent_matches_pillow(world):
    config = build([{"color": "#00ff0040"}, {"color": "#ff000080"}])
    out = (pixels(config, "sandwich") * 255).round()
    bottom = Image.new("RGBA", (256, 256), (0, 255, 0, 0x40))
    top = Image.new("RGBA", (256, 256), (255, 0, 0, 0x80))
    reference = np.asarray(Image.alpha_composite(bottom, top), dtype=np.float64)
    assert np.abs(out - reference).max() <= 2


@pytest.mark.parametrize("stack, words", [
    ([{"src": "nowhere"}], ["nowhere", "not a layer"]),
    ([{"src": "world", "mask": "nothing"}], ["nothing"]),
    ([{"src": "sandwich"}], ["refers back", "sandwich -> sandwich"]),
    ([{"color": "orange"}], ["colour"]),
    ([{"src": "world", "mode": "dissolve"}], ["dissolve"]),
    ([{"src": "world", "opacity": 2}], ["opacity"]),
    ([{"mask": "world"}], ["src or color"]),
])
def test_bad_stacks_fail_at_load(stack, words):
    with pytest.raises(ConfigError) as error:
        build(stack)
    assert error.value.layer == "sandwich" and error.value.key == "provider.stack"
    for word in words:
        assert word in str(error.value)


def test_cycles_through_other_sandwiches_fail_at_load():
    with pytest.raises(ConfigError) as error:
        build([{"src": "other"}], other={"provider": {"name": "sandwich", "stack": [{"src": "sandwich"}]}})
    assert "refers back" in str(error.value) and error.value.key == "provider.stack"


def test_image_file_source(tmp_path):
    Image.new("RGBA", (256, 256), (10, 200, 30, 255)).save(tmp_path / "green.png")
    config = TileStache.parseConfig(str(_write(tmp_path, {"cache": {"name": "Test"}, "layers": {
        "s": {"provider": {"name": "Sandwich", "stack": [{"src": "green.png", "opacity": 0.5}]}}}})))
    out = pixels(config, "s")
    assert_close(out, np.broadcast_to([10 / 255, 200 / 255, 30 / 255, 0.5], out.shape))


def _write(tmp_path, spec):
    import json
    path = tmp_path / "tilestache.cfg"
    path.write_text(json.dumps(spec))
    return path
