"""tilestache-seed as a subprocess: which tiles it writes, resume, parallelism, failures, bad input."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import sqlite3
import struct
import subprocess
import termios
import time

import pytest
from PIL import Image, ImageChops

from counting_provider import rendered
from script_helpers import (BIN, TESTS, WORLD, bbox_tiles, counting_layer, disk_tiles, leftovers, metatile_expand,
                            start_tool, tool, write_config)

BBOX = (30.5, -10.5, 55.5, 20.5)  # south west north east: western Europe, edges off tile edges


def seed(cfg, *args, **kwargs):
    return tool("seed", "-c", cfg, *args, **kwargs)


def test_bbox_fills_exactly_the_metatiles_of_the_box(tmp_path):
    log = tmp_path / "renders.log"
    cfg = write_config(tmp_path, {"world": counting_layer(log)})
    result = seed(cfg, "-l", "world", "-b", *BBOX, "-j", "1", 2, 3, 4)
    assert result.returncode == 0, result.stderr
    expected = metatile_expand(bbox_tiles(*BBOX, [2, 3, 4]))
    assert disk_tiles(tmp_path / "cache", "world") == expected
    # one render per metatile, each metatile once
    assert len(rendered(log)) == len(expected) // 4 == len(set(rendered(log)))
    tile = Image.open(next((tmp_path / "cache" / "world" / "4").rglob("*.png")))
    assert tile.size == (256, 256)


def test_padding_and_single_tile_metatiles(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log", rows=1, columns=1, buffer=0)})
    result = seed(cfg, "-l", "world", "-b", *BBOX, "-p", "1", "-j", "1", "-q", 3, 4)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # quiet
    assert disk_tiles(tmp_path / "cache", "world") == bbox_tiles(*BBOX, [3, 4], padding=1)


def test_second_run_renders_nothing_and_ignore_cached_renders_again(tmp_path):
    log = tmp_path / "renders.log"
    cfg = write_config(tmp_path, {"world": counting_layer(log)})
    assert seed(cfg, "-l", "world", *WORLD, "-j", "2", 0, 1, 2).returncode == 0
    first = len(rendered(log))
    assert first == 1 + 1 + 4
    again = seed(cfg, "-l", "world", *WORLD, "-j", "2", 0, 1, 2)
    assert again.returncode == 0 and "0 rendered" in again.stderr
    assert len(rendered(log)) == first
    assert seed(cfg, "-l", "world", *WORLD, "-j", "2", "-x", 0, 1, 2).returncode == 0
    assert len(rendered(log)) == 2 * first


def test_to_mbtiles_fills_exactly_the_expected_tiles(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    out = tmp_path / "out.mbtiles"
    result = seed(cfg, "-l", "world", "-b", *BBOX, "--to-mbtiles", out, 2, 3)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "cache").exists()  # written to the MBTiles file instead
    with sqlite3.connect(out) as db:
        rows = db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles").fetchall()
    found = {(z, x, (1 << z) - 1 - tms) for z, x, tms, _ in rows}  # MBTiles rows are flipped
    assert found == metatile_expand(bbox_tiles(*BBOX, [2, 3]))
    assert all(data[:8] == b"\x89PNG\r\n\x1a\n" for *_, data in rows)


def test_from_mbtiles_copies_tiles_without_rendering(tmp_path):
    log = tmp_path / "log"
    cfg = write_config(tmp_path, {"world": counting_layer(log)})
    source = tmp_path / "source.mbtiles"
    assert seed(cfg, "-l", "world", *WORLD, "--to-mbtiles", source, 0, 1).returncode == 0
    renders = len(rendered(log))
    result = seed(cfg, "-l", "world", *WORLD, "--from-mbtiles", source, 0, 1, 2)
    assert result.returncode == 0, result.stderr
    assert len(rendered(log)) == renders
    assert disk_tiles(tmp_path / "cache", "world") == {(0, 0, 0), (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)}
    assert "16 missing in source" in result.stderr


def test_to_s3_writes_the_tiles(tmp_path, s3_server):
    client = s3_server.client()
    client.create_bucket(Bucket="seeded")
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    result = seed(cfg, "-l", "world", *WORLD, "--to-s3", "testing", "testing", "seeded", 0, 1,
                  env_extra={"AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_DEFAULT_REGION": "us-east-1"})
    assert result.returncode == 0, result.stderr
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="seeded").get("Contents", [])}
    assert {k for k in keys if k.endswith(".png")} == {"world/0/0/0.png", "world/1/0/0.png", "world/1/0/1.png",
                                                       "world/1/1/0.png", "world/1/1/1.png"}


def test_two_jobs_give_the_same_tiles_as_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, jobs in ((one, 1), (two, 2)):
        folder.mkdir()
        cfg = write_config(folder, {"world": counting_layer(folder / "log")})
        assert seed(cfg, "-l", "world", *WORLD, "-j", jobs, 0, 1, 2, 3).returncode == 0
    tiles = disk_tiles(one / "cache", "world")
    assert tiles == disk_tiles(two / "cache", "world") and len(tiles) == 1 + 4 + 16 + 64
    for a in sorted((one / "cache").rglob("*.png")):
        b = two / a.relative_to(one)
        assert ImageChops.difference(Image.open(a).convert("RGBA"), Image.open(b).convert("RGBA")).getbbox() is None
    # no metatile rendered twice, and both processes did some of the work
    assert sorted(rendered(two / "log")) == sorted(set(rendered(two / "log")))
    assert len(rendered(two / "log")) == 1 + 1 + 4 + 16


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


ZOOMS = (0, 1, 2, 3, 4)
METATILES = 1 + 1 + 4 + 16 + 64


def test_resume_after_sigint_renders_each_metatile_once(tmp_path):
    log = tmp_path / "renders.log"
    cfg = write_config(tmp_path, {"world": counting_layer(log, delay=0.05)})
    run = start_tool("seed", "-c", cfg, "-l", "world", *WORLD, "-j", "2", *ZOOMS)
    wait_for(lambda: len(rendered(log)) >= 10)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "interrupted" in err
    done = len(rendered(log))
    assert done < METATILES
    assert leftovers(tmp_path / "cache") == []  # no temporary files or locks left
    assert len(disk_tiles(tmp_path / "cache", "world")) == 4 * done - 3  # z0, z1: single tiles / one 2x2

    result = seed(cfg, "-l", "world", *WORLD, "-j", "2", *ZOOMS)
    assert result.returncode == 0, result.stderr
    lines = rendered(log)
    assert len(lines) == METATILES == len(set(lines))
    assert len(disk_tiles(tmp_path / "cache", "world")) == sum(4 ** z for z in ZOOMS)


def test_resume_after_kill_skips_finished_metatiles(tmp_path):
    log = tmp_path / "renders.log"
    # kill -9 leaves the metatile lock being held; it is broken after the stale lock timeout
    cfg = write_config(tmp_path, {"world": counting_layer(log, delay=0.05, **{"stale lock timeout": 1})})
    run = start_tool("seed", "-c", cfg, "-l", "world", *WORLD, "-j", "1", *ZOOMS)
    wait_for(lambda: len(rendered(log)) >= 8)
    run.kill()
    run.communicate(timeout=30)
    before = rendered(log)
    cached = disk_tiles(tmp_path / "cache", "world")
    finished = {line for line in before
                if metatile_expand({tuple(map(int, line.split("/")))}) <= cached}
    assert len(finished) >= 7

    result = seed(cfg, "-l", "world", *WORLD, "-j", "1", *ZOOMS)
    assert result.returncode == 0, result.stderr
    again = rendered(log)[len(before):]
    assert not finished & set(again)  # finished metatiles are not rendered again
    assert set(before) | set(again) == set(rendered(log)) and len(set(rendered(log))) == METATILES
    assert len(disk_tiles(tmp_path / "cache", "world")) == sum(4 ** z for z in ZOOMS)


def test_progress_file(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    progress = tmp_path / "progress.json"
    assert seed(cfg, "-l", "world", *WORLD, "-f", progress, 0, 1, 2).returncode == 0
    state = json.loads(progress.read_text())
    assert state["offset"] == state["total"] == 1 + 4 + 16


def test_failed_metatiles_are_reported_and_the_run_goes_on(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log", fail_zoom=2)})
    result = seed(cfg, "-l", "world", *WORLD, "-j", "2", 1, 2, 3)
    assert result.returncode == 1
    assert "4 metatiles failed" in result.stderr
    assert "2/0/0: RuntimeError: refusing to render zoom 2" in result.stderr
    zooms = {z for z, _, _ in disk_tiles(tmp_path / "cache", "world")}
    assert zooms == {1, 3}


@pytest.mark.parametrize("args, message", [
    (["-l", "world", "-b", 80, 0, 89, 10, 3], "outside the projection"),
    (["-l", "world", 3, 12], "zoom 12 is outside the layer's zoom range 0..10"),
    (["-l", "nowhere", 3], "layer 'nowhere' is not in"),
    (["-l", "world", "-e", "xyz", 3], "Unsupported tile format"),
    (["-l", "world"], "at least one zoom"),
])
def test_usage_errors_exit_2_and_write_nothing(tmp_path, args, message):
    cfg = write_config(tmp_path, {"world": counting_layer(
        tmp_path / "log", bounds={"low": 0, "high": 10, "north": 85, "south": -85, "west": -180, "east": 180})})
    result = seed(cfg, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "log").exists()


def test_missing_config_is_a_usage_error(tmp_path):
    result = tool("seed", "-c", tmp_path / "nope.cfg", "-l", "world", 1)
    assert result.returncode == 2 and "nope.cfg does not exist" in result.stderr


def test_layer_bounds_limit_what_is_seeded(tmp_path):
    log = tmp_path / "renders.log"
    bounds = {"north": 55.5, "west": -10.5, "south": 30.5, "east": 20.5, "low": 0, "high": 5}
    cfg = write_config(tmp_path, {"world": counting_layer(log, bounds=bounds)})
    result = seed(cfg, "-l", "world", *WORLD, 4, 5)
    assert result.returncode == 0, result.stderr
    assert disk_tiles(tmp_path / "cache", "world") == metatile_expand(bbox_tiles(*BBOX, [4, 5]))


def test_progress_bar_on_a_terminal_and_log_lines_otherwise(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log")})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    env = dict(os.environ, PYTHONPATH=TESTS)
    run = subprocess.Popen([os.path.join(BIN, "tilestache-seed"), "-c", str(cfg), "-l", "world", *map(str, WORLD), "0", "1", "2"],
                           stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert run.wait(timeout=60) == 0
    text = output.decode(errors="replace")
    assert "21/21" in text and "tile/s" in text  # tqdm's bar: tiles done and the rate
    piped = seed(cfg, "-l", "world", *WORLD, "-x", 0, 1, 2)
    assert "21/21 tiles (100.0%)" in piped.stderr and "tiles/s" in piped.stderr and "\r" not in piped.stderr


def test_enable_retries_renders_a_metatile_that_failed_once(tmp_path):
    cfg = write_config(tmp_path, {"world": counting_layer(tmp_path / "log", fail_zoom=1,
                                                          fail_once=tmp_path / "failed")})
    result = seed(cfg, "-l", "world", *WORLD, "-j", "1", "--enable-retries", 0, 1)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "failed").exists()  # it did fail once
    assert disk_tiles(tmp_path / "cache", "world") == {(0, 0, 0), (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)}
    (tmp_path / "failed").unlink()
    without = seed(cfg, "-l", "world", *WORLD, "-j", "1", "-x", 0, 1)
    assert without.returncode == 1 and "1/0/0: RuntimeError: failing once at zoom 1" in without.stderr
