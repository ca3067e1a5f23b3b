"""Grid goodie (UTM): lines where pyproj puts round eastings and northings, kwargs, labels, bad config."""
from __future__ import annotations

import io
import math

import pytest
from ModestMaps.Core import Coordinate
from PIL import Image
from pyproj import Transformer

import TileStache
from TileStache.Errors import ConfigError
from TileStache.Goodies.Providers.Grid import latitude_band, mgrs_square

UTM33_TO_MERCATOR = Transformer.from_crs("+proj=utm +zone=33 +datum=WGS84", "EPSG:3857", always_xy=True)
HALF = math.pi * 6378137
# Tile 8/138/91 spans longitudes 14.06-15.47 and latitudes about 45.8-46.8: UTM zone 33 (central
# meridian 15, easting 500 km), so one vertical line (500 km) and two horizontals (northings
# 5100 km at the top, 5000 km near the bottom).
ZOOM, COLUMN, ROW = 8, 138, 91


def grid_layer(**kwargs):
    config = TileStache.parseConfig({"cache": {"name": "Test"}, "layers": {"grid": {"provider": {
        "class": "TileStache.Goodies.Providers.Grid:UTM", "kwargs": kwargs}}}})
    return config.layers["grid"]


def tile(layer, zoom=ZOOM, column=COLUMN, row=ROW) -> Image.Image:
    mime, body = TileStache.getTile(layer, Coordinate(row, column, zoom), "png")
    assert mime == "image/png"
    return Image.open(io.BytesIO(body)).convert("RGBA")


def to_pixel(easting, northing, zoom=ZOOM, column=COLUMN, row=ROW):
    """Where a UTM 33N point falls in the tile, by pyproj and the mercator tile formula."""
    x, y = UTM33_TO_MERCATOR.transform(easting, northing)
    size = 2 * HALF / 2 ** zoom
    return (x + HALF) / size * 256 - column * 256, (HALF - y) / size * 256 - row * 256


def black_near(image, x, y) -> bool:
    """A black line pixel at the point's one-up-one-left copy, within a pixel of rounding."""
    return any(image.getpixel((int(x) - 1 + dx, int(y) - 1 + dy)) == (0, 0, 0, 255)
               for dx in (-1, 0, 1) for dy in (-1, 0, 1)
               if 0 <= int(x) - 1 + dx < 256 and 0 <= int(y) - 1 + dy < 256)


def test_the_central_meridian_is_the_pixel_column_of_longitude_15():
    image = tile(grid_layer())
    west, east = COLUMN / 2 ** ZOOM * 360 - 180, (COLUMN + 1) / 2 ** ZOOM * 360 - 180
    column = int(256 * (15 - west) / (east - west))  # 170
    assert column == 170
    for y in range(20, 200):  # between the horizontal lines and above the label
        assert image.getpixel((column - 1, y)) == (0, 0, 0, 255), y
        assert image.getpixel((column, y)) == (255, 255, 255, 255), y
        assert image.getpixel((column + 30, y))[3] == 0, y  # ticks go west, nothing east
    opaque = sum(1 for y in range(256) for x in range(256) if image.getpixel((x, y))[3])
    assert opaque < 256 * 256 * 0.1  # a transparent overlay


@pytest.mark.parametrize("spacing, step", [(128, 100_000), (20, 10_000)])
def test_lines_lie_on_round_eastings_and_northings(spacing, step):
    """spacing 128 (default) over a ~150 km tile diagonal: 100 km lines; spacing 20: 10 km."""
    image = tile(grid_layer(spacing=spacing))
    checked = 0
    lines = range(300_000, 700_001, step), range(5_000_000, 5_300_001, step)
    samples = range(step // 20, 400_001, step // 10)  # halfway between ticks
    points = [(e, 5_000_000 + s) for e in lines[0] for s in samples]  # along the verticals
    points += [(300_000 + s, n) for n in lines[1] for s in samples]  # along the horizontals
    for easting, northing in points:
        x, y = to_pixel(easting, northing)
        if 2 <= x < 254 and 2 <= y < 254:
            assert black_near(image, x, y), (easting, northing, x, y)
            checked += 1
    assert checked > (20 if step == 100_000 else 200)


def test_a_coarser_spacing_drops_the_finer_lines():
    fine, coarse = tile(grid_layer(spacing=20)), tile(grid_layer())
    x, y = to_pixel(490_000, 5_050_000)  # a 10 km line, not a 100 km one
    assert black_near(fine, x, y) and not black_near(coarse, x, y)


def test_labels_sit_above_and_right_of_intersections_in_both_displays():
    x, y = (int(v) for v in to_pixel(500_000, 5_000_000))
    images = {display: tile(grid_layer(display=display)) for display in ("UTM", "MGRS")}
    for image in images.values():
        box = [image.getpixel((px, py)) for px in range(x + 1, x + 40) for py in range(y - 17, y - 4)]
        assert sum(p == (255, 255, 255, 0x99) for p in box) > 20  # the label's backing
        assert sum(p == (0, 0, 0, 255) for p in box) > 5  # its text
    assert images["UTM"].tobytes() != images["MGRS"].tobytes()


def test_mgrs_letters_of_a_known_point():
    # The Washington Monument, 38.8895 N 77.0353 W, is MGRS 18S UJ 23487 06483.
    easting, northing = Transformer.from_crs("EPSG:4326", "+proj=utm +zone=18 +datum=WGS84",
                                             always_xy=True).transform(-77.0353, 38.8895)
    assert (easting, northing) == pytest.approx((323487, 4306483), abs=15)  # 4 decimals: about 10 m
    assert latitude_band(38.8895) + " " + mgrs_square(18, easting, northing) == "S UJ"


@pytest.mark.parametrize("path", ["TileStache.Goodies.Providers.Grid:UTM", "TileStache.Goodies.Providers.Grid.UTM",
                                  "TileStache.Goodies.Providers.Grid:Provider"])
def test_class_paths_load(path):
    config = TileStache.parseConfig({"cache": {"name": "Test"}, "layers": {"grid": {"provider": {
        "class": path, "kwargs": {"display": "MGRS", "spacing": 200, "tick": 10}}}}})
    assert tile(config.layers["grid"]).size == (256, 256)


@pytest.mark.parametrize("kwargs, key", [({"display": "DMS"}, "provider.display"),
                                         ({"spacing": 0}, "provider.spacing"),
                                         ({"tick": "long"}, "provider.tick"),
                                         ({"color": "red"}, "provider.color")])
def test_bad_kwargs_fail_at_load_naming_layer_and_key(kwargs, key):
    with pytest.raises(ConfigError) as error:
        grid_layer(**kwargs)
    assert "grid" in str(error.value) and key in str(error.value)
