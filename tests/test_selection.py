"""TileStache.Selection: tile ranges of boxes, tile lists, coverage polygons, metatile grouping."""
from __future__ import annotations

import pytest
from ModestMaps.Core import Coordinate

from TileStache.Core import Metatile
from TileStache.Geography import WGS84, SphericalMercator
from TileStache.Selection import (BBox, SelectionError, bbox_metatiles, bbox_tile_range, check_bbox, check_zooms,
                                  group_by_metatile, parse_tile_list, select_tiles, world_bbox)

MERCATOR = SphericalMercator()


@pytest.mark.parametrize("bbox, zoom, expected", [
    (BBox(0, 0, 10, 10), 3, (4, 3, 4, 3)),            # south edge on a tile edge: that row excluded
    (BBox(-0.1, -0.1, 0.1, 0.1), 1, (0, 0, 1, 1)),    # straddles the centre
    (BBox(-85.05112878, -180, 85.05112878, 180), 2, (0, 0, 3, 3)),  # the whole world
    (BBox(10, 10, 10, 10), 4, (8, 7, 8, 7)),          # a point is one tile
])
def test_bbox_tile_range(bbox, zoom, expected):
    assert bbox_tile_range(MERCATOR, bbox, zoom) == expected


def test_padding_is_clipped_to_the_world():
    assert bbox_tile_range(MERCATOR, BBox(80, -179, 85, -178), 3, padding=2) == (0, 0, 2, 2)


def test_world_bbox_of_each_projection():
    south, west, north, east = world_bbox(MERCATOR)
    assert [round(v, 5) for v in (south, west, north, east)] == [-85.05113, -180, 85.05113, 180]
    assert [round(v, 9) for v in world_bbox(WGS84())] == [-90, -180, 90, 180]
    check_bbox(WGS84(), BBox(-89, -180, 89, 180))
    with pytest.raises(SelectionError, match="outside the projection"):
        check_bbox(MERCATOR, BBox(-89, -180, 89, 180))


@pytest.mark.parametrize("bbox, message", [
    (BBox(5, 0, 1, 1), "south"), (BBox(0, 5, 1, 1), "west"), (BBox(0, 0, float("nan"), 1), "finite"),
    (BBox(0, -181, 1, 1), "outside"),
])
def test_bad_boxes(bbox, message):
    with pytest.raises(SelectionError, match=message):
        check_bbox(MERCATOR, bbox)


def test_zooms_sorted_and_checked():
    assert check_zooms([3, 1, 3], 0, 5) == [1, 3]
    with pytest.raises(SelectionError, match="zoom 6 is outside the layer's zoom range 2..5"):
        check_zooms([6], 2, 5)


def test_tile_list_lines():
    coords = parse_tile_list(["1/0/1", "  # comment", "", "12/656/1582.png  # tail"])
    assert [(c.zoom, c.column, c.row) for c in coords] == [(1, 0, 1), (12, 656, 1582)]
    with pytest.raises(SelectionError, match="line 1"):
        parse_tile_list(["1/2"])


def test_wgs84_world_has_two_tiles_at_zoom_0():
    tiles = list(select_tiles(WGS84(), [0]))
    assert [(c.column, c.row) for c in tiles] == [(0, 0), (1, 0)]


def test_group_by_metatile_keeps_first_seen_order():
    coords = [Coordinate(5, 5, 4), Coordinate(4, 4, 4), Coordinate(0, 9, 4), Coordinate(7, 6, 4)]
    firsts = group_by_metatile(Metatile(rows=4, columns=4), coords)
    assert [(c.column, c.row) for c in firsts] == [(4, 4), (8, 0)]


@pytest.mark.parametrize("bbox, rows, columns, padding", [
    (BBox(30.5, -10.5, 55.5, 20.5), 4, 4, 0),
    (BBox(-60, -170, 10, 5), 2, 3, 1),
    (None, 4, 4, 0),
])
def test_bbox_metatiles_match_grouping_the_tiles(bbox, rows, columns, padding):
    metatile = Metatile(rows=rows, columns=columns)
    zooms = [0, 2, 5]
    walked = list(bbox_metatiles(MERCATOR, metatile, bbox, zooms, padding))
    grouped = group_by_metatile(metatile, select_tiles(MERCATOR, zooms, bbox, padding))
    assert walked == grouped
