"""The vector provider over OGR files: the same rows as test_vector's PostGIS tables, written with pyogrio.

GeoJSON, Shapefile and GeoPackage sources must give the same features as PostGIS.
"""
from __future__ import annotations

import json
import os

import mapbox_vector_tile
import numpy as np
import pyogrio.raw
import pytest
import shapely
from ModestMaps.Core import Coordinate
from pyproj import Transformer
from shapely.geometry import Point, shape

import TileStache
from test_vector import POINTS, TABLES, make_config, postgis_layer, vector_db  # noqa: F401 (fixture)

DRIVERS = {"GeoJSON": "geojson", "ESRI Shapefile": "shp", "GPKG": "gpkg"}
GEOMETRY_TYPES = {"points": "Point", "lines": "LineString", "polygons": "Polygon"}
# (zoom, x, y) of tiles to compare, in each projection
TILES = {"WGS84": [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 3, 1), (2, 4, 1)],
         "spherical mercator": [(0, 0, 0), (1, 0, 0), (1, 1, 1), (2, 2, 1), (3, 4, 3)]}


def write_file(path: str, driver: str, rows: list, geometry_type: str, srid: int = 4326) -> str:
    geometries = np.array([row[3] for row in rows], dtype=object)
    if srid != 4326:
        to = Transformer.from_crs(4326, srid, always_xy=True)
        geometries = shapely.transform(geometries, lambda c: np.column_stack(to.transform(c[:, 0], c[:, 1])))
    fields = [np.array([row[0] for row in rows], dtype=np.int32),
              np.array([row[1] for row in rows], dtype=object),
              np.array([row[2] for row in rows], dtype=object)]
    pyogrio.raw.write(path, shapely.to_wkb(geometries), fields, ["id", "name", "kind"], driver=driver,
                      geometry_type=geometry_type, crs=f"EPSG:{srid}")
    return path


@pytest.fixture(scope="session")
def vector_files(tmp_path_factory):
    """{(driver, table): path} for every driver and table, and a 3857 GeoPackage of polygons."""
    folder = tmp_path_factory.mktemp("vector-files")
    files = {}
    for driver, ext in DRIVERS.items():
        for table, rows in TABLES.items():
            files[driver, table] = write_file(str(folder / f"{table}.{ext}"), driver, rows, GEOMETRY_TYPES[table])
    files["GPKG", "polygons_3857"] = write_file(str(folder / "polygons_3857.gpkg"), "GPKG",
                                                TABLES["polygons"], "Polygon", 3857)
    return files


def file_layer(path: str, driver: str, projection: str, **provider) -> dict:
    spec = {"name": "vector", "driver": driver, "parameters": {"file": path}}
    spec.update(provider)
    return {"projection": projection, "provider": spec}


def by_id(body: bytes) -> dict:
    return {f["properties"]["id"]: f for f in json.loads(body)["features"]}


def same_geometry(a: dict, b: dict, tolerance: float) -> bool:
    first, second = shapely.normalize(shape(a)), shapely.normalize(shape(b))
    return first.hausdorff_distance(second) <= tolerance and abs(first.area - second.area) <= tolerance


@pytest.mark.parametrize("projection", list(TILES))
@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("table", list(TABLES))
def test_files_give_the_same_geojson_as_postgis(vector_db, vector_files, projection, driver, table):
    options = {"skip_empty_fields": True, "precision": 5}
    config = make_config({"db": postgis_layer(vector_db, f"{table}_4326", projection, **options),
                          "file": file_layer(vector_files[driver, table], driver, projection, **options)})
    for z, x, y in TILES[projection]:
        coord = Coordinate(y, x, z)
        from_db = by_id(TileStache.getTile(config.layers["db"], coord, "geojson")[1])
        from_file = by_id(TileStache.getTile(config.layers["file"], coord, "geojson")[1])
        assert set(from_db) == set(from_file), (z, x, y)
        for fid, feature in from_db.items():
            assert feature["properties"] == from_file[fid]["properties"]
            assert same_geometry(feature["geometry"], from_file[fid]["geometry"], 1e-4), (z, x, y, fid)


def test_file_in_another_srid(vector_db, vector_files):
    config = make_config({"db": postgis_layer(vector_db, "polygons_3857", "WGS84", precision=5),
                          "file": file_layer(vector_files["GPKG", "polygons_3857"], "gpkg", "WGS84", precision=5)})
    for z, x, y in TILES["WGS84"]:
        coord = Coordinate(y, x, z)
        from_db = by_id(TileStache.getTile(config.layers["db"], coord, "geojson")[1])
        from_file = by_id(TileStache.getTile(config.layers["file"], coord, "geojson")[1])
        assert set(from_db) == set(from_file)
        for fid, feature in from_db.items():
            assert same_geometry(feature["geometry"], from_file[fid]["geometry"], 1e-4)


@pytest.mark.parametrize("driver", list(DRIVERS))
def test_file_mvt_matches_postgis_mvt(vector_db, vector_files, driver):
    def layers(source):
        return [{"name": table, **source(table), "properties": {"name": "label"}, "id_property": "id"}
                for table in TABLES]

    config = make_config({
        "db": {"provider": {"name": "vector", "layers": layers(lambda t: {
            "driver": "postgis", "parameters": {k: v for k, v in postgis_layer(vector_db, f"{t}_3857")
                                                ["provider"]["parameters"].items()}})}},
        "file": {"provider": {"name": "vector", "layers": layers(lambda t: {
            "driver": driver, "file": vector_files[driver, t]})}},
    })
    for z, x, y in TILES["spherical mercator"]:
        coord = Coordinate(y, x, z)
        from_db = mapbox_vector_tile.decode(TileStache.getTile(config.layers["db"], coord, "mvt")[1])
        from_file = mapbox_vector_tile.decode(TileStache.getTile(config.layers["file"], coord, "mvt")[1])
        assert set(from_db) == set(from_file), (z, x, y)
        for name, layer in from_db.items():
            db_features = {f["id"]: f for f in layer["features"]}
            file_features = {f["id"]: f for f in from_file[name]["features"]}
            assert set(db_features) == set(file_features)
            for fid, feature in db_features.items():
                assert feature["properties"] == file_features[fid]["properties"]
                a, b = shape(feature["geometry"]), shape(file_features[fid]["geometry"])
                assert abs(a.area - b.area) <= max(0.02 * a.area, 4) and abs(a.length - b.length) <= max(0.02 * a.length, 4)


def test_file_is_read_again_when_it_changes(tmp_path):
    path = str(tmp_path / "changing.geojson")
    write_file(path, "GeoJSON", POINTS[:2], "Point")
    config = make_config({"f": file_layer(path, "GeoJSON", "WGS84")})
    layer = config.layers["f"]
    assert len(json.loads(TileStache.getTile(layer, Coordinate(0, 0, 0), "geojson")[1])["features"]) == 2
    os.remove(path)
    write_file(path, "GeoJSON", POINTS[:3], "Point")
    stat = os.stat(path)
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert len(json.loads(TileStache.getTile(layer, Coordinate(0, 0, 0), "geojson")[1])["features"]) == 3


def test_spacing_keeps_features_apart(tmp_path):
    rows = [(i, f"p{i}", "k", Point(10 + i * 0.01, 10)) for i in range(50)] + [(99, "far", "k", Point(60, 40))]
    path = write_file(str(tmp_path / "crowd.gpkg"), "GPKG", rows, "Point")
    config = make_config({"f": file_layer(path, "GPKG", "WGS84", spacing=8)})
    features = json.loads(TileStache.getTile(config.layers["f"], Coordinate(0, 1, 0), "geojson")[1])["features"]
    # 8 px of a 256 px tile 180 degrees wide is 5.6 degrees: one of the crowd (the first) and the far one
    assert [f["properties"]["name"] for f in features] == ["p0", "far"]


def test_invalid_file_geometry_is_made_valid(tmp_path, caplog):
    from test_vector import BOWTIE

    path = write_file(str(tmp_path / "bad.geojson"), "GeoJSON", [(1, "bowtie", "x", BOWTIE)], "Polygon")
    config = make_config({"f": file_layer(path, "GeoJSON", "WGS84")})
    assert "invalid" in caplog.text
    feature = json.loads(TileStache.getTile(config.layers["f"], Coordinate(0, 1, 0), "geojson")[1])["features"][0]
    assert shape(feature["geometry"]).is_valid and shape(feature["geometry"]).area == pytest.approx(50)


def strict_json(body: bytes):
    """Parse as a browser's JSON.parse would: NaN and Infinity are errors."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(body, parse_constant=refuse)


@pytest.mark.parametrize("driver, ext", [("GeoJSON", "geojson"), ("ESRI Shapefile", "shp"), ("GPKG", "gpkg")])
def test_empty_numeric_field_is_null_never_nan(tmp_path, driver, ext):
    path = str(tmp_path / f"heights.{ext}")
    geometries = np.array([Point(1, 1), Point(2, 2), Point(3, 3)], dtype=object)
    heights = np.array([3.5, np.nan, np.inf])
    pyogrio.raw.write(path, shapely.to_wkb(geometries), [np.array([1, 2, 3]), heights], ["id", "height"],
                      driver=driver, geometry_type="Point", crs="EPSG:4326")
    for skip, expected in ((False, [{"id": 1, "height": 3.5}, {"id": 2, "height": None}, {"id": 3, "height": None}]),
                           (True, [{"id": 1, "height": 3.5}, {"id": 2}, {"id": 3}])):
        layer = file_layer(path, driver, "WGS84", skip_empty_fields=skip)
        body = TileStache.getTile(make_config({"f": layer}).layers["f"], Coordinate(0, 1, 0), "geojson")[1]
        assert b"NaN" not in body and b"Infinity" not in body
        assert sorted((f["properties"] for f in strict_json(body)["features"]), key=lambda p: p["id"]) == expected


def test_verbose_writes_indented_json(tmp_path):
    path = write_file(str(tmp_path / "few.geojson"), "GeoJSON", POINTS[:3], "Point")
    plain, verbose = (TileStache.getTile(make_config({"f": file_layer(path, "GeoJSON", "WGS84", verbose=v)}).layers["f"],
                                         Coordinate(0, 0, 0), "geojson")[1] for v in (False, True))
    assert b"\n" not in plain
    assert verbose.startswith(b'{\n  "type": "FeatureCollection",\n  "features": [\n    {')
    assert json.loads(verbose) == json.loads(plain) and json.loads(plain)["features"]
