"""/health, /metrics and the pipeline's log lines: in process, and under gunicorn with two workers."""
from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

import services
import TileStache
from plugins import read_log
from TileStache.Errors import ConfigError

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
BIN = Path(sys.executable).parent
GUNICORN_CONF = REPO / "TileStache" / "gunicorn.conf.py"


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted label pairs): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


# -- in process -------------------------------------------------------------------

def test_health_answers_ok_and_ignores_a_bad_query():
    app = Client(TileStache.WSGITileServer({"layers": {}}))
    for query in ("", "ready=maybe", "%%%&&=", "ready"):
        response = app.get("/health", query_string=query)
        assert (response.status_code, response.mimetype, response.text) == (200, "text/plain", "ok\n")
    head = app.head("/health")
    assert head.status_code == 200 and head.data == b""
    assert app.get("/health/more").status_code in (400, 404)  # only the one-segment path


def test_metrics_are_off_by_default_and_must_be_a_boolean():
    status, _, body = TileStache.requestHandler2({"layers": {}}, "/metrics")
    assert status == 404 and b"metrics" in body
    with pytest.raises(ConfigError, match="'metrics'"):
        TileStache.parseConfig({"metrics": "yes", "layers": {}})


def test_metrics_without_prometheus_client_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # an import of it now fails
    with pytest.raises(ConfigError, match=r"TileStache\[metrics\]"):
        TileStache.parseConfig({"metrics": True, "layers": {}})


class MemcachedOnPort(services.Memcached):
    """memcached on a given port, to bring one back where its clients expect it."""

    def __init__(self, port: int) -> None:
        self.wanted_port = port
        super().__init__()

    def _start_with_retries(self):
        self.port = self.wanted_port
        self._start()


def wait_for_status(app, path, query, status, deadline=30.0) -> int:
    """Ask until the answer has this status (the cache's outage record retries every few seconds)."""
    end = time.monotonic() + deadline
    while True:
        got = app.get(path, query_string=query).status_code
        if got == status or time.monotonic() > end:
            return got
        time.sleep(0.1)  # polling a health URL, as a load balancer does: no event to await


def test_readiness_follows_memcached(tmp_path):
    memcached = services.Memcached()  # our own: the shared fixture stays up for the other tests
    try:
        config = {"cache": {"name": "Memcache", "servers": [memcached.address]},
                  "layers": {"a": {"provider": {"class": "plugins:GridPainter"}}}}
        app = Client(TileStache.WSGITileServer(config))
        assert app.get("/health", query_string="ready=1").status_code == 200
        port = memcached.port
        memcached.stop()
        assert app.get("/health", query_string="ready=1").status_code == 503
        assert app.get("/health").status_code == 200  # alive, only not ready
        memcached = MemcachedOnPort(port)
        assert wait_for_status(app, "/health", "ready=1", 200) == 200
    finally:
        memcached.stop()


def test_one_info_line_per_render_none_per_hit_and_a_warning_per_upstream_failure(tmp_path, upstream, caplog):
    config = TileStache.parseConfig({
        "metrics": True, "cache": {"name": "Disk", "path": str(tmp_path / "cache")},
        "layers": {"grid": {"provider": {"class": "plugins:GridPainter"},
                            "metatile": {"rows": 2, "columns": 2}},
                   "down": {"provider": {"name": "proxy", "url": upstream.url + "/status/500/{Z}/{X}/{Y}.png"}}}})
    before = samples(TileStache.requestHandler2(config, "/metrics")[2].decode())
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            for x, y in ((0, 0), (1, 0), (0, 1), (1, 1)):  # one metatile
                assert TileStache.requestHandler2(config, f"/grid/3/{x}/{y}.png")[0] == 200
        assert TileStache.requestHandler2(config, "/down/3/0/0.png")[0] == 502
        assert TileStache.requestHandler2(config, "/down/3/0/0.png")[0] == 502
    records = [r for r in caplog.records if r.name.startswith("TileStache")]
    infos = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert infos == ["rendered layer=grid metatile=3/0/0 tiles=4 ms=%s cache=Disk" % infos[0].split("ms=")[1]
                     .split()[0]], infos
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("layer=down" in w and "500" in w for w in warnings), warnings
    after = samples(TileStache.requestHandler2(config, "/metrics")[2].decode())
    grown = {key: after[key] - before.get(key, 0.0) for key in after}
    assert grown[("tilestache_cache_hits_total", (("layer", "grid"),))] == 11
    assert grown[("tilestache_cache_misses_total", (("layer", "grid"),))] == 1
    assert grown[("tilestache_render_seconds_count", (("layer", "grid"),))] == 1
    assert grown[("tilestache_upstream_errors_total", (("layer", "down"),))] == 2
    assert not any("row" in dict(labels) or "x" in dict(labels) for _, labels in after)


# -- under gunicorn ---------------------------------------------------------------

def get(port: int, path: str) -> tuple[int, bytes]:
    """One GET on a connection of its own (so the two sync workers share the load)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def workers(master: int) -> set[int]:
    """The pids of a gunicorn master's worker processes."""
    try:
        with open(f"/proc/{master}/task/{master}/children") as file:
            return {int(pid) for pid in file.read().split()}
    except FileNotFoundError:
        return set()


def requests_of_file(path: str) -> float:
    """Requests one worker's counter file holds."""
    from prometheus_client.multiprocess import MultiProcessCollector

    return sum(s.value for m in MultiProcessCollector.merge([path]) if m.name == "tilestache_requests"
               for s in m.samples if s.name.endswith("_total"))


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gunicorn")
    config = {
        "metrics": True,
        "cache": {"name": "Disk", "path": str(folder / "cache")},
        "layers": {
            "a": {"provider": {"class": "plugins:GridPainter", "kwargs": {"log": str(folder / "a.log")}},
                  "bounds": {"low": 0, "high": 3}},
            "b": {"provider": {"class": "plugins:TilePainter", "kwargs": {"log": str(folder / "b.log")}}},
        },
    }
    (folder / "tilestache.cfg").write_text(json.dumps(config))
    metrics_dir = folder / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from a previous run")  # emptied on start
    port = services.free_port()
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
               PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]))
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", str(GUNICORN_CONF), "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--graceful-timeout", "5", f"TileStache:WSGITileServer({str(folder / 'tilestache.cfg')!r})"],
        env=env, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(folder / "gunicorn.log", "wb"), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (folder / "gunicorn.log").read_text()
            try:
                if get(port, "/health")[0] == 200 and len(workers(process.pid)) == 2:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (folder / "gunicorn.log").read_text()
            time.sleep(0.05)  # polling a port: there is no event to await
        yield port, process.pid, folder, metrics_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# What the test sends, and how each answer counts: (path, layer label, status).
PLAN = ([(f"/a/2/{x}/{y}.png", "a", 200) for x in range(4) for y in range(4)] * 4
        + [(f"/b/1/{x}/{y}.png", "b", 200) for x in range(2) for y in range(2)] * 3
        + [("/a/5/0/0.png", "a", 404)] * 5  # below the bounds' zooms: no cache read
        + [("/b/1/0/0.xyz", "b", 400)] * 4
        + [("/zzz/1/0/0.png", "", 404)] * 3
        + [("/", "", 200)] * 2
        + [("/health", None, 200)] * 2)  # probes are not counted


def test_gunicorn_counts_every_request_of_both_workers_and_survives_a_killed_worker(gunicorn_server):
    port, master, folder, metrics_dir = gunicorn_server
    assert not (metrics_dir / "counter_999999.db").exists()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda item: get(port, item[0])[0], PLAN))
    assert answers == [status for _, _, status in PLAN]

    status, body = get(port, "/metrics")
    assert status == 200
    found = samples(body.decode())
    expected = Counter((layer, f"{status // 100}xx") for _, layer, status in PLAN if layer is not None)
    for (layer, status_class), count in expected.items():
        assert value(found, "tilestache_requests_total", layer=layer, status=status_class) == count
    assert sum(v for (name, _), v in found.items() if name == "tilestache_requests_total") == sum(expected.values())
    for layer, tiles, requests in (("a", 16, 64), ("b", 4, 12)):
        hits = value(found, "tilestache_cache_hits_total", layer=layer)
        misses = value(found, "tilestache_cache_misses_total", layer=layer)
        assert hits + misses == requests and misses >= tiles
        # the metatile lock lets one worker render each tile, once
        assert value(found, "tilestache_render_seconds_count", layer=layer) == tiles
        assert len(read_log(str(folder / f"{layer}.log"))) == tiles
    files = {int(p.stem.split("_")[1]): str(p) for p in metrics_dir.glob("counter_*.db")}
    served = {pid: requests_of_file(path) for pid, path in files.items()}
    alive = workers(master)
    assert alive <= set(served) and all(served[pid] > 0 for pid in alive), served  # both workers took some

    victim = max(alive, key=served.get)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not (len(workers(master)) == 2 and victim not in workers(master)):
        assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
        time.sleep(0.05)  # waiting for the master to fork a new worker

    status, body = get(port, "/metrics")
    assert status == 200  # the dead worker's files do not fail the scrape
    after_kill = samples(body.decode())
    for key, count in found.items():
        if not key[0].endswith("_created"):
            assert after_kill.get(key, 0.0) >= count, key  # monotonic: the dead worker's counts stay
    (metrics_dir / "counter_4242424.db").write_bytes(b"\xff\x00\x00\x00 half a file")  # a torn write
    status, body = get(port, "/metrics")
    assert status == 200 and samples(body.decode()) == after_kill  # the unreadable file is left out
    more = [f"/a/2/{x}/0.png" for x in range(4)] * 5
    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(lambda path: get(port, path)[0], more)) == {200}
    final = samples(get(port, "/metrics")[1].decode())
    assert value(final, "tilestache_requests_total", layer="a", status="2xx") == 64 + len(more)
    assert value(final, "tilestache_cache_hits_total", layer="a") == \
        value(found, "tilestache_cache_hits_total", layer="a") + len(more)
    assert get(port, "/health")[0] == 200
