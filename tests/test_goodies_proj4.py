"""Proj4Projection on the goodie's own EPSG:2400 example: grid formula, pyproj round trips, Mapnik tiles,
seeding and listing, TileJSON bounds in degrees, bad configs."""
from __future__ import annotations

import io
import json

import pytest
from ModestMaps.Core import Coordinate
from ModestMaps.Geo import Location
from PIL import Image
from pyproj import Transformer
from werkzeug.test import Client

import TileStache
from script_helpers import tool, write_config
from TileStache.Errors import ConfigError

RT90 = ("+proj=tmerc +lat_0=0 +lon_0=15.80827777777778 +k=1 +x_0=1500000 +y_0=0 +ellps=bessel "
        "+units=m +no_defs")
RESOLUTIONS = [8192, 4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1]
PROJECTION = (f"TileStache.Goodies.Proj4Projection:Proj4Projection('{RT90}', {RESOLUTIONS}, "
              "transformation=Transformation(1, 0, 0, 0, -1, 0))")
TO_RT90 = Transformer.from_crs("EPSG:4326", RT90, always_xy=True)
FROM_RT90 = Transformer.from_crs(RT90, "EPSG:4326", always_xy=True)
RED = (220, 20, 60, 255)
# A box over central Sweden (lon 17-19, lat 59-60), drawn red on a transparent map in RT90.
STYLE = f"""<?xml version="1.0" encoding="utf-8"?>
<Map srs="{RT90}" background-color="transparent">
  <Style name="box"><Rule><PolygonSymbolizer fill="rgb(220,20,60)"/></Rule></Style>
  <Layer name="box" srs="epsg:4326">
    <StyleName>box</StyleName>
    <Datasource>
      <Parameter name="type">csv</Parameter>
      <Parameter name="inline">wkt
"POLYGON((17 59, 19 59, 19 60, 17 60, 17 59))"
</Parameter>
    </Datasource>
  </Layer>
</Map>
"""


def layer_config(tmp_path, **layer):
    style = tmp_path / "rt90.xml"
    style.write_text(STYLE)
    return {"cache": {"name": "Disk", "path": str(tmp_path / "cache"), "dirs": "portable"},
            "layers": {"rt90": {"provider": {"name": "mapnik", "mapfile": str(style)},
                                "projection": PROJECTION, **layer}}}


def grid_corner(column, row, zoom):
    """The goodie's formula: tile (column, row) at zoom z has its top-left corner at
    (column * 256 * res[z], -row * 256 * res[z]) in RT90 metres."""
    size = 256 * RESOLUTIONS[zoom]
    return column * size, -row * size


def tile_of(lon, lat, zoom):
    x, y = TO_RT90.transform(lon, lat)
    size = 256 * RESOLUTIONS[zoom]
    return int(x // size), int(-y // size)


def test_tile_bounds_follow_the_goodies_formula(tmp_path):
    projection = TileStache.parseConfig(layer_config(tmp_path)).layers["rt90"].projection
    assert projection.base_zoom == 13 and projection.srs == RT90
    for column, row, zoom in [(0, 0, 0), (1, -3, 0), (24, -101, 5), (-7, 12, 9), (5800, -25750, 13)]:
        corner = projection.coordinateProj(Coordinate(row, column, zoom))
        assert (corner.x, corner.y) == pytest.approx(grid_corner(column, row, zoom))
        back = projection.projCoordinate(corner, zoom)
        assert (back.column, back.row, back.zoom) == (column, row, zoom)


def test_locations_round_trip_through_pyproj(tmp_path):
    projection = TileStache.parseConfig(layer_config(tmp_path)).layers["rt90"].projection
    for lat, lon in [(59.3293, 18.0686), (55.605, 13.0038), (67.8558, 20.2253)]:
        x, y = TO_RT90.transform(lon, lat)
        point = projection.locationProj(Location(lat, lon))
        assert (point.x, point.y) == pytest.approx((x, y), abs=1e-6)
        coord = projection.locationCoordinate(Location(lat, lon))
        assert coord.zoom == 13 and (coord.column, coord.row) == pytest.approx((x / 256, -y / 256))
        back = projection.coordinateLocation(coord)
        assert (back.lat, back.lon) == pytest.approx((lat, lon), abs=1e-9)


def test_a_point_off_the_grid_is_refused(tmp_path):
    projection = TileStache.parseConfig(layer_config(tmp_path)).layers["rt90"].projection
    corner = projection.coordinateProj(Coordinate(-101, 24, 5))
    corner.x += 100
    with pytest.raises(TileStache.Core.KnownUnknown):
        projection.projCoordinate(corner, 5)


def test_a_mapnik_tile_on_the_grid_draws_the_box_where_pyproj_puts_it(tmp_path):
    config = TileStache.parseConfig(layer_config(tmp_path))
    client = Client(TileStache.WSGITileServer(config))
    zoom = 4
    column, row = tile_of(17.0, 59.5, zoom)  # the tile holding the box's west edge
    assert row < 0  # rows north of the projection's origin are negative, as in the original
    response = client.get(f"/rt90/{zoom}/{column}/{row}.png")
    assert response.status_code == 200, response.data
    image = Image.open(io.BytesIO(response.data)).convert("RGBA")
    left, top = grid_corner(column, row, zoom)
    resolution = RESOLUTIONS[zoom]
    inside = outside = 0
    for py in range(4, 256, 8):
        for px in range(4, 256, 8):  # each sampled pixel's centre, back in degrees with pyproj
            lon, lat = FROM_RT90.transform(left + (px + 0.5) * resolution, top - (py + 0.5) * resolution)
            margin = 0.03  # about 2 pixels: antialiased edges are neither
            if 17 + margin < lon < 19 - margin and 59 + margin < lat < 60 - margin:
                assert image.getpixel((px, py)) == RED, (px, py, lon, lat)
                inside += 1
            elif not (17 - margin < lon < 19 + margin and 59 - margin < lat < 60 + margin):
                assert image.getpixel((px, py))[3] == 0, (px, py, lon, lat)
                outside += 1
    assert inside >= 20 and outside >= 20


def test_seed_and_list_on_the_grid(tmp_path):
    spec = layer_config(tmp_path)
    path = write_config(tmp_path, spec["layers"], spec["cache"])
    box = ["-b", "59.2", "17.8", "59.6", "18.4"]  # south west north east, in degrees
    listed = tool("list", "-c", path, "-l", "rt90", *box, "4", "5")
    assert listed.returncode == 0, listed.stderr
    names = listed.stdout.split()
    expected = set()
    for zoom in (4, 5):
        columns = {tile_of(lon, lat, zoom)[0] for lon in (17.8, 18.4) for lat in (59.2, 59.6)}
        rows = {tile_of(lon, lat, zoom)[1] for lon in (17.8, 18.4) for lat in (59.2, 59.6)}
        expected |= {f"{zoom}/{c}/{r}" for c in range(min(columns), max(columns) + 1)
                     for r in range(min(rows), max(rows) + 1)}
    assert set(names) == expected and len(names) == len(expected)
    seeded = tool("seed", "-c", path, "-l", "rt90", "-q", *box, "4", "5")
    assert seeded.returncode == 0, seeded.stderr
    files = {str(p.relative_to(tmp_path / "cache" / "rt90"))[:-4]
             for p in (tmp_path / "cache" / "rt90").rglob("*.png")}
    assert files == expected


def test_tilejson_bounds_are_degrees(tmp_path):
    config = TileStache.parseConfig(layer_config(
        tmp_path, bounds={"low": 3, "high": 9, "north": 60, "west": 17, "south": 59, "east": 19}))
    client = Client(TileStache.WSGITileServer(config))
    tilejson = json.loads(client.get("/rt90/tilejson.json").data)
    west, south, east, north = tilejson["bounds"]
    assert (tilejson["minzoom"], tilejson["maxzoom"]) == (3, 9)
    # the box's corners through the grid (zoom 9 tiles of 32 km) and back to degrees
    assert [west, south, east, north] == pytest.approx([17, 59, 19, 60], abs=0.6)
    assert west <= 17 + 1e-6 and south <= 59 + 1e-6 and east >= 19 - 1e-6 and north >= 60 - 1e-6


@pytest.mark.parametrize("projection, needle", [
    ("TileStache.Goodies.Proj4Projection:Proj4Projection('+proj=nonsense', [1])", "Proj cannot read"),
    (f"TileStache.Goodies.Proj4Projection:Proj4Projection('{RT90}', [])", "resolutions"),
    (f"TileStache.Goodies.Proj4Projection:Proj4Projection('{RT90}', [4, 2])", "resolution 1.0"),
    (f"TileStache.Goodies.Proj4Projection:Proj4Projection('{RT90}', [1], transformation=Nope(1))", "Nope"),
    ("TileStache.Goodies.Proj4Projection:__import__('os').system('true')", "__import__"),
])
def test_bad_projections_fail_at_load_naming_layer_and_key(tmp_path, projection, needle):
    with pytest.raises(ConfigError) as error:
        TileStache.parseConfig(layer_config(tmp_path, projection=projection))
    assert "rt90" in str(error.value) and "projection" in str(error.value) and needle in str(error.value)


def test_compose_on_the_grid_puts_the_box_in_the_middle(tmp_path):
    spec = layer_config(tmp_path)
    path = write_config(tmp_path, spec["layers"], spec["cache"])
    out = tmp_path / "composed.png"
    # an extent around the box (lat 59-60, lon 17-19): its middle is in the box, its corners are not
    result = tool("compose", "-c", path, "-l", "rt90", "-e", "61", "15", "58", "21", "-d", "300", "200",
                  "-o", str(out))
    assert result.returncode == 0, result.stderr
    image = Image.open(out).convert("RGBA")
    assert image.size == (300, 200)
    assert image.getpixel((150, 100)) == RED
    for corner in [(2, 2), (297, 2), (2, 197), (297, 197)]:
        assert image.getpixel(corner)[3] == 0, corner


@pytest.mark.parametrize("transformation, rows_grow", [("Transformation(1, 0, 0, 0, -1, 0)", "south"),
                                                       ("Transformation(1, 0, 0, 0, 1, 0)", "north")])
def test_layer_bounds_hold_on_grids_whose_rows_grow_either_way(tmp_path, transformation, rows_grow):
    # The goodie's default transformation has rows growing northwards; bounds must still be the box's tiles.
    projection = f"TileStache.Goodies.Proj4Projection:Proj4Projection('{RT90}', {RESOLUTIONS}, " \
                 f"transformation={transformation})"
    config = layer_config(tmp_path, projection=projection,
                          bounds={"north": 60, "south": 59, "west": 17, "east": 19, "low": 5, "high": 8})
    layer = TileStache.parseConfig(config).layers["rt90"]
    sign = -1 if rows_grow == "south" else 1
    for zoom in (5, 6, 8):
        size = 256 * RESOLUTIONS[zoom]
        x, y = TO_RT90.transform(18, 59.5)
        inside = Coordinate(int((sign * y) // size), int(x // size), zoom)
        assert not layer.bounds.excludes(inside), (zoom, inside)
        x, y = TO_RT90.transform(12, 56)  # southern Sweden, well outside the box
        assert layer.bounds.excludes(Coordinate(int((sign * y) // size), int(x // size), zoom))
    assert layer.bounds.excludes(inside.zoomTo(4).container())  # below the zoom range
