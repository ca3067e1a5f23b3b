"""Test data for the formats clients read: PMTiles archives from the pmtiles package's own writer, a loopback
HTTP server that honours Range, and small GeoJSON files for vector layers."""
from __future__ import annotations

import gzip
import io
import json
import random
import threading

from PIL import Image
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import write
from werkzeug.serving import make_server
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response


def png(colour, size=256) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "PNG")
    return buffer.getvalue()


def write_archive(path, tiles: dict, tile_type=TileType.PNG, compression=Compression.NONE, metadata=None,
                  bounds=(-180.0, -85.0, 180.0, 85.0)):
    """An archive of tiles {(z, x, y): stored bytes}, written in tile-id order; returns path."""
    west, south, east, north = bounds
    with write(str(path)) as writer:
        for (z, x, y), body in sorted(tiles.items(), key=lambda item: zxy_to_tileid(*item[0])):
            writer.write_tile(zxy_to_tileid(z, x, y), body)
        writer.finalize({"tile_type": tile_type, "tile_compression": compression,
                         "min_lon_e7": int(west * 1e7), "min_lat_e7": int(south * 1e7),
                         "max_lon_e7": int(east * 1e7), "max_lat_e7": int(north * 1e7),
                         "center_zoom": min(z for z, _, _ in tiles)}, metadata or {})
    return path


def png_tiles(zooms=(0, 1, 2)) -> dict:
    """Distinct solid PNG tiles covering the world at a few zooms."""
    return {(z, x, y): png((40 * z, 20 * x % 256, 20 * y % 256))
            for z in zooms for x in range(1 << z) for y in range(1 << z)}


def mvt_tiles(zooms=(0, 1, 2)) -> dict:
    """Gzipped MVT tiles, each with a polygon covering the tile and its coordinate as properties."""
    import mapbox_vector_tile

    tiles = {}
    for z in zooms:
        for x in range(1 << z):
            for y in range(1 << z):
                plain = mapbox_vector_tile.encode([{"name": "squares", "features": [
                    {"geometry": "POLYGON ((256 256, 3840 256, 3840 3840, 256 3840, 256 256))",
                     "properties": {"z": z, "x": x, "y": y, "label": f"{z}/{x}/{y}"}}]}])
                tiles[(z, x, y)] = gzip.compress(plain, mtime=0)
    return tiles


def sparse_tiles(count=20000, zoom=9, seed=7) -> dict:
    """Many small distinct tiles spread over a zoom: enough entries that the writer makes leaf directories."""
    rng = random.Random(seed)
    side = 1 << zoom
    chosen = rng.sample(range(side * side), count)
    return {(zoom, i % side, i // side): rng.randbytes(rng.randint(1, 120)) + i.to_bytes(4, "big")
            for i in chosen}


class RangeServer:
    """Files of a folder over HTTP on loopback (Werkzeug's send_file: Range, ETag); records each Range asked."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.ranges: list[str] = []
        server = self

        @Request.application
        def app(request: Request) -> Response:
            path = server.folder / request.path.lstrip("/")
            if not path.is_file():
                return Response("not found", 404)
            server.ranges.append(request.headers.get("Range", ""))
            return send_file(path, request.environ, conditional=True, max_age=0)

        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_geojson(path, features: list[tuple[dict, dict]]):
    """A GeoJSON file of (geometry, properties) pairs; returns path."""
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": geometry, "properties": properties} for geometry, properties in features]}
    path.write_text(json.dumps(collection))
    return path


def box(west, south, east, north) -> dict:
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


def vector_layer_spec(folder) -> dict:
    """A file-backed MVT layer with three source-layers (polygons, lines, points) around 10E 50N."""
    areas = write_geojson(folder / "areas.geojson", [(box(0, 40, 20, 60), {"name": "big", "rank": 1})])
    roads = write_geojson(folder / "roads.geojson", [
        ({"type": "LineString", "coordinates": [[-10, 45], [30, 55]]}, {"ref": "A1", "lanes": 2})])
    towns = write_geojson(folder / "towns.geojson", [
        ({"type": "Point", "coordinates": [10, 50]}, {"name": "Middle", "people": 1000})])
    return {"provider": {"name": "vector", "layers": [
                {"name": "areas", "driver": "GeoJSON", "parameters": {"file": str(areas)}},
                {"name": "roads", "driver": "GeoJSON", "parameters": {"file": str(roads)}, "minzoom": 2},
                {"name": "towns", "driver": "GeoJSON", "parameters": {"file": str(towns)},
                 "properties": {"name": "label"}}]},
            "preview": {"ext": "mvt", "lat": 50, "lon": 10, "zoom": 3},
            "bounds": {"low": 0, "high": 12}}
