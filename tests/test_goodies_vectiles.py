"""Goodies.VecTiles (Provider, MultiProvider) and Goodies.Providers.PostGeoJSON on the real PostGIS fixture.

The table is stored as the original's users stored theirs: a ``__geometry__``
column in SRID 900913, read through the vector provider's PostGIS path.
"""
from __future__ import annotations

import io
import json

import mapbox_vector_tile
import psycopg
import pytest
import services
from ModestMaps.Core import Coordinate
from shapely.geometry import LineString, Point, shape

import TileStache
from TileStache.Errors import ConfigError
from TileStache.Goodies.VecTiles import pbf

CITIES = [("San Francisco", Point(-122.42, 37.78)), ("Lima", Point(-77.03, -12.04)), ("Berlin", Point(13.41, 52.52))]
LINE = LineString([(-170, 30), (170, 30)])


@pytest.fixture(scope="module")
def vectiles_db(postgis):
    with psycopg.connect(postgis.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS vt_cities, vt_lines")
        conn.execute("CREATE TABLE vt_cities (gid serial PRIMARY KEY, name text, "
                     "__geometry__ geometry(Point, 900913))")
        conn.execute("CREATE TABLE vt_lines (gid int PRIMARY KEY, name text, __geometry__ geometry(LineString, 900913))")
        for name, point in CITIES:
            conn.execute("INSERT INTO vt_cities (name, __geometry__) VALUES "
                         "(%s, ST_SetSRID(ST_Transform(ST_GeomFromText(%s, 4326), 3857), 900913))", (name, point.wkt))
        conn.execute("INSERT INTO vt_lines VALUES (7, 'parallel', "
                     "ST_SetSRID(ST_Transform(ST_GeomFromText(%s, 4326), 3857), 900913))", (LINE.wkt,))
    return postgis


def dbinfo(db) -> dict:
    return {"host": db.host, "port": db.port, "user": db.user, "password": "", "database": db.dbname}


def vectiles(db, queries, **kwargs) -> dict:
    return {"provider": {"class": "TileStache.Goodies.VecTiles:Provider",
                         "kwargs": {"dbinfo": dbinfo(db), "queries": queries, **kwargs}}}


def config(layers: dict, dirpath: str = "."):
    return TileStache.Config.buildConfiguration({"cache": {"name": "Test"}, "layers": layers}, dirpath)


def tile(cfg, layer: str, z: int, x: int, y: int, ext: str):
    mime, body = TileStache.getTile(cfg.layers[layer], Coordinate(y, x, z), ext)
    return mime, body


def names_in(layer: dict) -> set[str]:
    return {feature["properties"]["name"] for feature in layer["features"]}


CITIES_SQL = "SELECT * FROM vt_cities"


def test_pbf_has_a_layer_named_like_the_tilestache_layer(vectiles_db):
    cfg = config({"cities": vectiles(vectiles_db, [CITIES_SQL])})
    mime, body = tile(cfg, "cities", 1, 0, 0, "pbf")
    assert mime == "application/x-protobuf"
    layers = mapbox_vector_tile.decode(body)
    assert list(layers) == ["cities"]
    assert names_in(layers["cities"]) == {"San Francisco"}  # Lima is south, Berlin east
    (feature,) = layers["cities"]["features"]
    x, y = feature["geometry"]["coordinates"]
    # tile 1/0/0 spans -180..0 degrees: -122.42 is 0.3199 of the way across
    assert abs(x / pbf.extents - (180 - 122.42) / 180) < 2 / pbf.extents
    assert layers["cities"]["extent"] == pbf.extents == 4096
    # the goodie's decode answers as under mapbox-vector-tile 1.x: integer geometry types
    (old,) = pbf.decode(io.BytesIO(body))["cities"]["features"]
    assert old["type"] == 1 and old["geometry"] == feature["geometry"] and old["properties"] == feature["properties"]


def test_geojson_and_topojson_carry_the_originals_flags_and_ids(vectiles_db):
    cfg = config({"cities": vectiles(vectiles_db, [CITIES_SQL])})
    _, body = tile(cfg, "cities", 1, 0, 1, "json")
    collection = json.loads(body)
    assert collection["type"] == "FeatureCollection"
    assert {f["properties"]["name"] for f in collection["features"]} == {"Lima"}
    (lima,) = collection["features"]
    assert shape(lima["geometry"]).equals_exact(CITIES[1][1], 1e-6)
    assert lima["clipped"] is True and len(lima["id"]) == 10 and "__id__" not in lima["properties"]

    _, body = tile(cfg, "cities", 0, 0, 0, "topojson")
    topology = json.loads(body)
    assert topology["type"] == "Topology" and list(topology["objects"]) == ["vectile"]
    geometries = topology["objects"]["vectile"]["geometries"]
    scale, translate = topology["transform"]["scale"], topology["transform"]["translate"]
    for geometry in geometries:
        lon, lat = (c * s + t for c, s, t in zip(geometry["coordinates"], scale, translate))
        expected = dict(CITIES)[geometry["properties"]["name"]]
        assert abs(lon - expected.x) < 0.1 and abs(lat - expected.y) < 0.1
        assert geometry["clipped"] is True
    assert len(geometries) == 3


def test_null_zooms_are_empty_and_the_last_query_repeats_deeper(vectiles_db):
    cfg = config({"c": vectiles(vectiles_db, [None, CITIES_SQL, "SELECT * FROM vt_cities WHERE name = 'Berlin'"])})
    assert tile(cfg, "c", 0, 0, 0, "pbf")[1] == b""
    assert json.loads(tile(cfg, "c", 0, 0, 0, "json")[1]) == {"type": "FeatureCollection", "features": []}
    assert names_in(mapbox_vector_tile.decode(tile(cfg, "c", 1, 1, 0, "pbf")[1])["c"]) == {"Berlin"}
    assert names_in(mapbox_vector_tile.decode(tile(cfg, "c", 1, 0, 0, "pbf")[1])["c"]) == {"San Francisco"}
    # zoom 2 and zoom 9 use the last entry: only Berlin, though SF is in 2/0/1's western half too
    assert tile(cfg, "c", 2, 0, 1, "pbf")[1] == b""
    assert names_in(mapbox_vector_tile.decode(tile(cfg, "c", 2, 2, 1, "pbf")[1])["c"]) == {"Berlin"}
    x, y = 275, 167  # the zoom 9 tile holding Berlin
    assert names_in(mapbox_vector_tile.decode(tile(cfg, "c", 9, x, y, "pbf")[1])["c"]) == {"Berlin"}


def test_query_from_a_file_and_the_dict_syntax(vectiles_db, tmp_path):
    (tmp_path / "berlin.pgsql").write_text("SELECT * FROM vt_cities -- a comment to the end\nWHERE name = 'Berlin'")
    cfg = config({"c": vectiles(vectiles_db, {"1": CITIES_SQL, "3": "berlin.pgsql"})}, str(tmp_path))
    assert tile(cfg, "c", 0, 0, 0, "pbf")[1] == b""  # zoom 0 and 2 are missing: null
    assert tile(cfg, "c", 2, 2, 1, "pbf")[1] == b""
    assert names_in(mapbox_vector_tile.decode(tile(cfg, "c", 1, 0, 0, "pbf")[1])["c"]) == {"San Francisco"}
    berlin = json.loads(tile(cfg, "c", 4, 8, 5, "json")[1])
    assert [f["properties"]["name"] for f in berlin["features"]] == ["Berlin"]


def test_clip_false_keeps_whole_geometries(vectiles_db):
    lines = "SELECT name, __geometry__ FROM vt_lines"
    cfg = config({"clipped": vectiles(vectiles_db, [lines]), "whole": vectiles(vectiles_db, [lines], clip=False)})
    clipped = shape(json.loads(tile(cfg, "clipped", 1, 0, 0, "json")[1])["features"][0]["geometry"])
    whole = json.loads(tile(cfg, "whole", 1, 0, 0, "json")[1])["features"][0]
    assert "clipped" not in whole
    assert shape(whole["geometry"]).equals_exact(LINE, 1e-6)
    assert abs(clipped.bounds[2]) < 1e-6 and abs(clipped.bounds[0] + 170) < 1e-6
    mvt_whole = mapbox_vector_tile.decode(tile(cfg, "whole", 1, 0, 0, "pbf")[1])["whole"]["features"][0]
    mvt_clipped = mapbox_vector_tile.decode(tile(cfg, "clipped", 1, 0, 0, "pbf")[1])["clipped"]["features"][0]
    assert max(x for x, _ in mvt_whole["geometry"]["coordinates"]) == round(350 / 180 * pbf.extents)
    assert max(x for x, _ in mvt_clipped["geometry"]["coordinates"]) <= pbf.extents


def test_tokens_are_filled_by_the_database(vectiles_db):
    sql = ("SELECT name, __geometry__, !zoom! AS z, round(!scale_denominator!) AS scale, !pixel_width! AS px "
           "FROM vt_cities WHERE __geometry__ && !bbox! AND name LIKE '%o'")  # a literal % stays literal
    cfg = config({"c": vectiles(vectiles_db, [sql])})
    (feature,) = json.loads(tile(cfg, "c", 3, 1, 3, "json")[1])["features"]
    assert feature["properties"]["name"] == "San Francisco"
    assert feature["properties"]["z"] == 3
    assert abs(feature["properties"]["px"] - 40075016.68557849 / 2 ** 11) < 1e-6
    assert feature["properties"]["scale"] == round(40075016.68557849 / 2 ** 11 / 0.00028)


def test_id_column_is_the_feature_id(vectiles_db):
    cfg = config({"c": vectiles(vectiles_db, ["SELECT gid AS __id__, name, __geometry__ FROM vt_cities"])})
    (feature,) = mapbox_vector_tile.decode(tile(cfg, "c", 1, 1, 0, "pbf")[1])["c"]["features"]
    assert feature["properties"] == {"name": "Berlin"} and feature["id"] == 3
    (feature,) = json.loads(tile(cfg, "c", 1, 1, 0, "json")[1])["features"]
    assert feature["id"] == 3 and feature["properties"] == {"name": "Berlin"}


def test_multiprovider_gathers_the_named_layers(vectiles_db):
    cfg = config({
        "cities": vectiles(vectiles_db, [CITIES_SQL]),
        "lines": vectiles(vectiles_db, ["SELECT gid, name, __geometry__ FROM vt_lines"], clip=False),
        "both": {"provider": {"class": "TileStache.Goodies.VecTiles:MultiProvider",
                              "kwargs": {"names": ["cities", "lines"]}}},
    })
    layers = mapbox_vector_tile.decode(tile(cfg, "both", 1, 0, 0, "pbf")[1])
    assert names_in(layers["cities"]) == {"San Francisco"} and names_in(layers["lines"]) == {"parallel"}
    # decoded as mapbox-vector-tile 1.x did (what the original's tests expect): integer geometry types
    plain = mapbox_vector_tile.decode(tile(cfg, "both", 1, 0, 0, "pbf")[1], default_options={"geojson": False})
    assert [f["type"] for f in plain["cities"]["features"] + plain["lines"]["features"]] == [1, 2]
    merged = json.loads(tile(cfg, "both", 1, 0, 0, "json")[1])
    assert set(merged) == {"cities", "lines"}
    assert merged["cities"]["features"][0]["clipped"] is True and "clipped" not in merged["lines"]["features"][0]
    topology = json.loads(tile(cfg, "both", 0, 0, 0, "topojson")[1])
    assert set(topology["objects"]) == {"cities", "lines"}
    assert topology["objects"]["lines"]["geometries"][0]["type"] == "LineString"
    assert len(topology["objects"]["cities"]["geometries"]) == 3


def test_mvt_and_other_extensions_are_400s_naming_pbf(vectiles_db):
    cfg = config({"c": vectiles(vectiles_db, [CITIES_SQL]),
                  "m": {"provider": {"class": "TileStache.Goodies.VecTiles:MultiProvider", "kwargs": {"names": ["c"]}}}})
    for layer in ("c", "m"):
        status, _, body = TileStache.requestHandler2(cfg, f"/{layer}/0/0/0.mvt")
        assert status == 400 and b".pbf" in body and b"Traceback" not in body
        status, _, body = TileStache.requestHandler2(cfg, f"/{layer}/0/0/0.png")
        assert status == 400 and b"pbf" in body
        assert TileStache.requestHandler2(cfg, f"/{layer}/0/0/0.pbf")[0] == 200


@pytest.mark.parametrize("kwargs, key, words", [
    ({"queries": [CITIES_SQL], "tables": "x"}, "provider.tables", "tables"),
    ({}, "provider.queries", "queries"),
    ({"queries": [CITIES_SQL, "missing-file.pgsql"]}, "provider.queries[1]", "no query file"),
    ({"queries": ["SELECT name FROM vt_cities"]}, "provider.queries[0]", "__geometry__"),
    ({"queries": ["SELECT * FROM no_such_table"]}, "provider.queries[0]", "does not work"),
    ({"queries": []}, "provider.queries", "non-empty"),
    ({"queries": {"ten": CITIES_SQL}}, "provider.queries", "zoom"),
    ({"queries": [CITIES_SQL], "simplify": "lots"}, "provider.simplify", "number"),
])
def test_bad_kwargs_fail_at_load_naming_layer_and_key(vectiles_db, kwargs, key, words):
    spec = {"dbinfo": dbinfo(vectiles_db), **kwargs}
    with pytest.raises(ConfigError) as caught:
        config({"bad": {"provider": {"class": "TileStache.Goodies.VecTiles:Provider", "kwargs": spec}}})
    assert caught.value.layer == "bad" and caught.value.key == key
    assert words in str(caught.value)


def test_multiprovider_names_must_be_vectiles_layers(vectiles_db):
    multi = {"provider": {"class": "TileStache.Goodies.VecTiles:MultiProvider", "kwargs": {"names": ["c", "nope"]}}}
    with pytest.raises(ConfigError, match="'nope': no such layer") as caught:
        config({"c": vectiles(vectiles_db, [CITIES_SQL]), "m": multi})
    assert caught.value.layer == "m" and caught.value.key == "provider.names"


def test_postgeojson_sample_config(vectiles_db):
    dsn = f"host={vectiles_db.host} port={vectiles_db.port} dbname={vectiles_db.dbname} user={vectiles_db.user}"
    sql = "SELECT gid, name, __geometry__ AS way FROM vt_lines WHERE __geometry__ && !bbox! AND name IS NOT NULL"
    provider = {"class": "TileStache.Goodies.Providers.PostGeoJSON:Provider",
                "kwargs": {"dsn": dsn, "query": sql, "id_column": "gid", "geometry_column": "way"}}
    cfg = config({"whole": {"provider": provider},
                  "clipped": {"provider": {**provider, "kwargs": {**provider["kwargs"], "clipping": True,
                                                                    "indent": 0, "precision": 2}}}})
    mime, body = tile(cfg, "whole", 1, 0, 0, "json")
    assert mime == "application/json" and b'\n  "features"' in body  # indent 2 by default
    (feature,) = json.loads(body)["features"]
    assert feature["id"] == 7 and feature["properties"] == {"name": "parallel"}
    assert shape(feature["geometry"]).equals_exact(LINE, 1e-6)
    body = tile(cfg, "clipped", 1, 0, 0, "json")[1]
    assert b"\n" not in body
    clipped = shape(json.loads(body)["features"][0]["geometry"])
    assert clipped.bounds == (-170.0, 30.0, 0.0, 30.0)
    status, _, body = TileStache.requestHandler2(cfg, "/whole/0/0/0.pbf")
    assert status == 400 and b"json" in body
    with pytest.raises(ConfigError) as caught:
        config({"p": {"provider": {**provider, "kwargs": {**provider["kwargs"], "geometry_column": "geom"}}}})
    assert caught.value.layer == "p" and "geom" in str(caught.value)


def test_database_down_is_503_and_nothing_cached(tmp_path):
    db = services.PostGIS()
    try:
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (name text, __geometry__ geometry(Point, 900913))")
            conn.execute("INSERT INTO t VALUES ('null island', ST_SetSRID(ST_MakePoint(1, 1), 900913))")
        cfg = TileStache.Config.buildConfiguration(
            {"cache": {"name": "Disk", "path": str(tmp_path / "cache")},
             "layers": {"t": vectiles(db, ["SELECT * FROM t"])}}, str(tmp_path))
        assert TileStache.requestHandler2(cfg, "/t/0/0/0.pbf")[0] == 200
        db._kill()
        for path in ("/t/1/1/0.pbf", "/t/1/1/0.json", "/t/1/1/0.topojson"):
            status, _, body = TileStache.requestHandler2(cfg, path)
            assert status == 503 and b"Traceback" not in body
        assert not list((tmp_path / "cache" / "t").glob("1/**/*.*"))
    finally:
        db.stop()
