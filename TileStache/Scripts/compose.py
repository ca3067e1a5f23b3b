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
from .common import (EXIT_FAILURES, EXIT_OK, UsageError, add_include_path_option, apply_include_path,
                     check_extension, load_layer, run)
from .frame import Frame, frame_by_center, frame_by_extent, frame_by_extent_zoom

log = logging.getLogger("tilestache-compose")


# The original tilestache-compose's defaults: downtown Oakland at zoom 14 in a 900 x 600 image.
DEFAULT_CENTER = (37.8044, -122.2712)
DEFAULT_ZOOM = 14
DEFAULT_DIMENSIONS = (900, 600)
MAX_PIXELS = 16384


def add_area_options(parser: argparse.ArgumentParser, dimensions: tuple[int, int] = DEFAULT_DIMENSIONS) -> None:
    """-n/--center, -e/--extent, -z/--zoom and -d/--dimensions, the map area as tilestache-compose sets it."""
    parser.add_argument("-n", "--center", nargs=2, type=float, metavar=("LAT", "LON"),
                        help="centre of the map (default: %s %s with the default zoom)" % DEFAULT_CENTER)
    parser.add_argument("-e", "--extent", nargs=4, type=float, metavar=("LAT", "LON", "LAT", "LON"),
                        help="two opposite corners of the map, in degrees")
    parser.add_argument("-z", "--zoom", type=int, help=f"zoom level (default: {DEFAULT_ZOOM} with a centre)")
    parser.add_argument("-d", "--dimensions", nargs=2, type=int, metavar=("WIDTH", "HEIGHT"),
                        help="image size in pixels (default: %s %s)" % dimensions)
    parser.set_defaults(default_dimensions=dimensions)


def frame_from_args(args, projection, tile_size: int, zoom_range: tuple[int, int]) -> Frame:
    """The Frame of one of the three ways to set the area (or UsageError): centre, zoom and dimensions;
    extent and dimensions; extent and zoom. Options not given take the defaults."""
    if args.extent and args.center:
        raise UsageError("give --extent or --center, not both")
    if args.extent and args.dimensions and args.zoom is not None:
        raise UsageError("--extent goes with --dimensions or --zoom, not both")
    zoom = args.zoom
    if zoom is not None and not zoom_range[0] <= zoom <= zoom_range[1]:
        raise UsageError(f"zoom {zoom} is outside the zoom range {zoom_range[0]}..{zoom_range[1]}")
    if args.extent:
        lat1, lon1, lat2, lon2 = args.extent
        north, south = max(lat1, lat2), min(lat1, lat2)
        west, east = min(lon1, lon2), max(lon1, lon2)
        if north == south and west == east:
            raise UsageError("the extent is a single point; use --center and --zoom")
        if zoom is not None:
            frame = frame_by_extent_zoom(projection, north, west, south, east, zoom, tile_size)
            check_size(frame.width, frame.height)
            return frame
        width, height = check_size(*(args.dimensions or args.default_dimensions))
        return frame_by_extent(projection, width, height, north, west, south, east, tile_size, zoom_range)
    width, height = check_size(*(args.dimensions or args.default_dimensions))
    lat, lon = args.center or DEFAULT_CENTER
    if zoom is None:
        zoom = DEFAULT_ZOOM
    return frame_by_center(projection, width, height, lat, lon, zoom, tile_size)


def check_size(width: int, height: int) -> tuple[int, int]:
    """The image size, or UsageError when it is not between 1 and MAX_PIXELS each way."""
    if not (0 < width <= MAX_PIXELS and 0 < height <= MAX_PIXELS):
        raise UsageError(f"the image would be {width} x {height} pixels; each side must be 1 to {MAX_PIXELS}")
    return width, height


def compose_image(frame: Frame, projection, fetch: Callable[[object], bytes | None]) -> tuple[Image.Image, list]:
    """An RGBA image of the frame with each tile fetch() returns pasted in; also the tiles that failed."""
    canvas = Image.new("RGBA", (frame.width, frame.height), (0, 0, 0, 0))
    failed = []
    for coord in frame.tiles(*(grid_size(projection, frame.zoom) or ())):
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


def layer_fetcher(layer, extension: str, ignore_cached: bool = False) -> Callable[[object], bytes | None]:
    """fetch(coord) through a layer's cache and pipeline; None for tiles it does not serve."""
    def fetch(coord):
        status, _, body = layer.getTileResponse(coord, extension, ignore_cached)
        return body if status == 200 else None
    return fetch


def noisy(fetch: Callable[[object], bytes | None], prefix: str, extension: str,
          stream) -> Callable[[object], bytes | None]:
    """fetch(), printing each tile's name and size as the original's --verbose does."""
    def loud(coord):
        body = fetch(coord)
        size = f"({len(body) / 1024:.0f}KB)" if body is not None else "(none)"
        print(f"{prefix}{tile_name(coord)}.{extension} {size}", file=stream, flush=True)
        return body
    return loud


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
    p = argparse.ArgumentParser(
        prog="tilestache-compose", usage="%(prog)s [options] file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compose a map image from a layer's tiles (or a tile URL template). Three ways to set "
                    "the area:\n"
                    "  1) centre, zoom and dimensions: -n 37.8 -122.3 -z 11 -d 800 800\n"
                    "  2) extent and dimensions, the deepest zoom that shows it all: -e 36.9 -123.5 38.9 -121.2 -d 800 800\n"
                    "  3) extent and zoom, at the pixel size that takes: -e 36.9 -123.5 38.9 -121.2 -z 9\n"
                    "Options left out take the defaults (centre %s %s, zoom %s, %s x %s pixels)."
                    % (*DEFAULT_CENTER, DEFAULT_ZOOM, *DEFAULT_DIMENSIONS),
        epilog="example: tilestache-compose -c config.json -l layer-name -d 800 800 -n 37.8 -122.3 -z 11 out.jpg")
    p.add_argument("-c", "--config", help="TileStache configuration file")
    p.add_argument("-l", "--layer", help="layer whose tiles to use")
    add_area_options(p)
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print each tile as it is fetched and the map's size on stdout")
    add_include_path_option(p)
    p.add_argument("-x", "--ignore-cached", action="store_true",
                   help="render every tile of the layer, whether it is cached already or not")
    p.add_argument("--url-template", help="tile URL template with {Z}, {X}, {Y} (instead of a layer)")
    p.add_argument("--tile-extension", default="png", help="tile extension to ask the layer for (default: png)")
    p.add_argument("file", nargs="?", help="output image file (format from its extension), or - for PNG on stdout")
    p.add_argument("-o", "--output", help="the output file, as an option")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run tilestache-compose; returns the exit code."""
    return run("tilestache-compose", _main, argv)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    apply_include_path(args.include_path)
    if args.file and args.output:
        raise UsageError("give the output file once, as an argument or with --output")
    output = args.file or args.output
    if not output:
        raise UsageError("missing output file")
    if args.url_template and (args.config or args.layer):
        raise UsageError("give --url-template or --config and --layer, not both")
    if args.url_template:
        projection, tile_size, zooms = SphericalMercator(), 256, (0, MAX_ZOOM)
        fetch = url_fetcher(args.url_template)
        prefix = ""
    elif args.config and args.layer:
        _, layer = load_layer(args.config, args.layer)
        check_extension(layer, args.tile_extension)
        projection, tile_size, zooms = layer.projection, layer.dim, layer.zoom_range()
        fetch = layer_fetcher(layer, args.tile_extension, args.ignore_cached)
        prefix = layer.name() + "/"
    else:
        raise UsageError("give --config and --layer, or --url-template")
    chatter = sys.stderr if output == "-" else sys.stdout  # stdout may be the image itself
    if args.verbose:
        fetch = noisy(fetch, prefix, args.tile_extension, chatter)
    out_format = "PNG"
    if output != "-":
        extension = output.rsplit(".", 1)[-1].lower() if "." in output else ""
        out_format = Image.registered_extensions().get("." + extension)
        if out_format is None:
            raise UsageError(f"cannot tell the image format of {output}; use .png, .jpg, .webp ...")
    frame = frame_from_args(args, projection, tile_size, zooms)
    image, failed = compose_image(frame, projection, fetch)
    if out_format == "JPEG":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, out_format)
    write_output(output, buffer.getvalue())
    if args.verbose:
        print(f"{frame.zoom}/{frame.column:.3f}/{frame.row:.3f} -> {output} ({frame.width}, {frame.height})", file=chatter)
    if failed:
        print(f"tilestache-compose: {len(failed)} tiles failed:", file=sys.stderr)
        for name, error in failed[:50]:
            print(f"  {name}: {error}", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
