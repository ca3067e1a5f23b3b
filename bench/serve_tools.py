"""Helpers for bench/serve.sh: benchmark config, seeding, free ports, the result table.

    python serve_tools.py config REPO TMPDIR     write TMPDIR/bench.cfg (world layer, portable cache)
    python serve_tools.py seed CONFIG URLFILE     seed zooms 0-5 of "world", list their URLs
    python serve_tools.py ports N                 N free loopback TCP ports
    python serve_tools.py table RESULTS           the table and ratios from "name BENCH ..." lines
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

LAYER = "world"
ZOOMS = range(0, 6)


def write_config(repo: str, tmpdir: str) -> str:
    """The repo's tilestache.cfg with its world layer's mapfile made absolute and a portable cache in tmpdir."""
    with open(os.path.join(repo, "tilestache.cfg")) as file:
        config = json.load(file)
    config["cache"] = {"name": "Disk", "path": os.path.join(tmpdir, "cache"), "umask": "0022", "dirs": "portable"}
    layer = config["layers"][LAYER]
    layer["provider"]["mapfile"] = os.path.join(repo, layer["provider"]["mapfile"])
    config["layers"] = {LAYER: layer}
    path = os.path.join(tmpdir, "bench.cfg")
    with open(path, "w") as file:
        json.dump(config, file, indent=2)
    return path


def tile_paths() -> list[str]:
    """URL paths of every tile of zooms 0-5."""
    return [f"/{LAYER}/{z}/{x}/{y}.png" for z in ZOOMS for x in range(2 ** z) for y in range(2 ** z)]


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
    from ModestMaps.Core import Coordinate

    layer = TileStache.parseConfig(config_path).layers[LAYER]
    for path in tile_paths():
        z, x, y = (int(part) for part in path.rsplit(".", 1)[0].split("/")[2:])
        TileStache.getTile(layer, Coordinate(y, x, z), "png")


def seed(config_path: str, url_file: str) -> None:
    """Seed the cache named by a config and write the URL list of the seeded tiles."""
    with open(config_path) as file:
        cache_dir = json.load(file)["cache"]["path"]
    paths = tile_paths()
    missing = lambda: [p for p in paths if not os.path.exists(cache_dir + p)]  # noqa: E731
    if not seed_with_cli(config_path) or missing():
        seed_with_loop(config_path)
    if missing():
        raise SystemExit(f"seeding left {len(missing())} tiles missing")
    with open(url_file, "w") as file:
        file.write("\n".join(paths) + "\n")
    print(f"seeded {len(paths)} tiles into {cache_dir}", file=sys.stderr)


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


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


def table(path: str) -> str:
    """The results table and the target ratios."""
    results = parse_results(path)
    lines = [f"{'server':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}"]
    for name, r in results.items():
        lines.append(f"{name:<12} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                     f"{r['requests']:>9.0f} {r['errors'] + r['non2xx']:>7.0f}")
    lines.append("")
    for top, bottom, target in (("tilestache", "minimal", 0.95), ("tilestache", "nginx", None),
                                ("minimal", "nginx", None), ("recipe", "nginx", 0.8)):
        if top in results and bottom in results:
            ratio = results[top]["rps"] / results[bottom]["rps"]
            verdict = "" if target is None else f"  (target >= {target:.2f}: {'met' if ratio >= target else 'NOT met'})"
            lines.append(f"{top} / {bottom}: {ratio:.3f}{verdict}")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """Dispatch the subcommands listed in the module docstring."""
    command, *args = argv
    if command == "config":
        print(write_config(*args))
    elif command == "seed":
        seed(*args)
    elif command == "ports":
        print(" ".join(map(str, free_ports(int(args[0])))))
    elif command == "table":
        print(table(args[0]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
