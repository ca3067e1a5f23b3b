"""The render-and-cache pipeline: metatiles, bounds, write cache, lifespan, locking."""
import gzip
import io
import multiprocessing
import os
import threading
import time

import pytest
from ModestMaps.Core import Coordinate
from PIL import Image

import TileStache
from plugins import read_log

HALF = 20037508.342789244


def make_config(tmp_path, provider=None, **layer):
    log = str(tmp_path / "renders.log")
    spec = {"provider": provider or {"class": "plugins:GridPainter", "kwargs": {"log": log}}}
    spec.update(layer)
    config = TileStache.parseConfig({
        "cache": {"name": "Disk", "path": str(tmp_path / "cache"), "dirs": "portable"},
        "layers": {"test": spec},
    })
    return config, config.layers["test"], log


def cached_files(tmp_path):
    root = tmp_path / "cache"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_single_tile_is_rendered_encoded_and_cached(tmp_path):
    config, layer, log = make_config(tmp_path)
    mime, body = TileStache.getTile(layer, Coordinate(1, 2, 3), "png")
    assert mime == "image/png"
    image = Image.open(io.BytesIO(body))
    assert image.size == (256, 256) and image.format == "PNG"
    assert cached_files(tmp_path) == ["test/3/2/1.png"]
    calls = read_log(log)
    assert len(calls) == 1
    assert calls[0]["width"] == calls[0]["height"] == 256
    # tile 3/2/1 in metres: x from -HALF + 2 * HALF/4, y top = HALF - 1 * HALF/4
    step = 2 * HALF / 8
    expected = [-HALF + 2 * step, HALF - 2 * step, -HALF + 3 * step, HALF - step]
    assert calls[0]["bbox"] == pytest.approx(expected)
    # a second request is a cache hit: no new render
    assert TileStache.getTile(layer, Coordinate(1, 2, 3), "png")[1] == body
    assert len(read_log(log)) == 1


def test_metatile_renders_once_and_saves_every_tile(tmp_path):
    config, layer, log = make_config(tmp_path, metatile={"rows": 2, "columns": 2, "buffer": 16})
    TileStache.getTile(layer, Coordinate(5, 7, 4), "png")
    assert cached_files(tmp_path) == ["test/4/6/4.png", "test/4/6/5.png", "test/4/7/4.png", "test/4/7/5.png"]
    calls = read_log(log)
    assert len(calls) == 1
    assert (calls[0]["width"], calls[0]["height"]) == (2 * 256 + 32, 2 * 256 + 32)
    step = 2 * HALF / 16
    pad = step / 256 * 16
    expected = [-HALF + 6 * step - pad, HALF - 6 * step - pad, -HALF + 8 * step + pad, HALF - 4 * step + pad]
    assert calls[0]["bbox"] == pytest.approx(expected)
    for name in ("6/4", "7/5"):
        TileStache.getTile(layer, Coordinate(int(name[2]), int(name[0]), 4), "png")
    assert len(read_log(log)) == 1


def test_metatile_cut_matches_area_render(tmp_path):
    """Each saved tile is the matching piece of the metatile, buffer excluded."""
    config, layer, log = make_config(tmp_path, metatile={"rows": 2, "columns": 2, "buffer": 32})
    TileStache.getTile(layer, Coordinate(0, 0, 2), "png")
    big = layer.provider.renderArea(2 * 256 + 64, 2 * 256 + 64, "", 0, 0, 1, 1, 2)
    piece = big.crop((32 + 256, 32, 32 + 512, 32 + 256))
    tile = Image.open(io.BytesIO(TileStache.getTile(layer, Coordinate(0, 1, 2), "png")[1]))
    assert tile.convert("RGBA").tobytes() == piece.tobytes()


def test_metatile_is_clipped_to_the_world(tmp_path):
    config, layer, log = make_config(tmp_path, metatile={"rows": 4, "columns": 4, "buffer": 0})
    TileStache.getTile(layer, Coordinate(0, 0, 1), "png")
    calls = read_log(log)
    assert (calls[0]["width"], calls[0]["height"]) == (512, 512)
    assert calls[0]["bbox"] == pytest.approx([-HALF, -HALF, HALF, HALF])
    assert len(cached_files(tmp_path)) == 4


def test_write_cache_false_saves_nothing(tmp_path):
    config, layer, log = make_config(tmp_path, **{"write cache": False})
    TileStache.getTile(layer, Coordinate(0, 0, 1), "png")
    TileStache.getTile(layer, Coordinate(0, 0, 1), "png")
    assert cached_files(tmp_path) == []
    assert len(read_log(log)) == 2


def test_cache_lifespan_expires_tiles(tmp_path):
    config, layer, log = make_config(tmp_path, **{"cache lifespan": 60})
    TileStache.getTile(layer, Coordinate(0, 0, 1), "png")
    TileStache.getTile(layer, Coordinate(0, 0, 1), "png")
    assert len(read_log(log)) == 1
    old = time.time() - 120
    os.utime(tmp_path / "cache/test/1/0/0.png", (old, old))
    TileStache.getTile(layer, Coordinate(0, 0, 1), "png")
    assert len(read_log(log)) == 2


def test_ignore_cached_renders_again(tmp_path):
    config, layer, log = make_config(tmp_path)
    TileStache.getTile(layer, Coordinate(0, 0, 1), "png")
    TileStache.getTile(layer, Coordinate(0, 0, 1), "png", ignore_cached=True)
    assert len(read_log(log)) == 2


def test_no_tile_left_behind_is_returned_but_not_cached(tmp_path):
    config, layer, log = make_config(tmp_path, provider={"class": "plugins:Forgetful"})
    mime, body = TileStache.getTile(layer, Coordinate(0, 0, 1), "png")
    assert Image.open(io.BytesIO(body)).getpixel((5, 5)) == (0, 255, 0, 255)
    assert cached_files(tmp_path) == []
    status, headers, body = TileStache.requestHandler2(config, "/test/1/0/0.png")
    assert status == 404
    image = Image.open(io.BytesIO(body))
    assert image.size == (256, 256) and image.getextrema()[3] == (0, 0)
    assert cached_files(tmp_path) == []


@pytest.mark.parametrize("path, status", [
    ("/test/3/4/2.png", 200),    # inside
    ("/test/3/0/0.png", 404),    # outside the box
    ("/test/1/1/0.png", 404),    # below the lowest zoom
    ("/test/9/272/162.png", 404),  # above the highest zoom
])
def test_bounds(tmp_path, path, status):
    bounds = {"low": 2, "high": 8, "north": 60, "west": 0, "south": 30, "east": 40}
    config, layer, log = make_config(tmp_path, bounds=bounds)
    code, headers, body = TileStache.requestHandler2(config, path)
    assert code == status
    image = Image.open(io.BytesIO(body))
    assert image.size == (256, 256)
    if status == 404:
        assert image.getextrema()[3] == (0, 0)  # fully transparent
        assert cached_files(tmp_path) == []


def test_bounds_list_serves_the_union(tmp_path):
    bounds = [{"north": 60, "west": 0, "south": 30, "east": 40},
              {"north": -10, "west": -80, "south": -50, "east": -40}]
    config, layer, log = make_config(tmp_path, bounds=bounds)
    assert layer.in_bounds(Coordinate(2, 4, 3))      # Europe
    assert layer.in_bounds(Coordinate(4, 2, 3))      # South America
    assert not layer.in_bounds(Coordinate(1, 0, 3))  # North Pacific


def test_tile_height_sets_tile_size(tmp_path):
    config, layer, log = make_config(tmp_path, **{"tile height": 512})
    body = TileStache.getTile(layer, Coordinate(0, 0, 0), "png")[1]
    assert Image.open(io.BytesIO(body)).size == (512, 512)


def test_jpeg_options_reach_the_encoder(tmp_path):
    config, layer, log = make_config(tmp_path, **{"jpeg options": {"quality": 10}})
    low = TileStache.getTile(layer, Coordinate(0, 0, 1), "jpg")[1]
    layer.jpeg_options = {"quality": 95}
    high = TileStache.getTile(layer, Coordinate(0, 0, 1), "jpg", ignore_cached=True)[1]
    assert Image.open(io.BytesIO(low)).format == "JPEG"
    assert len(low) < len(high)


def test_threads_asking_for_one_metatile_render_it_once(tmp_path):
    config, layer, log = make_config(tmp_path, metatile={"rows": 2, "columns": 2},
                                     provider={"class": "plugins:GridPainter",
                                               "kwargs": {"log": str(tmp_path / "renders.log"), "delay": 0.2}})
    coords = [Coordinate(r, c, 3) for r in (2, 3) for c in (4, 5)] * 2
    bodies = [None] * len(coords)
    start = threading.Barrier(len(coords))

    def fetch(i):
        start.wait()
        bodies[i] = TileStache.getTile(layer, coords[i], "png")[1]

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(len(coords))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(bodies)
    assert len(read_log(log)) == 1


def _fetch_in_process(config_path, row, column, barrier):
    barrier.wait()
    config = TileStache.parseConfig(config_path)
    TileStache.getTile(config.layers["test"], Coordinate(row, column, 3), "png")


def test_processes_asking_for_one_metatile_render_it_once(tmp_path):
    log = str(tmp_path / "renders.log")
    config_path = tmp_path / "tilestache.cfg"
    config_path.write_text(f"""{{
      "cache": {{"name": "Disk", "path": "cache"}},
      "layers": {{"test": {{"provider": {{"class": "plugins:GridPainter", "kwargs": {{"log": "{log}", "delay": 0.3}}}},
                            "metatile": {{"rows": 2, "columns": 2}}}}}}
    }}""")
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_fetch_in_process, args=(str(config_path), r, c, barrier))
               for r in (2, 3) for c in (4, 5)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    calls = read_log(log)
    assert len(calls) == 1
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 4
    assert not list((tmp_path / "cache").rglob("*.lock"))


def test_stale_lock_is_broken(tmp_path):
    config, layer, log = make_config(tmp_path, **{"stale lock timeout": 1})
    lock = tmp_path / "cache/test/1/0/0.png.lock"
    lock.mkdir(parents=True)
    old = time.time() - 10
    os.utime(lock, (old, old))
    TileStache.getTile(layer, Coordinate(0, 0, 1), "png")
    assert not lock.exists()
    assert len(read_log(log)) == 1


def test_render_tile_providers_skip_metatiling(tmp_path):
    log = str(tmp_path / "renders.log")
    config, layer, _ = make_config(tmp_path, provider={"class": "plugins:TilePainter", "kwargs": {"log": log}},
                                   metatile={"rows": 4, "columns": 4})
    TileStache.getTile(layer, Coordinate(1, 1, 2), "png")
    assert read_log(log) == [{"kind": "tile", "width": 256, "height": 256, "coord": [2, 1, 1]}]


def test_gzip_json_is_stored_compressed(tmp_path):
    config, layer, log = make_config(tmp_path, provider={"class": "plugins:JsonTiles"})
    mime, body = TileStache.getTile(layer, Coordinate(1, 0, 1), "json")
    assert mime == "application/json"
    stored = (tmp_path / "cache/test/1/0/1.json.gz").read_bytes()
    assert gzip.decompress(stored) == body
    assert TileStache.getTile(layer, Coordinate(1, 0, 1), "json")[1] == body
