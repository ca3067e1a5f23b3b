"""The development server: serve a configuration's layers on a local port."""
from __future__ import annotations

import argparse
import logging
import sys

from werkzeug.serving import run_simple

from . import WSGITileServer
from .Errors import ConfigError
from .Scripts.common import add_include_path_option, apply_include_path


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-server."""
    p = argparse.ArgumentParser(prog="tilestache-server", description="Serve map tiles for a TileStache configuration.")
    p.add_argument("-c", "--config", default="tilestache.cfg", help="configuration file (default: %(default)s)")
    p.add_argument("-i", "--ip", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("-p", "--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    add_include_path_option(p, short=False)
    p.add_argument("--autoreload", action=argparse.BooleanOptionalAction, default=True,
                   help="re-read the configuration when it changes (default: on, as the original)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the development server until interrupted."""
    args = parser().parse_args(argv)
    apply_include_path(args.include_path)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = WSGITileServer(args.config, autoreload=args.autoreload)
    except ConfigError as error:
        print(f"tilestache-server: {args.config}: {error}", file=sys.stderr)
        return 2
    run_simple(args.ip, args.port, app, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
