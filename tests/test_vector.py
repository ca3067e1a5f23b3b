"""The vector provider over PostGIS: GeoJSON, Arc JSON, TopoJSON and MVT through the public entry points.

A session fixture loads small tables of points, lines and polygons, in EPSG:4326
and EPSG:3857, into the throwaway PostGIS cluster of the ``postgis`` fixture.
"""
from __future__ import annotations

import json
import logging
import os

import mapbox_vector_tile
import psycopg
import pytest
import shapely
from ModestMaps.Core import Coordinate
from shapely.geometry import LineString, Point, Polygon, box, shape

import TileStache
from TileStache.Errors import ConfigError

# (id, name, kind, geometry) -- the same rows go to PostGIS and to the files of test_vector_files.py
POINTS = [
    (1, "Denver", "city", Point(-100, 40)),
    (2, "Lima", "", Point(-60, -20)),
    (3, "Hawaii", None, Point(-150, 10)),
    (4, "Perth", "city", Point(100, -40)),
    (5, "Gulf", "sea", Point(10.1234567, 5.7654321)),
    (6, "Siberia", "land", Point(150, 60)),
    (7, "Cairo", "city", Point(30, 30)),
]
LINES = [
    (1, "world line", "long", LineString([(-179.5, -45), (179.5, 45)])),
    (2, "short", "short", LineString([(20, 20), (21, 21), (22, 20)])),
]
POLYGONS = [
    (1, "world box", "big", box(-179, -60, 179, 60)),
    (2, "square", "small", box(20, 20, 22, 22)),
    (3, "west square", "small", box(-50, 10, -40, 20)),
]
TABLES = {"points": POINTS, "lines": LINES, "polygons": POLYGONS}
BOWTIE = Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])


def load_tables(dsn: str) -> None:
    """Create <kind>_4326 and <kind>_3857 tables of the rows above (and an invalid one)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, rows in TABLES.items():
            conn.execute(f"DROP TABLE IF EXISTS {table}_4326, {table}_3857")
            conn.execute(f"CREATE TABLE {table}_4326 (id int, name text, kind text, geom geometry(Geometry, 4326))")
            for fid, name, kind, geometry in rows:
                conn.execute(f"INSERT INTO {table}_4326 VALUES (%s, %s, %s, ST_GeomFromWKB(%s, 4326))",
                             (fid, name, kind, shapely.to_wkb(geometry)))
            conn.execute(f"CREATE INDEX ON {table}_4326 USING gist (geom)")
            conn.execute(f"CREATE TABLE {table}_3857 AS SELECT id, name, kind, "
                         f"ST_Transform(geom, 3857)::geometry(Geometry, 3857) AS geom FROM {table}_4326")
            conn.execute(f"CREATE INDEX ON {table}_3857 USING gist (geom)")
        conn.execute("DROP TABLE IF EXISTS invalid_4326")
        conn.execute("CREATE TABLE invalid_4326 (id int, name text, geom geometry(Polygon, 4326))")
        conn.execute("INSERT INTO invalid_4326 VALUES (1, 'bowtie', ST_GeomFromWKB(%s, 4326))",
                     (shapely.to_wkb(BOWTIE),))


@pytest.fixture(scope="session")
def vector_db(postgis):
    load_tables(postgis.dsn)
    return postgis


def db_parameters(db, **more) -> dict:
    return dict(host=db.host, port=db.port, dbname=db.dbname, user=db.user, **more)


def make_config(layers: dict, cache: dict | None = None):
    return TileStache.parseConfig({"cache": cache or {"name": "Test"}, "layers": layers})


def postgis_layer(db, table: str, projection: str = "WGS84", **provider) -> dict:
    spec = {"name": "vector", "driver": "PostgreSQL", "parameters": db_parameters(db, table=table)}
    spec.update(provider)
    return {"projection": projection, "provider": spec}


def get_json(layer, z: int, x: int, y: int, ext: str = "geojson"):
    mime, body = TileStache.getTile(layer, Coordinate(y, x, z), ext)
    assert mime == "application/json"
    return json.loads(body)


def coordinates(geometry: dict) -> list[tuple[float, float]]:
    out = []

    def walk(c):
        if c and isinstance(c[0], (int, float)):
            out.append((c[0], c[1]))
        else:
            for each in c:
                walk(each)

    walk(geometry["coordinates"])
    return out


# -- WGS84 zoom 0: two tiles, one per hemisphere -----------------------------------

@pytest.mark.parametrize("srid", [4326, 3857])
def test_hemisphere_counts_at_zoom_0_in_wgs84(vector_db, srid):
    config = make_config({"p": postgis_layer(vector_db, f"points_{srid}")})
    west = get_json(config.layers["p"], 0, 0, 0)
    east = get_json(config.layers["p"], 0, 1, 0)
    assert len(west["features"]) == sum(1 for *_, g in POINTS if g.x < 0)
    assert len(east["features"]) == sum(1 for *_, g in POINTS if g.x > 0)
    assert {f["properties"]["name"] for f in west["features"] + east["features"]} == {p[1] for p in POINTS}
    for feature in west["features"]:
        assert feature["geometry"]["coordinates"][0] < 0
    for feature in east["features"]:
        assert feature["geometry"]["coordinates"][0] > 0


# -- clipping at the antimeridian and the equator -----------------------------

@pytest.mark.parametrize("srid", [4326, 3857])
def test_world_line_is_clipped_to_each_tile(vector_db, srid):
    config = make_config({"l": postgis_layer(vector_db, f"lines_{srid}", properties=["name"])})
    world = LINES[0][3]
    total = 0.0
    for x, y in [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1), (1, 1), (2, 1), (3, 1)]:  # zoom 1: 4 x 2 tiles
        west, north = -180 + 90 * x, 90 - 90 * y
        tile = box(west, north - 90, west + 90, north)
        features = [f for f in get_json(config.layers["l"], 1, x, y)["features"] if f["properties"]["name"] == "world line"]
        expected = world.intersection(tile)
        assert len(features) == (0 if expected.is_empty else 1)
        for feature in features:
            piece = shape(feature["geometry"])
            for lon, lat in coordinates(feature["geometry"]):
                assert west - 1e-6 <= lon <= west + 90 + 1e-6 and north - 90 - 1e-6 <= lat <= north + 1e-6
            assert piece.length == pytest.approx(expected.length, rel=1e-4)
            total += piece.length
    assert total == pytest.approx(world.length, rel=1e-4)


@pytest.mark.parametrize("srid", [4326, 3857])
def test_world_polygon_is_clipped_at_antimeridian_and_equator(vector_db, srid):
    config = make_config({"a": postgis_layer(vector_db, f"polygons_{srid}", properties=["name"])})
    layer = config.layers["a"]
    pieces = {}
    for x, y in [(0, 0), (1, 0)]:
        for feature in get_json(layer, 0, x, y)["features"]:
            pieces.setdefault(feature["properties"]["name"], []).append(shape(feature["geometry"]))
    west, east = pieces["world box"]
    assert west.bounds == pytest.approx((-179, -60, 0, 60), abs=1e-6)
    assert east.bounds == pytest.approx((0, -60, 179, 60), abs=1e-6)
    north_west = [shape(f["geometry"]) for f in get_json(layer, 1, 0, 0)["features"]
                  if f["properties"]["name"] == "world box"]
    assert len(north_west) == 1 and north_west[0].bounds == pytest.approx((-179, 0, -90, 60), abs=1e-6)


def test_mercator_tiles_clip_at_the_equator_and_give_lonlat(vector_db):
    config = make_config({"a": postgis_layer(vector_db, "polygons_3857", "spherical mercator", properties=["name"])})
    south_east = get_json(config.layers["a"], 1, 1, 1)["features"]
    world = [shape(f["geometry"]) for f in south_east if f["properties"]["name"] == "world box"]
    assert world[0].bounds == pytest.approx((0, -60, 179, 0), abs=1e-5)
    assert not [f for f in south_east if f["properties"]["name"] == "square"]  # it is north


def test_unclipped_and_padded(vector_db):
    config = make_config({
        "raw": postgis_layer(vector_db, "polygons_4326", clipped=False, properties=["name"]),
        "pad": postgis_layer(vector_db, "polygons_4326", clipped="padded", properties=["name"]),
    })
    raw = [shape(f["geometry"]) for f in get_json(config.layers["raw"], 0, 0, 0)["features"]
           if f["properties"]["name"] == "world box"]
    assert raw[0].bounds == pytest.approx((-179, -60, 179, 60))
    padded = [shape(f["geometry"]) for f in get_json(config.layers["pad"], 0, 0, 0)["features"]
              if f["properties"]["name"] == "world box"]
    assert padded[0].bounds == pytest.approx((-179, -60, 9, 60))  # 5 % of 180 degrees past the edge


# -- precision, properties, ids ------------------------------------------------

@pytest.mark.parametrize("precision", [0, 2, 6])
def test_precision(vector_db, precision):
    config = make_config({"p": postgis_layer(vector_db, "points_4326", precision=precision)})
    features = get_json(config.layers["p"], 0, 1, 0)["features"]
    gulf = next(f for f in features if f["properties"]["name"] == "Gulf")
    assert gulf["geometry"]["coordinates"] == [round(10.1234567, precision), round(5.7654321, precision)]


def test_properties_whitelist_rename_skip_empty_and_id(vector_db):
    config = make_config({
        "list": postgis_layer(vector_db, "points_4326", properties=["name"]),
        "dict": postgis_layer(vector_db, "points_4326", properties={"name": "label", "kind": "type"},
                              skip_empty_fields=True, id_property="id"),
    })
    listed = get_json(config.layers["list"], 0, 0, 0)["features"]
    assert all(set(f["properties"]) == {"name"} for f in listed)
    renamed = get_json(config.layers["dict"], 0, 0, 0)["features"]
    by_id = {f["id"]: f["properties"] for f in renamed}
    west = [p for p in POINTS if p[3].x < 0]
    assert set(by_id) == {p[0] for p in west}
    for fid, name, kind, _ in west:
        expected = {"label": name, **({"type": kind} if kind else {})}
        assert by_id[fid] == expected


def test_arcjson_and_topojson(vector_db):
    config = make_config({"a": postgis_layer(vector_db, "polygons_4326", properties=["name"]),
                          "p": postgis_layer(vector_db, "points_4326")})
    arc = get_json(config.layers["a"], 0, 1, 0, "arcjson")
    assert arc["geometryType"] == "esriGeometryPolygon"
    rings = {f["attributes"]["name"]: f["geometry"]["rings"] for f in arc["features"]}
    assert Polygon(rings["square"][0]).equals(box(20, 20, 22, 22))
    points = get_json(config.layers["p"], 0, 0, 0, "arcjson")
    assert {(f["geometry"]["x"], f["geometry"]["y"]) for f in points["features"]} == \
        {(g.x, g.y) for *_, g in POINTS if g.x < 0}

    topo = get_json(config.layers["a"], 0, 1, 0, "topojson")
    assert topo["type"] == "Topology"
    (scale_x, scale_y), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    geometries = topo["objects"]["vectile"]["geometries"]
    square = next(g for g in geometries if g["properties"]["name"] == "square")
    arc_index = square["arcs"][0][0]
    x = y = 0
    ring = []
    for dx, dy in topo["arcs"][arc_index]:
        x, y = x + dx, y + dy
        ring.append((tx + x * scale_x, ty + y * scale_y))
    assert Polygon(ring).hausdorff_distance(box(20, 20, 22, 22)) <= max(scale_x, scale_y)  # one grid step


# -- MVT -----------------------------------------------------------------------

def test_mvt_layers_features_and_extent(vector_db):
    params = db_parameters(vector_db)
    config = make_config({"tiles": {"provider": {
        "name": "vector", "driver": "postgis", "parameters": params, "buffer": 0, "id_property": "id",
        "layers": [{"name": "points", "table": "points_4326", "properties": ["name"]},
                   {"name": "lines", "table": "lines_3857", "properties": ["name"]},
                   {"name": "polygons", "table": "polygons_3857", "properties": {"name": "label"}},
                   {"name": "deep", "table": "points_3857", "minzoom": 5}]}}})
    mime, body = TileStache.getTile(config.layers["tiles"], Coordinate(0, 0, 0), "mvt")
    assert mime == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(body)
    assert set(decoded) == {"points", "lines", "polygons"}
    assert {f["id"] for f in decoded["points"]["features"]} == {p[0] for p in POINTS}
    assert {f["properties"]["label"] for f in decoded["polygons"]["features"]} == {p[1] for p in POLYGONS}
    for layer in decoded.values():
        assert layer["extent"] == 4096
        for feature in layer["features"]:
            for x, y in coordinates(feature["geometry"]):
                assert 0 <= x <= 4096 and 0 <= y <= 4096
    denver = next(f for f in decoded["points"]["features"] if f["properties"]["name"] == "Denver")
    # lon -100 is at (80 / 360) of the width; decode() flips y so that it grows northward
    assert denver["geometry"]["coordinates"][0] == pytest.approx(4096 * 80 / 360, abs=1)
    assert denver["geometry"]["coordinates"][1] > 2048

    deep = mapbox_vector_tile.decode(TileStache.getTile(config.layers["tiles"], Coordinate(15, 16, 5), "pbf")[1])
    assert [f["properties"]["name"] for f in deep["deep"]["features"]] == ["Gulf"]


def test_mvt_in_wgs84(vector_db):
    config = make_config({"m": postgis_layer(vector_db, "polygons_4326", buffer=0, properties=["name"])})
    decoded = mapbox_vector_tile.decode(TileStache.getTile(config.layers["m"], Coordinate(0, 0, 0), "mvt")[1])
    world = next(f for f in decoded["vectile"]["features"] if f["properties"]["name"] == "world box")
    xs = [x for x, _ in coordinates(world["geometry"])]
    ys = [y for _, y in coordinates(world["geometry"])]
    assert min(xs) == round(4096 / 180 * 1) and max(xs) == 4096
    assert min(ys) == round(4096 * 30 / 180) and max(ys) == round(4096 * 150 / 180)


# -- empty tiles, HTTP ---------------------------------------------------------

def test_empty_tiles_are_empty_and_200(vector_db):
    config = make_config({"p": postgis_layer(vector_db, "points_4326", "spherical mercator")})
    status, headers, body = TileStache.requestHandler2(config, "/p/10/1/1.geojson")
    assert status == 200 and json.loads(body) == {"type": "FeatureCollection", "features": []}
    status, headers, body = TileStache.requestHandler2(config, "/p/10/1/1.mvt")
    assert status == 200 and body == b"" and headers["Content-Type"] == "application/vnd.mapbox-vector-tile"


def test_no_tile_left_behind_for_empty_tiles(vector_db, tmp_path):
    layer = postgis_layer(vector_db, "points_4326", "spherical mercator", no_tile_left_behind=True)
    config = make_config({"p": layer}, {"name": "Disk", "path": str(tmp_path)})
    for ext in ("geojson", "mvt"):
        status, _, _ = TileStache.requestHandler2(config, f"/p/10/1/1.{ext}")
        assert status == 404
    assert not [files for _, _, files in os.walk(tmp_path) if files]
    status, _, body = TileStache.requestHandler2(config, "/p/0/0/0.geojson")
    assert status == 200 and json.loads(body)["features"]
    assert [files for _, _, files in os.walk(tmp_path) if files]


def test_wsgi_jsonp_and_bad_extension(vector_db):
    from werkzeug.test import Client

    config = make_config({"p": postgis_layer(vector_db, "points_4326")})
    client = Client(TileStache.WSGITileServer(config))
    response = client.get("/p/0/0/0.json?callback=show.tile")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    text = response.get_data(as_text=True)
    assert text.startswith("show.tile(") and json.loads(text[len("show.tile("):-1])["type"] == "FeatureCollection"
    response = client.get("/p/0/0/0.png")
    assert response.status_code == 400 and b"Traceback" not in response.get_data()
    assert client.get("/p/0/0/0.json?callback=alert(1)").status_code == 400


def test_user_sql_with_placeholders(vector_db):
    query = ("SELECT id, name, geom, !zoom! AS z, %(x)s AS tx FROM points_3857 "
             "WHERE geom && !bbox! AND name LIKE '%%a%%' OR name LIKE '%i%'")
    config = make_config({"q": postgis_layer(vector_db, "points_3857", "spherical mercator")})
    config.layers["q"] = make_config({"q": {"provider": {
        "name": "vector", "driver": "postgis", "parameters": db_parameters(vector_db, query=query)}}}).layers["q"]
    features = get_json(config.layers["q"], 1, 1, 0)["features"]
    names = {f["properties"]["name"] for f in features}
    expected = {n for _, n, _, g in POINTS if g.x > 0 and g.y > 0 and ("a" in n or "i" in n)}
    assert names == expected and names
    assert {(f["properties"]["z"], f["properties"]["tx"]) for f in features} == {(1, 1)}


def test_invalid_geometry_is_made_valid_with_a_log_line(vector_db, caplog):
    config = make_config({"bad": postgis_layer(vector_db, "invalid_4326", "spherical mercator")})
    with caplog.at_level(logging.WARNING):
        status, _, body = TileStache.requestHandler2(config, "/bad/1/1/0.geojson")
    assert status == 200
    geometry = shape(json.loads(body)["features"][0]["geometry"])
    assert geometry.is_valid and geometry.area == pytest.approx(50, rel=1e-3)
    assert "invalid" in caplog.text
    status, _, body = TileStache.requestHandler2(config, "/bad/1/1/0.mvt")
    assert status == 200  # ST_AsMVTGeom rebuilds polygons in tile space or drops what it cannot encode; never a failed tile
    caplog.clear()
    checked = make_config({"bad": postgis_layer(vector_db, "invalid_4326", "spherical mercator", validate=True)})
    with caplog.at_level(logging.WARNING):
        status, _, body = TileStache.requestHandler2(checked, "/bad/1/1/0.mvt")
    assert status == 200 and "invalid" in caplog.text
    polygon = shape(mapbox_vector_tile.decode(body)["vectile"]["features"][0]["geometry"])
    assert polygon.is_valid and polygon.area > 0


def test_simplify_and_one_query_for_several_layers(vector_db):
    wiggly = {"name": "vector", "driver": "postgis", "parameters": db_parameters(vector_db), "buffer": 0,
              "layers": [{"name": "raw", "table": "lines_3857"},
                         {"name": "simple", "table": "lines_3857", "simplify": 20},
                         {"name": "points", "table": "points_3857", "maxzoom": 0}]}
    config = make_config({"w": {"provider": wiggly}})
    decoded = mapbox_vector_tile.decode(TileStache.getTile(config.layers["w"], Coordinate(0, 0, 0), "mvt")[1])
    assert set(decoded) == {"raw", "simple", "points"}
    short = [shape(f["geometry"]) for f in decoded["raw"]["features"] if f["properties"]["name"] == "short"]
    simpler = [shape(f["geometry"]) for f in decoded["simple"]["features"] if f["properties"]["name"] == "short"]
    assert len(short[0].coords) == 3 and len(simpler[0].coords) == 2  # a 2-degree bend is under 20 px at z0
    decoded = mapbox_vector_tile.decode(TileStache.getTile(config.layers["w"], Coordinate(0, 1, 1), "mvt")[1])
    assert "points" not in decoded and "raw" in decoded


# -- configuration faults ------------------------------------------------------

def config_error(layer: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        make_config({"broken": layer})
    return str(caught.value)


def test_config_errors_name_layer_and_key(vector_db, tmp_path):
    message = config_error({"provider": {"name": "vector", "driver": "Oracle", "parameters": {}}})
    assert "broken" in message and "driver" in message
    message = config_error({"provider": {"name": "vector", "driver": "shapefile",
                                         "parameters": {"file": str(tmp_path / "nothing.shp")}}})
    assert "broken" in message and "file" in message
    closed = db_parameters(vector_db, table="points_4326")
    closed["port"] = 1
    message = config_error({"provider": {"name": "vector", "driver": "postgis", "parameters": closed}})
    assert "broken" in message and "parameters" in message and "database" in message
    message = config_error(postgis_layer(vector_db, "points_4326", properties=["nope"]))
    assert "broken" in message and "properties" in message
    message = config_error(postgis_layer(vector_db, "no_such_table"))
    assert "broken" in message and "parameters" in message
    message = config_error(postgis_layer(vector_db, "points_4326", clipped="sometimes"))
    assert "clipped" in message


def test_non_finite_postgis_numbers_are_null(vector_db):
    query = ("SELECT id, geom, 'Infinity'::float8 AS big, '-Infinity'::float8 AS small, 'NaN'::float8 AS nope, "
             "'NaN'::numeric AS num, 1.5::float8 AS fine FROM points_4326 WHERE geom && !bbox!")
    layer = make_config({"q": {"projection": "WGS84", "provider": {
        "name": "vector", "driver": "postgis", "parameters": db_parameters(vector_db, query=query)}}}).layers["q"]
    body = TileStache.getTile(layer, Coordinate(0, 0, 0), "geojson")[1] + \
        TileStache.getTile(layer, Coordinate(0, 1, 0), "geojson")[1]
    assert b"NaN" not in body and b"Infinity" not in body
    features = [f for part in (0, 1) for f in get_json(layer, 0, part, 0)["features"]]
    assert features and all({k: f["properties"][k] for k in ("big", "small", "nope", "num", "fine")} ==
                            {"big": None, "small": None, "nope": None, "num": None, "fine": 1.5} for f in features)
