"""Helpers for bench/serve.sh: benchmark config, seeding, free ports, the result table.

    python serve_tools.py config REPO TMPDIR [NAME CACHE_JSON]
                                                  write TMPDIR/bench.cfg (world layer, portable Disk
                                                  cache), or TMPDIR/bench-NAME.cfg with that cache
    python serve_tools.py seed CONFIG URLFILE     seed zooms 0-5 of "world", list their URLs
    python serve_tools.py ports N                 N free loopback TCP ports
    python serve_tools.py services FILE           start memcached and redis-server (tests/services.py),
                                                  write "MEMCACHE_ADDRESS REDIS_PORT" to FILE, stop them
                                                  on SIGTERM
    python serve_tools.py table RESULTS [TOP/BOTTOM[=TARGET] ...]
                                                  the table and ratios from "name BENCH ..." lines
    python serve_tools.py hit PORT URLFILE N      N GETs of random listed URLs, one connection each,
                                                  each answered 200
    python serve_tools.py metrics-config CONFIG   write CONFIG with "metrics": true beside it, print its path
    python serve_tools.py scrape PORT             print the request and cache counters of /metrics
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys

LAYER = "world"
ZOOMS = range(0, 6)


def write_config(repo: str, tmpdir: str, name: str | None = None, cache_json: str | None = None) -> str:
    """The repo's tilestache.cfg with its world layer's mapfile made absolute and a portable cache in tmpdir.

    With a name and a cache (JSON), that cache instead, in tmpdir/bench-{name}.cfg.
    """
    with open(os.path.join(repo, "tilestache.cfg")) as file:
        config = json.load(file)
    config["cache"] = {"name": "Disk", "path": os.path.join(tmpdir, "cache"), "umask": "0022", "dirs": "portable"}
    if cache_json is not None:
        config["cache"] = json.loads(cache_json)
    layer = config["layers"][LAYER]
    layer["provider"]["mapfile"] = os.path.join(repo, layer["provider"]["mapfile"])
    config["layers"] = {LAYER: layer}
    path = os.path.join(tmpdir, "bench.cfg" if name is None else f"bench-{name}.cfg")
    with open(path, "w") as file:
        json.dump(config, file, indent=2)
    return path


def tile_paths() -> list[str]:
    """URL paths of every tile of zooms 0-5."""
    return [f"/{LAYER}/{z}/{x}/{y}.png" for z in ZOOMS for x in range(2 ** z) for y in range(2 ** z)]


def tile_coord(path: str):
    """The Coordinate of a tile URL path (/world/3/4/2.png)."""
    from ModestMaps.Core import Coordinate

    z, x, y = (int(part) for part in path.rsplit(".", 1)[0].split("/")[2:])
    return Coordinate(y, x, z)


def seed_with_cli(config_path: str) -> bool:
    """Seed with tilestache-seed when it is installed (the original's command line); True on success."""
    seeder = shutil.which("tilestache-seed", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if seeder is None:
        return False
    command = [seeder, "-c", config_path, "-l", LAYER, "-e", "png",
               "-b", "-85.0511", "-180", "85.0511", "180", *map(str, ZOOMS)]
    print("seeding with", " ".join(command), file=sys.stderr)
    done = subprocess.run(command, stdout=subprocess.DEVNULL)
    return done.returncode == 0


def seed_with_loop(config_path: str) -> None:
    """Seed by asking TileStache.getTile for every tile (metatiles render once)."""
    import TileStache

    layer = TileStache.parseConfig(config_path).layers[LAYER]
    for path in tile_paths():
        TileStache.getTile(layer, tile_coord(path), "png")


def missing_tiles(config_path: str, paths: list[str]) -> list[str]:
    """The URL paths whose tiles the config's cache does not hold (any cache backend)."""
    import TileStache

    config = TileStache.parseConfig(config_path)
    layer = config.layers[LAYER]
    return [path for path in paths if config.cache.read(layer, tile_coord(path), "PNG") is None]


def seed(config_path: str, url_file: str) -> None:
    """Seed the cache named by a config and write the URL list of the seeded tiles."""
    paths = tile_paths()
    if not seed_with_cli(config_path) or missing_tiles(config_path, paths):
        seed_with_loop(config_path)
    missing = missing_tiles(config_path, paths)
    if missing:
        raise SystemExit(f"seeding left {len(missing)} tiles missing")
    with open(url_file, "w") as file:
        file.write("\n".join(paths) + "\n")
    print(f"seeded {len(paths)} tiles into the cache of {config_path}", file=sys.stderr)


def run_services(address_file: str) -> None:
    """Run memcached and redis-server (the test suite's tests/services.py) until SIGTERM or SIGINT."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    import services

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with services.Memcached() as memcached, services.RedisServer() as redis_server:
        with open(address_file + ".tmp", "w") as file:
            file.write(f"{memcached.address} {redis_server.port}\n")
        os.replace(address_file + ".tmp", address_file)
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:
            pass


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def rounds(path: str, key: str = "rps") -> dict[str, dict[tuple[int, int], float]]:
    """{name: {(block, round): value}} of one key from lines "name BENCH key=value ... block=B round=R"."""
    found: dict[str, dict[tuple[int, int], float]] = {}
    with open(path) as file:
        for line in file:
            name, tag, *pairs = line.split()
            values = dict(pair.split("=") for pair in pairs)
            if tag == "BENCH" and key in values:
                when = (int(values["block"]), int(values["round"]))
                found.setdefault(name, {})[when] = float(values[key])
    return found


def same_round_ratios(path: str, top: str, bottom: str) -> list[float]:
    """top/bottom req/s for every round in which both were loaded (one after the other)."""
    found = rounds(path)
    tops, bottoms = found.get(top, {}), found.get(bottom, {})
    return [tops[when] / bottoms[when] for when in sorted(tops.keys() & bottoms.keys())]


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free confidence interval for the median: two order statistics of the sorted values.

    With n values, the median lies below the k-th smallest with probability
    P(Binomial(n, 1/2) < k); k is the largest rank that keeps both tails within
    (1 - confidence) / 2. None when n is too small for that confidence.
    """
    ordered = sorted(values)
    n = len(ordered)
    tail, k, below = (1 - confidence) / 2, 0, 0.0
    while k < n // 2:
        below_next = below + math.comb(n, k) / 2 ** n  # P(Binomial(n, 1/2) <= k)
        if below_next > tail:
            break
        below, k = below_next, k + 1
    if k == 0:
        return None
    return ordered[k - 1], ordered[n - k]


def parse_results(path: str) -> dict[str, dict[str, float]]:
    """{name: {rps, p50_ms, ...}} from lines "name BENCH key=value ...", keeping each name's best round."""
    results: dict[str, dict[str, float]] = {}
    with open(path) as file:
        for line in file:
            name, tag, *pairs = line.split()
            if tag == "BENCH":
                row = {k: float(v) for k, v in (pair.split("=") for pair in pairs)}
                if name not in results or row["rps"] > results[name]["rps"]:
                    results[name] = row
    return results


# (top, bottom, target or None): the ratios serve.sh reports
SERVE_RATIOS = (("tilestache", "minimal", 0.95), ("tilestache", "nginx", None),
                ("minimal", "nginx", None), ("recipe", "nginx", 0.8), ("metrics", "tilestache", 0.97))


def metrics_config(config_path: str) -> str:
    """A copy of a benchmark config with "metrics": true, beside it; its path."""
    with open(config_path) as file:
        config = json.load(file)
    config["metrics"] = True
    path = os.path.splitext(config_path)[0] + "-metrics.cfg"
    with open(path, "w") as file:
        json.dump(config, file, indent=2)
    return path


def scrape(port: str) -> None:
    """Print the request and cache-hit counters a server's /metrics reports."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(("tilestache_requests_total", "tilestache_cache_hits_total",
                                "tilestache_cache_misses_total")):
                print("  " + line)


def parse_ratio(text: str) -> tuple[str, str, float | None]:
    """("a", "b", 0.9) from "a/b=0.9", ("a", "b", None) from "a/b"."""
    pair, _, target = text.partition("=")
    top, _, bottom = pair.partition("/")
    return top, bottom, float(target) if target else None


def table(path: str, ratios=SERVE_RATIOS) -> str:
    """The results table and the ratios between servers (with their targets, if any)."""
    results = parse_results(path)
    lines = [f"{'server':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}"]
    for name, r in results.items():
        lines.append(f"{name:<12} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                     f"{r['requests']:>9.0f} {r['errors'] + r['non2xx']:>7.0f}")
    cpu = {name: statistics.median(values.values()) for name, values in rounds(path, "cpu_us").items()}
    if cpu:
        lines.append("")
        lines.append("worker CPU per request (median over rounds): "
                     + ", ".join(f"{name} {value:.0f} us" for name, value in cpu.items()))
    lines.append("")
    for top, bottom, target in ratios:
        if top not in results or bottom not in results:
            continue
        best = results[top]["rps"] / results[bottom]["rps"]
        paired = same_round_ratios(path, top, bottom)
        if not paired:  # loaded in different blocks: only their best rounds compare
            lines.append(f"{top} / {bottom}: {best:.3f} best round / best round")
            continue
        median = statistics.median(paired)
        interval = median_interval(paired)
        spread = f", 95% CI {interval[0]:.3f}-{interval[1]:.3f}" if interval else ""
        verdict = "" if target is None else f"  (target >= {target:.2f}: {'met' if median >= target else 'NOT met'})"
        lines.append(f"{top} / {bottom}: {median:.3f} median of {len(paired)} same-round ratios{spread}, "
                     f"{best:.3f} best round / best round{verdict}")
    return "\n".join(lines)


def hit(port: str, url_file: str, count: str) -> None:
    """Send count GET requests for random URLs of a list, one connection each (like wrk to gunicorn)."""
    import http.client
    import random

    with open(url_file) as file:
        paths = [line.strip() for line in file if line.strip()]
    choose = random.Random(42).choice
    for _ in range(int(count)):
        connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
        connection.request("GET", choose(paths))
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status} from port {port}")


def main(argv: list[str]) -> None:
    """Dispatch the subcommands listed in the module docstring."""
    command, *args = argv
    if command == "config":
        print(write_config(*args))
    elif command == "seed":
        seed(*args)
    elif command == "ports":
        print(" ".join(map(str, free_ports(int(args[0])))))
    elif command == "services":
        run_services(*args)
    elif command == "hit":
        hit(*args)
    elif command == "metrics-config":
        print(metrics_config(*args))
    elif command == "scrape":
        scrape(*args)
    elif command == "table":
        print(table(args[0], [parse_ratio(a) for a in args[1:]] or SERVE_RATIOS))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
