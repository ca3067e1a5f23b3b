"""tilestache-render: render one tile, or an area of a given size, of a layer to a file.

Rendering goes straight to the provider: the cache is neither read nor written.
"""
from __future__ import annotations

import argparse
import sys

from ..Errors import KnownUnknown, NoTileLeftBehind
from ..Selection import SelectionError, parse_tile_list
from .common import EXIT_FAILURES, EXIT_OK, UsageError, add_config_options, check_extension, load_layer, run
from .compose import add_area_options, compose_image, frame_from_args, write_output


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-render."""
    p = argparse.ArgumentParser(prog="tilestache-render",
                                description="Render one tile (z/x/y) or an area (extent or centre and zoom, "
                                            "and a size) of a layer to an image file, without the cache.",
                                epilog="examples: tilestache-render -c cfg -l world -o tile.png 3/4/2\n"
                                       "          tilestache-render -c cfg -l world -e 60 -20 30 40 -d 800 600 -o map.png")
    add_config_options(p)
    p.add_argument("tile", nargs="?", help="tile as z/x/y (otherwise give an area)")
    add_area_options(p)
    p.add_argument("-f", "--format", dest="extension", default=None,
                   help="image extension (default: the output file's, else png)")
    p.add_argument("-o", "--output", required=True, help="output file, or - for stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-render; returns the exit code."""
    return run("tilestache-render", _main, argv)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    _, layer = load_layer(args.config, args.layer)
    extension = args.extension or (args.output.rsplit(".", 1)[-1] if "." in args.output else "png")
    format = check_extension(layer, extension)
    try:
        if args.tile:
            if args.extent or args.center:
                raise UsageError("give a tile or an area, not both")
            try:
                (coord,) = parse_tile_list([args.tile], "tile")
            except SelectionError as error:
                raise UsageError(str(error)) from None
            if not layer.in_world(coord):
                raise UsageError(f"tile {args.tile} is outside the world")
            lo, hi = layer.zoom_range()
            if not lo <= coord.zoom <= hi:
                raise UsageError(f"zoom {coord.zoom} is outside the layer's zoom range {lo}..{hi}")
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
    write_output(args.output, body)
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
