"""Helpers shared by the cache backend tests (test_memcache, test_redis, test_s3,
test_mbtiles, test_limiteddisk): a provider that counts its renders, layer
configs around a cache, and N processes asking for tiles of one metatile.
"""
from __future__ import annotations

import io
import logging
import multiprocessing
import os
import time

from ModestMaps.Core import Coordinate
from PIL import Image

import TileStache

LAYER = "counted"
RED = (200, 40, 40, 255)


class CountingProvider:
    """Renders solid-colour images and appends one line per render to a log file."""

    def __init__(self, layer, log: str, color=RED, delay: float = 0.0, noise: bool = False) -> None:
        self.log = log
        self.color = tuple(color)
        self.delay = float(delay)
        self.noise = bool(noise)

    def renderArea(self, width, height, srs, xmin, ymin, xmax, ymax, zoom):
        with open(self.log, "a") as file:
            file.write(f"{os.getpid()} {zoom}\n")
        time.sleep(self.delay)
        if self.noise:  # incompressible: PNGs as large as they get
            return Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
        return Image.new("RGBA", (width, height), self.color)


def renders(log) -> int:
    """How many renders the CountingProvider logged."""
    try:
        with open(log) as file:
            return len(file.readlines())
    except FileNotFoundError:
        return 0


def layer_spec(log, metatile: int = 2, lifespan: float | None = None, stale: float = 15,
               delay: float = 0.0) -> dict:
    """A layer config using the CountingProvider."""
    spec = {"provider": {"class": "cache_helpers:CountingProvider",
                         "kwargs": {"log": str(log), "delay": delay}},
            "metatile": {"rows": metatile, "columns": metatile},
            "stale lock timeout": stale}
    if lifespan:
        spec["cache lifespan"] = lifespan
    return spec


def make_config(cache: dict, log, **layer_options):
    """A Configuration with the one counted layer in front of a cache."""
    return TileStache.parseConfig({"cache": cache, "layers": {LAYER: layer_spec(log, **layer_options)}})


def get(config, z: int, x: int, y: int, ext: str = "png") -> tuple[str, bytes]:
    """(MIME type, body) of a tile through TileStache.getTile."""
    return TileStache.getTile(config.layers[LAYER], Coordinate(y, x, z), ext)


def coord(z: int, x: int, y: int) -> Coordinate:
    return Coordinate(y, x, z)


def solid_colour(body: bytes) -> tuple:
    """The one colour of a solid-colour image (asserting it is a 256px solid tile)."""
    image = Image.open(io.BytesIO(body)).convert("RGBA")
    assert image.size == (256, 256)
    colours = image.getcolors(1)
    assert colours is not None, "tile is not a single colour"
    return colours[0][1]


def _worker(cache: dict, log, tile: tuple[int, int, int], barrier, results) -> None:
    config = make_config(cache, log, delay=0.3)
    barrier.wait(timeout=30)
    mime, body = get(config, *tile)
    results.put((tile, mime, solid_colour(body)))


def render_concurrently(cache: dict, log, processes: int = 4) -> list:
    """N processes each ask for a different tile of the metatile at z3 (2..3, 2..3); their results."""
    context = multiprocessing.get_context("fork")
    tiles = [(3, 2 + i % 2, 2 + (i // 2) % 2) for i in range(processes)]
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [context.Process(target=_worker, args=(cache, log, tile, barrier, results))
               for tile in tiles]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return answers


def assert_served_while_down(config, log, caplog, logger: str, stop) -> None:
    """Stop the backend; tiles are still rendered and served fast, with one warning for the burst."""
    mime, body = get(config, 2, 1, 1)  # cached while up
    stop()
    caplog.clear()
    before = renders(log)
    with caplog.at_level(logging.WARNING, logger=logger):
        started = time.monotonic()
        for x in range(4):
            mime, body = get(config, 4, x * 2, 0)
            assert mime == "image/png"
            assert solid_colour(body) == RED
        assert time.monotonic() - started < 5, "a stopped cache server must not make requests hang"
    assert renders(log) == before + 4
    warnings = [r for r in caplog.records if r.name == logger and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "unavailable" in warnings[0].getMessage()


def assert_expires(config, log, wait: float, while_fresh=None) -> None:
    """A tile is served from the cache until its lifespan is over, then rendered again after wait seconds.

    while_fresh, if given, is called (to check the stored tile) after the first render.
    """
    get(config, 3, 2, 2)
    if while_fresh is not None:
        while_fresh()
    get(config, 3, 2, 2)
    assert renders(log) == 1
    time.sleep(wait)
    get(config, 3, 2, 2)
    assert renders(log) == 2


def assert_one_render(cache: dict, log, processes: int = 4) -> None:
    """N processes asking for tiles of one metatile through a cache get them from a single render."""
    answers = render_concurrently(cache, log, processes)
    assert [a[1:] for a in answers] == [("image/png", RED)] * processes
    assert renders(log) == 1


def assert_stale_lock_broken(config, log, tile: tuple[int, int, int], at_least: float,
                             at_most: float = 5) -> None:
    """With a dead holder's lock on the metatile, the tile is served after at_least..at_most seconds."""
    started = time.monotonic()
    assert solid_colour(get(config, *tile)[1]) == RED
    assert at_least < time.monotonic() - started < at_most
    assert renders(log) == 1


def assert_served_by_stopped_server(service, cache_spec, tmp_path, caplog) -> None:
    """Start a private server (a tests/services.py class), stop it mid-test: tiles are still served."""
    server = service()
    try:
        log = tmp_path / "renders.log"
        config = make_config(cache_spec(server), log)
        assert_served_while_down(config, log, caplog, "TileStache.SharedCache", server.stop)
    finally:
        server.stop()


def assert_removed_then_rendered(config, log, tile: tuple[int, int, int], stored) -> None:
    """cache.remove forgets a tile (stored() turns False) and the next request renders it again."""
    before = renders(log)
    config.cache.remove(config.layers[LAYER], coord(*tile), "PNG")
    assert not stored()
    get(config, *tile)
    assert renders(log) == before + 1
