"""Distributed seeding: tilestache-seed --cluster with real redis-server and real tilestache-worker processes."""
from __future__ import annotations

import collections
import itertools
import os
import signal
import sqlite3
import subprocess

import pytest
import redis

from counting_provider import rendered
from script_helpers import (BIN, TESTS, bbox_tiles, counting_layer, disk_tiles, leftovers, metatile_expand,
                            tool, write_config)

BBOX = (30.5, -10.5, 55.5, 20.5)  # south west north east
_databases = itertools.count(1)


@pytest.fixture
def cluster(redis_server):
    """A redis:// URL on a database of its own, emptied, and a starter of workers stopped afterwards."""
    url = f"redis://{redis_server.host}:{redis_server.port}/{next(_databases) % 16 or 1}"
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    workers = []

    def start(cfg, concurrency=2, name=None, env=None):
        name = name or f"w{len(workers)}-{os.getpid()}@test"
        environment = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""),
                           **(env or {}))
        log = open(os.path.join(os.path.dirname(cfg), f"{name}.log"), "w")
        process = subprocess.Popen([os.path.join(BIN, "tilestache-worker"), "-c", cfg, "--cluster", url,
                                    "--concurrency", str(concurrency), "-n", name],
                                   stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        workers.append(process)
        while True:  # await its announcement (or its early death)
            item = client.blpop("tilestache:workers:ready", timeout=1)
            if item and item[1] == name:
                return process
            assert process.poll() is None, open(log.name).read()

    class Cluster:
        pass

    c = Cluster()
    c.url, c.client, c.start = url, client, start
    yield c
    for process in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    client.flushdb()


def children(pid: int) -> list[int]:
    """Process ids of a process's children."""
    with open(f"/proc/{pid}/task/{pid}/children") as file:
        return [int(p) for p in file.read().split()]


def files(folder) -> dict[str, bytes]:
    """Every file under a folder by its relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def wait_for_renders(log, count: int, process=None) -> None:
    """Block until the render log holds count lines (inotify-free: the log is tiny, re-read on each wake)."""
    import time

    while len(rendered(log)) < count:
        assert process is None or process.poll() is None
        time.sleep(0.05)


def seed_cluster(cfg, url, *args, **kwargs):
    return tool("seed", "-c", cfg, "-l", "world", "--cluster", url, *args, **kwargs)


def test_cluster_seed_equals_a_local_seed_byte_for_byte(tmp_path, cluster):
    layers = {"world": counting_layer(tmp_path / "log", rows=4, columns=4, buffer=64)}
    local = tmp_path / "local"
    local.mkdir()
    write_config(local, layers, {"name": "Disk", "path": "cache"})
    assert tool("seed", "-c", local / "tilestache.cfg", "-l", "world", "-b", *BBOX, "-j", "1", 1, 2, 3, 4, 5
                ).returncode == 0
    for kind, cache in (("disk", {"name": "Disk", "path": "cache"}),
                        ("mbtiles", {"name": "MBTiles", "filename": "tiles.mbtiles"})):
        folder = tmp_path / kind
        folder.mkdir()
        cfg = write_config(folder, layers, cache)
        worker = cluster.start(cfg, concurrency=3)
        result = seed_cluster(cfg, cluster.url, "-b", *BBOX, "--task-levels", "2", 1, 2, 3, 4, 5)
        assert result.returncode == 0, result.stderr
        assert "0 failed" in result.stderr
        expected = metatile_expand(bbox_tiles(*BBOX, [1, 2, 3, 4, 5]), 4, 4)
        if kind == "disk":
            assert disk_tiles(folder / "cache", "world") == expected == disk_tiles(local / "cache", "world")
            assert files(folder / "cache") == files(local / "cache")
        else:
            with sqlite3.connect(folder / "tiles.mbtiles") as db:
                stored = {(z, x, (1 << z) - 1 - y): bytes(data) for z, x, y, data in
                          db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")}
            assert set(stored) == expected
            by_name = files(local / "cache")
            for (z, x, y), data in stored.items():
                assert data == by_name[f"world/{z}/000/{x:03d}/000/{y:03d}.png"]
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait()
        cluster.client.delete("tilestache:workers")


def test_a_worker_process_killed_mid_task_loses_nothing(tmp_path, cluster):
    log = tmp_path / "log"
    cfg = write_config(tmp_path, {"world": counting_layer(log, delay=0.15, **{"stale lock timeout": 1})})
    worker = cluster.start(cfg, concurrency=2)
    producer = subprocess.Popen([os.path.join(BIN, "tilestache-seed"), "-c", cfg, "-l", "world", "--cluster",
                                 cluster.url, "-b", *map(str, BBOX), "-q", "2", "3", "4", "5"],
                                env=dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", "")),
                                stderr=subprocess.PIPE, text=True)
    wait_for_renders(log, 6, producer)
    os.kill(children(worker.pid)[0], signal.SIGKILL)
    _, stderr = producer.communicate(timeout=120)
    assert producer.returncode == 0, stderr
    expected = metatile_expand(bbox_tiles(*BBOX, [2, 3, 4, 5]))
    assert disk_tiles(tmp_path / "cache", "world") == expected
    counts = collections.Counter(rendered(log))
    assert set(counts) == {f"{z}/{x}/{y}" for z, x, y in expected if x % 2 == 0 and y % 2 == 0}
    twice = [name for name, n in counts.items() if n > 1]
    assert len(twice) <= 1  # the one being rendered when its process died; the rest of its task went on
    assert leftovers(tmp_path / "cache") == []


def test_a_whole_worker_killed_then_another_started_completes_the_job(tmp_path, cluster):
    log = tmp_path / "log"
    cfg = write_config(tmp_path, {"world": counting_layer(log, delay=0.1, **{"stale lock timeout": 1})})
    short = {"TILESTACHE_VISIBILITY_TIMEOUT": "8"}
    first = cluster.start(cfg, concurrency=2, name="first@test", env=short)
    producer = subprocess.Popen([os.path.join(BIN, "tilestache-seed"), "-c", cfg, "-l", "world", "--cluster",
                                 cluster.url, "-b", *map(str, BBOX), "-q", "2", "3", "4"],
                                env=dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", "")),
                                stderr=subprocess.PIPE, text=True)
    wait_for_renders(log, 4, producer)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    cluster.client.hdel("tilestache:workers", "first@test")
    cluster.start(cfg, concurrency=2, name="second@test", env=short)
    _, stderr = producer.communicate(timeout=120)
    assert producer.returncode == 0, stderr
    assert disk_tiles(tmp_path / "cache", "world") == metatile_expand(bbox_tiles(*BBOX, [2, 3, 4]))


def test_a_poison_metatile_fails_three_times_and_the_rest_completes(tmp_path, cluster):
    log = tmp_path / "log"
    cfg = write_config(tmp_path, {"world": counting_layer(log, fail_zoom=3)})
    cluster.start(cfg, concurrency=2)
    result = seed_cluster(cfg, cluster.url, "-b", *BBOX, 2, 3, 4)
    assert result.returncode == 1
    failed = sorted({f"3/{x // 2 * 2}/{y // 2 * 2}" for z, x, y in bbox_tiles(*BBOX, [3])})
    for name in failed:
        assert f"  {name}: RuntimeError: refusing to render zoom 3" in result.stderr
    assert {z for z, _, _ in disk_tiles(tmp_path / "cache", "world")} == {2, 4}
    job = result.stderr.split("job ", 1)[1].split(":", 1)[0]
    status = tool("seed", "--cluster", cluster.url, "--status", job)
    assert status.returncode == 1 and "done" in status.stdout.splitlines()[0]
    assert sum(line.startswith("failed 3/") for line in status.stdout.splitlines()) == len(failed)


def test_producer_killed_then_resumed_renders_nothing_twice(tmp_path, cluster):
    log = tmp_path / "log"
    cfg = write_config(tmp_path, {"world": counting_layer(log, delay=0.05)})
    cluster.start(cfg, concurrency=1)
    stderr_path = tmp_path / "producer.err"
    with open(stderr_path, "w") as err:
        producer = subprocess.Popen([os.path.join(BIN, "tilestache-seed"), "-c", cfg, "-l", "world", "--cluster",
                                     cluster.url, "-b", *map(str, BBOX), "--task-levels", "1", "-q", "3", "4", "5"],
                                    env=dict(os.environ, PYTHONPATH=TESTS + os.pathsep
                                             + os.environ.get("PYTHONPATH", "")), stderr=err)
        wait_for_renders(log, 3, producer)
        producer.kill()
        producer.wait()
    job = stderr_path.read_text().split("job ", 1)[1].split(":", 1)[0]
    sent = int(cluster.client.hget(f"tilestache:job:{job}", "position"))
    assert sent < int(cluster.client.hget(f"tilestache:job:{job}", "tasks"))  # it died mid-way
    resumed = tool("seed", "--cluster", cluster.url, "--resume", job)
    assert resumed.returncode == 0, resumed.stderr
    expected = metatile_expand(bbox_tiles(*BBOX, [3, 4, 5]))
    assert disk_tiles(tmp_path / "cache", "world") == expected
    assert sorted(rendered(log)) == sorted({f"{z}/{x}/{y}" for z, x, y in expected if x % 2 == 0 == y % 2})
    status = tool("seed", "--cluster", cluster.url, "--status", job)
    assert status.returncode == 0 and f"job {job}: layer world" in status.stdout and ", done" in status.stdout


def expire_expected(tiles, zooms, size=2):
    """First tiles of the size x size metatiles covering each listed z/x/y at each zoom."""
    out = set()
    for z, x, y in tiles:
        for target in zooms:
            if target <= z:
                cover = {(x >> (z - target), y >> (z - target))}
            else:
                scale = 1 << (target - z)
                cover = {(x * scale + i, y * scale + j) for i in range(scale) for j in range(scale)}
            out |= {f"{target}/{cx // size * size}/{cy // size * size}" for cx, cy in cover}
    return out


@pytest.mark.parametrize("where", ["local", "cluster"])
def test_expire_list_rerenders_exactly_the_covering_metatiles(tmp_path, cluster, where):
    log = tmp_path / "log"
    cfg = write_config(tmp_path, {"world": counting_layer(log)})
    listed = [(15, 18000, 11000), (15, 18001, 11000), (15, 17000, 12001)]
    (tmp_path / "expired.txt").write_text("".join(f"{z}/{x}/{y}\n" for z, x, y in listed))
    zooms = [12, 13, 14, 15, 16]
    if where == "cluster":
        cluster.start(cfg, concurrency=2)
        result = seed_cluster(cfg, cluster.url, "--tile-list", tmp_path / "expired.txt", *zooms)
    else:
        result = tool("seed", "-c", cfg, "-l", "world", "--tile-list", tmp_path / "expired.txt", *zooms)
    assert result.returncode == 0, result.stderr
    assert collections.Counter(rendered(log)) == {name: 1 for name in expire_expected(listed, zooms)}


def test_unreachable_broker_fails_at_once_with_exit_2(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = seed_cluster(cfg, f"redis://127.0.0.1:{port}/0", "-b", *BBOX, 2, timeout=20)
    assert result.returncode == 2 and "cannot reach the cluster" in result.stderr
    assert rendered(tmp_path / "log") == []
    worker = tool("worker", "-c", cfg, "--cluster", f"redis://127.0.0.1:{port}/0", timeout=20)
    assert worker.returncode == 2 and "cannot reach the cluster" in worker.stderr


def test_unknown_job_and_bad_options_are_usage_errors(tmp_path, cluster):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    for command in ("--status", "--resume", "--cancel"):
        result = tool("seed", "--cluster", cluster.url, command, "nosuchjob")
        assert result.returncode == 2 and "no job 'nosuchjob'" in result.stderr
    result = seed_cluster(cfg, cluster.url, "--to-mbtiles", tmp_path / "x.mbtiles", 2)
    assert result.returncode == 2 and "--to-mbtiles can not be used with --cluster" in result.stderr
    assert tool("seed", "--status", "abc").returncode == 2
    assert cluster.client.keys("tilestache:job:*") == []


def test_a_worker_with_another_configuration_refuses_the_job(tmp_path, cluster):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    other = tmp_path / "other"
    other.mkdir()
    differing = cluster.start(write_config(other, {"world": counting_layer(tmp_path / "log", rows=1, columns=1)}))
    result = seed_cluster(cfg, cluster.url, "-b", *BBOX, 2, 3)
    assert result.returncode == 2
    assert "refused job" in result.stderr and "differs from the job's" in result.stderr
    assert rendered(tmp_path / "log") == []
    missing = tmp_path / "missing"
    missing.mkdir()
    os.killpg(differing.pid, signal.SIGKILL)
    differing.wait()
    cluster.client.delete("tilestache:workers")
    cluster.start(write_config(missing, {"elsewhere": counting_layer(tmp_path / "log")}))
    job = result.stderr.split("job ", 1)[1].split(":", 1)[0]
    cluster.client.delete(f"tilestache:job:{job}:refused")
    again = seed_cluster(cfg, cluster.url, "-b", *BBOX, 2)
    assert again.returncode == 2 and "layer 'world' is not in the worker's configuration" in again.stderr
