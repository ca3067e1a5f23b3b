"""Projections and tile math, checked against pyproj and known tile numbers."""
import math

import pytest
from ModestMaps.Core import Coordinate, Point
from ModestMaps.Geo import Location
from pyproj import Transformer

from TileStache.Geography import SphericalMercator, WGS84, getProjectionByName, grid_size

HALF = 20037508.342789244
to_mercator = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


@pytest.mark.parametrize("lat, lon", [(0, 0), (60.17, 24.94), (-33.86, 151.2), (85.05, -179.99), (-85.05, 179.99)])
def test_mercator_location_to_metres_matches_pyproj(lat, lon):
    point = SphericalMercator().locationProj(Location(lat, lon))
    x, y = to_mercator.transform(lon, lat)
    assert (point.x, point.y) == (pytest.approx(x, abs=1e-3), pytest.approx(y, abs=1e-3))


@pytest.mark.parametrize("zoom, column, row", [(0, 0, 0), (12, 656, 1582), (20, 1048575, 0), (5, 31, 31)])
def test_mercator_coordinate_round_trip(zoom, column, row):
    merc = SphericalMercator()
    point = merc.coordinateProj(Coordinate(row, column, zoom))
    back = merc.projCoordinate(point, zoom)
    assert (back.row, back.column, back.zoom) == (pytest.approx(row), pytest.approx(column), zoom)


def test_mercator_world_corners():
    merc = SphericalMercator()
    top_left = merc.coordinateProj(Coordinate(0, 0, 0))
    bottom_right = merc.coordinateProj(Coordinate(1, 1, 0))
    assert (top_left.x, top_left.y) == (pytest.approx(-HALF), pytest.approx(HALF))
    assert (bottom_right.x, bottom_right.y) == (pytest.approx(HALF), pytest.approx(-HALF))
    assert merc.projLocation(Point(HALF, HALF)).lat == pytest.approx(85.0511287798)


def test_osm_tile_of_a_known_place():
    # Helsinki at zoom 12 is tile 2330/1185 in the OSM/Google layout
    coord = SphericalMercator().locationCoordinate(Location(60.1699, 24.9384)).zoomTo(12)
    assert (int(coord.column), int(coord.row)) == (2331, 1185)


def test_wgs84_layout_has_two_tiles_at_zoom_zero():
    wgs = WGS84()
    assert grid_size(wgs, 0) == (2, 1)
    assert grid_size(wgs, 3) == (16, 8)
    west = wgs.coordinateProj(Coordinate(0, 0, 0))
    east = wgs.coordinateProj(Coordinate(1, 2, 0))
    assert (west.x, west.y, east.x, east.y) == (-180, 90, 180, -90)
    coord = wgs.locationCoordinate(Location(45, 90))
    assert (coord.column, coord.row) == (pytest.approx(1.5), pytest.approx(0.25))
    back = wgs.projLocation(wgs.locationProj(Location(12.5, -33)))
    assert (back.lat, back.lon) == (12.5, -33)


@pytest.mark.parametrize("name, cls", [("spherical mercator", SphericalMercator), ("Spherical Mercator", SphericalMercator),
                                       ("WGS84", WGS84), ("wgs84", WGS84),
                                       ("TileStache.Geography:WGS84()", WGS84)])
def test_projection_by_name(name, cls):
    assert isinstance(getProjectionByName(name), cls)


def test_projection_by_module_object():
    assert getProjectionByName("TileStache.Geography:SphericalMercator") is SphericalMercator


def test_projection_by_dotted_path_as_the_original_allowed():
    assert getProjectionByName("TileStache.Geography.SphericalMercator") is SphericalMercator
    with pytest.raises(ValueError, match="no 'Lambert'"):
        getProjectionByName("TileStache.Geography.Lambert")
    with pytest.raises(ValueError, match="cannot import"):
        getProjectionByName("nosuchpackage.Projection")


def test_unknown_projection_names_the_choices():
    with pytest.raises(ValueError, match="spherical mercator"):
        getProjectionByName("lambert")


def test_grid_size_of_custom_projection_defaults_to_square():
    assert grid_size(object(), 4) == (16, 16)
    assert math.isclose(SphericalMercator().locationCoordinate(Location(0, 0)).column, 0.5)
