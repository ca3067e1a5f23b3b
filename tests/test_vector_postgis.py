"""The vector provider when its database goes away and comes back: 503, nothing cached, then recovery.

Uses its own short-lived PostGIS cluster (tests/services.py), stopped and
started again mid-test on the same port.
"""
from __future__ import annotations

import json
import os
import time

import psycopg
import pytest
import services

import TileStache
from test_vector import load_tables, make_config, postgis_layer, vector_db  # noqa: F401 (fixture)


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
