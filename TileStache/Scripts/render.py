"""tilestache-render: render tiles of a layer to files, or an area of a given size to one file.

As the original: each coordinate z/x/y.ext is got through the layer (its cache
read and written, as getTile does) into a temporary file whose name is printed
on stdout, in order. With -o/--output one tile or an area is rendered straight
by the provider to that file: the cache is neither read nor written.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

from ModestMaps.Core import Coordinate

from .. import getTile
from ..Errors import KnownUnknown, NoTileLeftBehind
from .common import (EXIT_FAILURES, EXIT_OK, UsageError, add_config_options, add_include_path_option,
                     apply_include_path, check_extension, load_layer, run)
from .compose import add_area_options, compose_image, frame_from_args, write_output

# A coordinate argument: z/x/y with an optional .ext, like a tile URL's path.
TILE_PATH = re.compile(r"(\d+)/(\d+)/(\d+)(?:\.(\w+))?")

AREA_SIZE = (512, 512)  # default -d for an area


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-render."""
    p = argparse.ArgumentParser(prog="tilestache-render", usage="%(prog)s [options] [coord...]",
                                description="Render each coordinate (like 12/656/1582.png) of a layer to a "
                                            "file in a temporary location and print its name, in order; or, "
                                            "with -o, one tile or an area (extent or centre and zoom, and a "
                                            "size) to that file without the cache.",
                                epilog="examples: tilestache-render -c cfg -l world 3/4/2.png 3/5/2.png\n"
                                       "          tilestache-render -c cfg -l world -e 60 -20 30 40 -d 800 600 -o map.png")
    add_config_options(p)
    p.add_argument("coords", nargs="*", metavar="coord", help="tile as z/x/y.ext")
    add_area_options(p, AREA_SIZE)
    p.add_argument("-f", "--format", dest="extension", default=None,
                   help="image extension (default: the coordinate's, else the output file's, else png)")
    p.add_argument("-o", "--output", help="with one tile or an area: the output file, or - for stdout")
    add_include_path_option(p, short=False)
    return p


def parse_coord(text: str, layer) -> tuple[Coordinate, str | None]:
    """(coordinate, extension or None) of a z/x/y[.ext] argument inside the layer's world and zooms."""
    match = TILE_PATH.fullmatch(text)
    if match is None:
        raise UsageError(f"{text!r} is not a tile coordinate; expected z/x/y.ext like 0/0/0.png")
    z, x, y, extension = match.groups()
    coord = Coordinate(int(y), int(x), int(z))
    if not layer.in_world(coord):
        raise UsageError(f"tile {text} is outside the world")
    lo, hi = layer.zoom_range()
    if not lo <= coord.zoom <= hi:
        raise UsageError(f"zoom {coord.zoom} is outside the layer's zoom range {lo}..{hi}")
    return coord, extension


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-render; returns the exit code."""
    return run("tilestache-render", _main, argv)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    apply_include_path(args.include_path)
    _, layer = load_layer(args.config, args.layer)
    area = args.extent or args.center
    if args.coords and area:
        raise UsageError("give tiles or an area, not both")
    if args.output is None:
        if not args.coords:
            raise UsageError("give tiles as z/x/y.ext, or an area and --output")
        return render_to_temporary_files(layer, args.coords, args.extension)
    if len(args.coords) > 1:
        raise UsageError("--output takes one tile or an area")
    coord = extension = None
    if args.coords:
        coord, extension = parse_coord(args.coords[0], layer)
    elif not area:
        raise UsageError("give a tile, --extent, or --center and --zoom")
    output = args.output
    extension = args.extension or extension or (output.rsplit(".", 1)[-1] if "." in output else "png")
    format = check_extension(layer, extension)
    try:
        if coord is not None:
            try:
                body = dict(((c.zoom, c.column, c.row), b) for c, b in layer.render_tiles(coord, format))[
                    (coord.zoom, coord.column, coord.row)]
            except NoTileLeftBehind as nothing:
                body = layer.encode_tile(nothing.tile, format)
        else:
            frame = frame_from_args(args, layer.projection, layer.dim, layer.zoom_range())
            body = layer.encode_tile(render_area(layer, frame), format)
    except KnownUnknown as error:
        print(f"tilestache-render: rendering failed: {error}", file=sys.stderr)
        return EXIT_FAILURES
    write_output(output, body)
    return EXIT_OK


def render_to_temporary_files(layer, coords: list[str], default_extension: str | None) -> int:
    """Get each tile through the layer (as getTile) into a new temporary file and print its name, in order."""
    tiles = []
    for text in coords:  # all checked before any is rendered
        coord, extension = parse_coord(text, layer)
        extension = extension or default_extension or "png"
        check_extension(layer, extension)
        tiles.append((coord, extension))
    for coord, extension in tiles:
        try:
            _, body = getTile(layer, coord, extension)
        except Exception as error:  # a provider's failure: say which tile, no traceback
            print(f"tilestache-render: {coord.zoom}/{coord.column}/{coord.row}.{extension} failed: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
            return EXIT_FAILURES
        handle, filename = tempfile.mkstemp(prefix="tile-", suffix="." + extension)
        with os.fdopen(handle, "wb") as file:
            file.write(body)
        print(filename, flush=True)
    return EXIT_OK


def render_area(layer, frame):
    """A Pillow image of a frame: one provider.renderArea call, or composed from rendered tiles."""
    if hasattr(layer.provider, "renderArea"):
        top_left, bottom_right = frame.corners()
        ul = layer.projection.coordinateProj(top_left)
        lr = layer.projection.coordinateProj(bottom_right)
        return layer.provider.renderArea(frame.width, frame.height, layer.projection.srs,
                                         ul.x, lr.y, lr.x, ul.y, frame.zoom)

    def fetch(coord):
        return layer.encode_tile(layer.render(coord, "PNG"), "PNG")

    image, _ = compose_image(frame, layer.projection, fetch)
    return image


if __name__ == "__main__":
    sys.exit(main())
