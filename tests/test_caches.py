"""Test, Disk and Multi caches: layouts, gzip, umask, atomic writes, lifespan, locks."""
import gzip
import os
import threading
import time

import pytest
from ModestMaps.Core import Coordinate

import TileStache
from TileStache import Caches


def layer_with(tmp_path, cache_spec, **layer_keys):
    spec = {"provider": {"class": "plugins:GridPainter"}}
    spec.update(layer_keys)
    config = TileStache.parseConfig({"cache": cache_spec, "layers": {"roads": spec}})
    return config.cache, config.layers["roads"]


def quadkey(column, row, zoom):
    digits = ""
    for z in range(zoom, 0, -1):
        mask = 1 << (z - 1)
        digits += str((1 if column & mask else 0) + (2 if row & mask else 0))
    return digits


@pytest.mark.parametrize("layout, expected", [
    ("safe", "roads/12/000/656/001/582.png"),
    ("portable", "roads/12/656/1582.png"),
])
def test_disk_layouts(layout, expected):
    assert Caches.disk_path(layout, "roads", Coordinate(1582, 656, 12), "png") == expected


def test_disk_safe_layout_for_big_numbers():
    path = Caches.disk_path("safe", "roads", Coordinate(654321, 1234567, 21), "jpg")
    assert path == "roads/21/123/4567/654/321.jpg"  # first three digits, then the rest


@pytest.mark.parametrize("zoom, column, row", [(12, 656, 1582), (0, 0, 0), (3, 7, 2), (16, 37309, 18970)])
def test_disk_quadtile_layout(zoom, column, row):
    key = "0" + quadkey(column, row, zoom)
    parts = [key[i:i + 3] for i in range(0, len(key), 3)]
    expected = "/".join(["roads"] + parts[:-1]) + f"/{parts[-1]}.png"
    assert Caches.disk_path("quadtile", "roads", Coordinate(row, column, zoom), "png") == expected


def test_disk_save_read_remove(tmp_path):
    cache, layer = layer_with(tmp_path, {"name": "Disk", "path": str(tmp_path), "dirs": "safe"})
    coord = Coordinate(1582, 656, 12)
    assert cache.read(layer, coord, "PNG") is None
    cache.save(b"tile bytes", layer, coord, "PNG")
    assert (tmp_path / "roads/12/000/656/001/582.png").read_bytes() == b"tile bytes"
    assert cache.read(layer, coord, "PNG") == b"tile bytes"
    entry = cache.read_entry(layer, coord, "PNG")
    assert entry.modified == pytest.approx(time.time(), abs=5) and entry.encoding is None
    cache.remove(layer, coord, "PNG")
    assert cache.read(layer, coord, "PNG") is None
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def test_disk_portable_path_in_a_folder_named_with_percent_signs(tmp_path):
    folder = tmp_path / "100%d%s"
    cache, layer = layer_with(tmp_path, {"name": "Disk", "path": str(folder), "dirs": "portable"})
    cache.save(b"tile", layer, Coordinate(5.0, 4.0, 3.0), "PNG")  # whole floats, as scripts pass them
    assert (folder / "roads/3/4/5.png").read_bytes() == b"tile"
    assert cache.read(layer, Coordinate(5, 4, 3), "PNG") == b"tile"


def test_disk_jpeg_extension_is_jpg(tmp_path):
    cache, layer = layer_with(tmp_path, {"name": "Disk", "path": str(tmp_path), "dirs": "portable"})
    cache.save(b"x", layer, Coordinate(1, 2, 3), "JPEG")
    assert (tmp_path / "roads/3/2/1.jpg").exists()


def test_disk_gzips_listed_formats(tmp_path):
    cache, layer = layer_with(tmp_path, {"name": "Disk", "path": str(tmp_path), "dirs": "portable",
                                         "gzip": ["json"]})
    cache.save(b'{"a": 1}', layer, Coordinate(1, 2, 3), "JSON")
    cache.save(b"txt", layer, Coordinate(1, 2, 3), "TXT")
    assert gzip.decompress((tmp_path / "roads/3/2/1.json.gz").read_bytes()) == b'{"a": 1}'
    assert (tmp_path / "roads/3/2/1.txt").read_bytes() == b"txt"
    assert cache.read(layer, Coordinate(1, 2, 3), "JSON") == b'{"a": 1}'
    assert cache.read_entry(layer, Coordinate(1, 2, 3), "JSON").encoding == "gzip"


def test_disk_default_gzip_list(tmp_path):
    cache = Caches.Disk(str(tmp_path))
    assert cache.gzip == ["txt", "text", "json", "xml"]


def test_disk_umask(tmp_path):
    cache, layer = layer_with(tmp_path, {"name": "Disk", "path": str(tmp_path), "umask": "0027",
                                         "dirs": "portable"})
    cache.save(b"x", layer, Coordinate(1, 2, 3), "PNG")
    assert oct((tmp_path / "roads/3/2/1.png").stat().st_mode & 0o777) == oct(0o640)
    assert oct((tmp_path / "roads/3/2").stat().st_mode & 0o777) == oct(0o750)


def test_disk_relative_path_resolves_against_config(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg/tilestache.cfg").write_text(
        '{"cache": {"name": "Disk", "path": "tiles"}, "layers": {}}')
    config = TileStache.parseConfig(str(tmp_path / "cfg/tilestache.cfg"))
    assert config.cache.cachepath == str(tmp_path / "cfg/tiles")


def test_disk_readers_never_see_a_partial_tile(tmp_path):
    cache, layer = layer_with(tmp_path, {"name": "Disk", "path": str(tmp_path)})
    coord = Coordinate(0, 0, 1)
    bodies = [bytes([i]) * 300_000 for i in range(1, 6)]
    stop = threading.Event()
    seen = []

    def read_loop():
        while not stop.is_set():
            body = cache.read(layer, coord, "PNG")
            if body is not None:
                seen.append(body in bodies)

    reader = threading.Thread(target=read_loop)
    reader.start()
    for _ in range(20):
        for body in bodies:
            cache.save(body, layer, coord, "PNG")
    stop.set()
    reader.join()
    assert seen and all(seen)
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert leftovers == []


def test_disk_lifespan(tmp_path):
    cache, layer = layer_with(tmp_path, {"name": "Disk", "path": str(tmp_path), "dirs": "portable"},
                              **{"cache lifespan": 30})
    cache.save(b"x", layer, Coordinate(1, 2, 3), "PNG")
    assert cache.read(layer, Coordinate(1, 2, 3), "PNG") == b"x"
    old = time.time() - 60
    os.utime(tmp_path / "roads/3/2/1.png", (old, old))
    assert cache.read(layer, Coordinate(1, 2, 3), "PNG") is None
    assert not (tmp_path / "roads/3/2/1.png").exists()


def test_disk_lock_excludes_a_second_holder(tmp_path):
    cache, layer = layer_with(tmp_path, {"name": "Disk", "path": str(tmp_path)}, **{"stale lock timeout": 30})
    coord = Coordinate(0, 0, 1)
    cache.lock(layer, coord, "PNG")
    acquired = threading.Event()

    def second():
        cache.lock(layer, coord, "PNG")
        acquired.set()
        cache.unlock(layer, coord, "PNG")

    thread = threading.Thread(target=second)
    thread.start()
    assert not acquired.wait(0.3)
    cache.unlock(layer, coord, "PNG")
    assert acquired.wait(5)
    thread.join()


def test_test_cache_stores_nothing_and_talks_when_verbose(tmp_path):
    lines = []
    cache = Caches.Test(verbose=True, logfunc=lines.append)
    _, layer = layer_with(tmp_path, {"name": "Test"})
    cache.save(b"x", layer, Coordinate(1, 2, 3), "PNG")
    assert cache.read(layer, Coordinate(1, 2, 3), "PNG") is None
    assert lines == ["Test cache save: roads/3/2/1.PNG", "Test cache read: roads/3/2/1.PNG"]


def test_multi_reads_in_order_fills_faster_tiers_and_writes_all(tmp_path):
    spec = {"name": "Multi", "tiers": [
        {"name": "Disk", "path": str(tmp_path / "fast"), "dirs": "portable"},
        {"name": "Disk", "path": str(tmp_path / "slow"), "dirs": "portable"},
    ]}
    cache, layer = layer_with(tmp_path, spec)
    fast, slow = cache.tiers
    slow.save(b"from slow", layer, Coordinate(1, 2, 3), "PNG")
    assert cache.read(layer, Coordinate(1, 2, 3), "PNG") == b"from slow"
    assert fast.read(layer, Coordinate(1, 2, 3), "PNG") == b"from slow"
    cache.save(b"both", layer, Coordinate(0, 0, 1), "PNG")
    assert fast.read(layer, Coordinate(0, 0, 1), "PNG") == slow.read(layer, Coordinate(0, 0, 1), "PNG") == b"both"
    cache.lock(layer, Coordinate(0, 0, 1), "PNG")
    assert (tmp_path / "fast/roads/1/0/0.png.lock").is_dir()
    assert not (tmp_path / "slow/roads/1/0/0.png.lock").exists()
    cache.unlock(layer, Coordinate(0, 0, 1), "PNG")
    cache.remove(layer, Coordinate(0, 0, 1), "PNG")
    assert fast.read(layer, Coordinate(0, 0, 1), "PNG") is None and slow.read(layer, Coordinate(0, 0, 1), "PNG") is None


def test_cache_by_name_is_case_insensitive():
    assert Caches.getCacheByName("DISK") is Caches.Disk
    with pytest.raises(KeyError):
        Caches.getCacheByName("floppy")
