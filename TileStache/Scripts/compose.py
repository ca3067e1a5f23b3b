"""tilestache-compose: a map image of an extent (or centre and zoom) and size, built from tiles.

Tiles come from a layer (through its cache, as a tile server would serve
them) or from a tile URL template such as ``https://host/{Z}/{X}/{Y}.png``.
"""
from __future__ import annotations

import argparse
import io
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

from PIL import Image

from ..Geography import SphericalMercator, grid_size
from ..Selection import MAX_ZOOM, tile_name
from .common import EXIT_FAILURES, EXIT_OK, UsageError, check_extension, load_layer, run
from .frame import Frame, frame_by_center, frame_by_extent

log = logging.getLogger("tilestache-compose")


def add_area_options(parser: argparse.ArgumentParser) -> None:
    """--extent or --center/--zoom, and --dimensions."""
    parser.add_argument("-e", "--extent", nargs=4, type=float, metavar=("LAT", "LON", "LAT", "LON"),
                        help="two opposite corners of the map, in degrees")
    parser.add_argument("--center", nargs=2, type=float, metavar=("LAT", "LON"), help="centre of the map")
    parser.add_argument("-z", "--zoom", type=int, help="zoom level (with --center)")
    parser.add_argument("-d", "--dimensions", nargs=2, type=int, metavar=("WIDTH", "HEIGHT"),
                        default=(512, 512), help="image size in pixels (default: 512 512)")


def frame_from_args(args, projection, tile_size: int, zoom_range: tuple[int, int]) -> Frame:
    """The Frame the area options describe, or UsageError."""
    width, height = args.dimensions
    if not (0 < width <= 16384 and 0 < height <= 16384):
        raise UsageError("dimensions must be between 1 and 16384 pixels")
    if args.extent and args.center:
        raise UsageError("give --extent or --center, not both")
    if args.extent:
        lat1, lon1, lat2, lon2 = args.extent
        north, south = max(lat1, lat2), min(lat1, lat2)
        west, east = min(lon1, lon2), max(lon1, lon2)
        if north == south and west == east:
            raise UsageError("the extent is a single point; use --center and --zoom")
        return frame_by_extent(projection, width, height, north, west, south, east, tile_size, zoom_range)
    if args.center:
        if args.zoom is None:
            raise UsageError("--center needs --zoom")
        if not zoom_range[0] <= args.zoom <= zoom_range[1]:
            raise UsageError(f"zoom {args.zoom} is outside the zoom range {zoom_range[0]}..{zoom_range[1]}")
        return frame_by_center(projection, width, height, args.center[0], args.center[1], args.zoom, tile_size)
    raise UsageError("give a tile, --extent, or --center and --zoom")


def compose_image(frame: Frame, projection, fetch: Callable[[object], bytes | None]) -> tuple[Image.Image, list]:
    """An RGBA image of the frame with each tile fetch() returns pasted in; also the tiles that failed."""
    canvas = Image.new("RGBA", (frame.width, frame.height), (0, 0, 0, 0))
    failed = []
    for coord in frame.tiles(*grid_size(projection, frame.zoom)):
        try:
            body = fetch(coord)
        except Exception as error:  # report and go on with the other tiles
            failed.append((tile_name(coord), f"{type(error).__name__}: {error}"))
            continue
        if body is None:
            continue
        tile = Image.open(io.BytesIO(body)).convert("RGBA")
        canvas.paste(tile, frame.pixel(coord))  # tiles do not overlap: copy pixels as they are
    return canvas, failed


def layer_fetcher(layer, extension: str) -> Callable[[object], bytes | None]:
    """fetch(coord) through a layer's cache and pipeline; None for tiles it does not serve."""
    def fetch(coord):
        status, _, body = layer.getTileResponse(coord, extension)
        return body if status == 200 else None
    return fetch


def url_fetcher(template: str, timeout: float = 30) -> Callable[[object], bytes | None]:
    """fetch(coord) from a URL template with {Z}/{X}/{Y} (or lower case); None on a 404."""
    def fetch(coord):
        z, x, y = str(int(coord.zoom)), str(int(coord.column)), str(int(coord.row))
        url = template
        for key, value in (("Z", z), ("X", x), ("Y", y)):
            url = url.replace("{%s}" % key, value).replace("{%s}" % key.lower(), value)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
    return fetch


def write_output(path: str, body: bytes) -> None:
    """Write bytes to a file, or to stdout for "-"."""
    if path == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        with open(path, "wb") as file:
            file.write(body)


def parser() -> argparse.ArgumentParser:
    """Command-line options of tilestache-compose."""
    p = argparse.ArgumentParser(prog="tilestache-compose",
                                description="Compose a map image of an extent (or centre and zoom) and size "
                                            "from a layer's tiles or from a tile URL template.",
                                epilog="examples: tilestache-compose -c cfg -l world -e 60 -20 30 40 -d 800 600 -o map.png\n"
                                       "          tilestache-compose -u 'http://host/{Z}/{X}/{Y}.png' --center 51.5 0 -z 5 -o map.png")
    p.add_argument("-c", "--config", help="TileStache configuration file")
    p.add_argument("-l", "--layer", help="layer whose tiles to use")
    p.add_argument("-u", "--url-template", help="tile URL template with {Z}, {X}, {Y} (instead of a layer)")
    p.add_argument("-x", "--tile-extension", default="png", help="tile extension to ask the layer for (default: png)")
    add_area_options(p)
    p.add_argument("-o", "--output", required=True, help="output image file (format from its extension), or - for PNG on stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-compose; returns the exit code."""
    return run("tilestache-compose", _main, argv)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    if args.url_template and (args.config or args.layer):
        raise UsageError("give --url-template or --config and --layer, not both")
    if args.url_template:
        projection, tile_size, zooms = SphericalMercator(), 256, (0, MAX_ZOOM)
        fetch = url_fetcher(args.url_template)
    elif args.config and args.layer:
        _, layer = load_layer(args.config, args.layer)
        check_extension(layer, args.tile_extension)
        projection, tile_size, zooms = layer.projection, layer.dim, layer.zoom_range()
        fetch = layer_fetcher(layer, args.tile_extension)
    else:
        raise UsageError("give --config and --layer, or --url-template")
    out_format = "PNG"
    if args.output != "-":
        extension = args.output.rsplit(".", 1)[-1].lower() if "." in args.output else ""
        out_format = Image.registered_extensions().get("." + extension)
        if out_format is None:
            raise UsageError(f"cannot tell the image format of {args.output}; use .png, .jpg, .webp ...")
    frame = frame_from_args(args, projection, tile_size, zooms)
    image, failed = compose_image(frame, projection, fetch)
    if out_format == "JPEG":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, out_format)
    write_output(args.output, buffer.getvalue())
    if failed:
        print(f"tilestache-compose: {len(failed)} tiles failed:", file=sys.stderr)
        for name, error in failed[:50]:
            print(f"  {name}: {error}", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
