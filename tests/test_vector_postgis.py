"""The vector provider's PostGIS source in trying conditions: invalid geometries, a database going away.

Invalid geometries are counted once at config load and logged; the down/up test
uses its own short-lived PostGIS cluster (tests/services.py), stopped and
started again mid-test on the same port.
"""
from __future__ import annotations

import json
import logging
import os
import time

import mapbox_vector_tile
import psycopg
import pytest
import services
import shapely
from shapely.geometry import box, shape

import TileStache
from TileStache.Vector import postgis as vector_postgis
from test_vector import BOWTIE, db_parameters, load_tables, make_config, postgis_layer, vector_db  # noqa: F401


@pytest.fixture
def doomed_db():
    db = services.PostGIS()
    try:
        load_tables(db.dsn)
        yield db
    finally:
        db.stop()


def cached_files(folder) -> list[str]:
    return [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]


def test_database_down_is_503_and_recovers(doomed_db, tmp_path):
    layer = postgis_layer(doomed_db, "points_4326", "WGS84")
    layer["provider"]["parameters"]["timeout"] = 1
    config = make_config({"p": layer}, {"name": "Disk", "path": str(tmp_path)})

    status, _, body = TileStache.requestHandler2(config, "/p/0/0/0.geojson")
    assert status == 200 and json.loads(body)["features"]
    before = cached_files(tmp_path)

    doomed_db._kill()  # pg_ctl stop: the cluster and its port stay ours
    for path in ("/p/0/1/0.geojson", "/p/0/1/0.mvt"):
        started = time.monotonic()
        status, headers, body = TileStache.requestHandler2(config, path)
        assert status == 503, body
        assert len(body) < 100 and b"Traceback" not in body
        assert time.monotonic() - started < 10
    assert cached_files(tmp_path) == before

    doomed_db._start()
    with psycopg.connect(doomed_db.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM points_4326").fetchone()[0] > 0
    deadline = time.monotonic() + 15
    while True:
        status, _, body = TileStache.requestHandler2(config, "/p/0/1/0.geojson")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200 and json.loads(body)["features"]
    status, _, body = TileStache.requestHandler2(config, "/p/0/1/0.mvt")
    assert status == 200 and body
    assert len(cached_files(tmp_path)) == len(before) + 2


def test_forked_worker_gets_its_own_pool(vector_db):
    config = make_config({"p": postgis_layer(vector_db, "points_4326", "WGS84")})
    assert TileStache.requestHandler2(config, "/p/0/0/0.geojson")[0] == 200
    pid = os.fork()
    if pid == 0:  # a gunicorn-like worker forked after the parent used the pool
        ok = False
        try:
            ok = all(TileStache.requestHandler2(config, f"/p/0/{x}/0.mvt")[0] == 200 for x in (0, 1))
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    for _ in range(3):  # the parent's connections were not disturbed by the child
        assert TileStache.requestHandler2(config, "/p/0/1/0.geojson")[0] == 200


def make_polygons(db, table: str, polygons: list) -> None:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id int, geom geometry(Polygon, 4326))")
        for fid, polygon in enumerate(polygons, 1):
            conn.execute(f"INSERT INTO {table} VALUES (%s, ST_GeomFromWKB(%s, 4326))", (fid, shapely.to_wkb(polygon)))


def vector_records(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("TileStache.Vector") and r.levelno == level]


def test_invalid_geometries_are_counted_once_at_load(postgis, caplog):
    make_polygons(postgis, "invalid_counted", [BOWTIE, box(20, 20, 22, 22), BOWTIE])
    with caplog.at_level(logging.INFO, logger="TileStache.Vector"):
        config = make_config({"bad": postgis_layer(postgis, "invalid_counted", "spherical mercator")})
    warnings = vector_records(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings
    assert "layer bad" in warnings[0] and "2 invalid geometries" in warnings[0] and "invalid_counted" in warnings[0]
    assert '"validate": true' in warnings[0]

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="TileStache.Vector"):
        status, _, body = TileStache.requestHandler2(config, "/bad/1/1/0.mvt")
        again = make_config({"bad": postgis_layer(postgis, "invalid_counted", "spherical mercator")})
    assert status == 200
    features = mapbox_vector_tile.decode(body)["vectile"]["features"]
    assert sorted(f["properties"]["id"] for f in features) == [1, 2, 3]  # rebuilt by ST_AsMVTGeom, not lost
    assert all(shape(f["geometry"]).is_valid and shape(f["geometry"]).area > 0 for f in features)
    assert vector_records(caplog, logging.WARNING) == []  # once per table per process, nothing per tile
    assert TileStache.requestHandler2(again, "/bad/1/1/0.geojson")[0] == 200

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="TileStache.Vector"):
        checked = make_config({"bad": postgis_layer(postgis, "invalid_counted", "spherical mercator",
                                                    validate=True)})
        assert vector_records(caplog, logging.WARNING) == []  # validate on: reported per tile instead
        status, _, body = TileStache.requestHandler2(checked, "/bad/1/1/0.mvt")
    assert status == 200 and len(mapbox_vector_tile.decode(body)["vectile"]["features"]) == 3
    assert any("made 2 invalid geometries valid" in m for m in vector_records(caplog, logging.WARNING))


def test_valid_tables_and_queries_log_no_warning(postgis, caplog):
    make_polygons(postgis, "valid_counted", [box(20, 20, 22, 22), box(-50, 10, -40, 20)])
    query = "SELECT id, geom FROM valid_counted WHERE geom && !bbox!"
    layers = {"t": postgis_layer(postgis, "valid_counted", verbose=True),
              "q": {"provider": {"name": "vector", "driver": "postgis",
                                 "parameters": db_parameters(postgis, query=query)}}}
    with caplog.at_level(logging.INFO, logger="TileStache.Vector"):
        make_config(layers)
    assert vector_records(caplog, logging.WARNING) == []
    assert any("layer t" in m and "valid_counted are valid" in m for m in vector_records(caplog, logging.INFO))


def test_slow_validity_count_gives_up_and_says_so(postgis, caplog, monkeypatch):
    make_polygons(postgis, "invalid_slow", [BOWTIE, box(20, 20, 22, 22)])
    monkeypatch.setattr(vector_postgis, "VALIDITY_CHECK_TIMEOUT", 0.05)
    query = "SELECT id, geom FROM invalid_slow WHERE pg_sleep(0.1) IS NOT NULL"
    layer = {"provider": {"name": "vector", "driver": "postgis", "parameters": db_parameters(postgis, query=query)}}
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="TileStache.Vector"):
        config = make_config({"slow": layer})
    assert time.monotonic() - started < 5
    assert vector_records(caplog, logging.WARNING) == []
    assert any("layer slow" in m and "not checked" in m for m in vector_records(caplog, logging.INFO))
    status, _, body = TileStache.requestHandler2(config, "/slow/0/0/0.mvt")
    assert status == 200 and len(mapbox_vector_tile.decode(body)["vectile"]["features"]) == 2
