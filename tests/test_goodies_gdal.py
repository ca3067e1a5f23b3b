"""The GDAL goodie on GeoTIFFs written here with rasterio: local, over HTTP Range requests, from moto's S3."""
import io
import math
import os

import numpy
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_bounds
from werkzeug.test import Client

import TileStache
import TileStache.Goodies.Providers.GDAL  # noqa: F401  (gives rasterio its proj.db beside mapnik's PROJ_LIB)
from TileStache.Config import buildConfiguration
from TileStache.Errors import ConfigError

from formats_helpers import RangeServer
from services import free_port

GDAL = "TileStache.Goodies.Providers.GDAL:Provider"
HALF = math.pi * 6378137  # half the width of the spherical mercator world, in metres
Z, X, Y = 3, 4, 2  # the tile in the test rasters: 0..45 E, 40.98..66.51 N


def tile_bounds(z, x, y):
    """(west, south, east, north) of a tile in EPSG:3857 metres, from the tile grid's definition."""
    size = 2 * HALF / 2 ** z
    return -HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size


def pattern(rows, cols, seed):
    """Distinct 8-bit values, so that a shifted or flipped pixel shows."""
    r, c = numpy.mgrid[0:rows, 0:cols]
    return ((r * 7 + c * 3 + seed) % 250 + 1).astype(numpy.uint8)


def write_tiff(path, bands, bounds, crs="EPSG:3857", nodata=None, **extra):
    """A tiled GeoTIFF (a small COG-like layout) of uint8 bands spanning bounds."""
    count, rows, cols = bands.shape
    profile = dict(driver="GTiff", width=cols, height=rows, count=count, dtype="uint8", crs=crs,
                   transform=from_bounds(*bounds, cols, rows), tiled=True, blockxsize=64, blockysize=64, **extra)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def left_half_tiff(path, count=1, nodata=None):
    """The left half of tile Z/X/Y at the tile's own resolution: 256 rows by 128 columns per band."""
    west, south, east, north = tile_bounds(Z, X, Y)
    bands = numpy.stack([pattern(256, 128, 40 * i) for i in range(count)])
    if nodata is not None:
        bands[:, :64, :64] = nodata  # the top-left quarter of the raster is no data
    write_tiff(path, bands, (west, south, (west + east) / 2, north), nodata=nodata)
    return bands


def config(tmp_path, cache=None, **kwargs):
    return buildConfiguration({"cache": cache or {"name": "Test"},
                               "layers": {"r": {"provider": {"class": GDAL, "kwargs": kwargs}}}}, str(tmp_path))


def get(cfg, z=Z, x=X, y=Y):
    response = Client(TileStache.WSGITileServer(cfg)).get(f"/r/{z}/{x}/{y}.png")
    return response


def image(cfg, z=Z, x=X, y=Y):
    response = get(cfg, z, x, y)
    assert response.status_code == 200, response.data
    return numpy.asarray(Image.open(io.BytesIO(response.data)))


def test_grey_raster_pixels_match_the_source_where_they_overlap(tmp_path):
    (source,) = left_half_tiff(tmp_path / "grey.tif")
    tile = image(config(tmp_path, filename="grey.tif", resample="nearest"))
    assert tile.shape == (256, 256, 3)  # no maskband: RGB
    for channel in range(3):  # one band is grey: the same value in red, green and blue
        assert (tile[:, :128, channel] == source).all()
    assert (tile[:, 128:] == 0).all()  # no raster there: black


def test_rgb_raster_takes_its_first_three_bands(tmp_path):
    bands = left_half_tiff(tmp_path / "rgb.tif", count=4)
    tile = image(config(tmp_path, filename="rgb.tif", resample="nearest"))
    for channel in range(3):
        assert (tile[:, :128, channel] == bands[channel]).all()
    assert not (bands[3] == bands[0]).all()  # the fourth band differs and is not drawn


def test_mask_band_becomes_alpha(tmp_path):
    (source,) = left_half_tiff(tmp_path / "masked.tif", nodata=0)
    tile = image(config(tmp_path, filename="masked.tif", resample="nearest", maskband=1))
    assert tile.shape == (256, 256, 4)
    alpha = tile[:, :, 3]
    assert (alpha[:64, :64] == 0).all()  # the source's nodata
    assert (alpha[:, 128:] == 0).all()  # outside the raster
    valid = numpy.ones((256, 128), bool)
    valid[:64, :64] = False
    assert (alpha[:, :128][valid] == 255).all()
    assert (tile[:, :128, 0][valid] == source[valid]).all()


def test_raster_in_degrees_is_reprojected_into_the_tile(tmp_path):
    # Two blocks side by side, 0..20 E and 20..45 E, between 35 and 70 N (over the whole tile's latitudes).
    bands = numpy.zeros((1, 350, 450), numpy.uint8)
    bands[0, :, :200], bands[0, :, 200:] = 60, 180
    write_tiff(tmp_path / "wgs84.tif", bands, (0, 35, 45, 70), crs="EPSG:4326")
    tile = image(config(tmp_path, filename="wgs84.tif", resample="nearest"))
    west, _, east, _ = tile_bounds(Z, X, Y)
    for column in range(256):
        lon = math.degrees((west + (column + 0.5) * (east - west) / 256) / 6378137)
        if abs(lon - 20) > 0.5:  # away from the edge between the blocks
            assert (tile[:, column, 0] == (60 if lon < 20 else 180)).all(), column


@pytest.mark.parametrize("resample", ["cubic", "cubicspline", "linear", "nearest"])
def test_each_resampling_name_renders_the_same_flat_raster(tmp_path, resample):
    write_tiff(tmp_path / "flat.tif", numpy.full((1, 100, 100), 77, numpy.uint8), (0, 35, 45, 70), crs="EPSG:4326")
    tile = image(config(tmp_path, filename="flat.tif", resample=resample))
    assert (tile[64:192, 64:192] == 77).all()  # inside the raster, away from its edges


def test_documented_sample_config_loads_and_serves(tmp_path):
    left_half_tiff(tmp_path / "landcover-1km.tif", count=3, nodata=0)
    cfg = config(tmp_path, filename="landcover-1km.tif", resample="linear", maskband=2)
    tile = image(cfg)
    assert tile.shape == (256, 256, 4) and tile[200, 100, 3] == 255 and tile[200, 200, 3] == 0


@pytest.mark.parametrize("kwargs, key", [
    ({"filename": "missing.tif"}, "provider.filename"),
    ({"filename": "not-a-raster.tif"}, "provider.filename"),
    ({"filename": "grey.tif", "resample": "lanczos"}, "provider.resample"),
    ({"filename": "grey.tif", "maskband": 2}, "provider.maskband"),
    ({"filename": "ftp://example.com/a.tif"}, "provider.filename"),
])
def test_bad_raster_or_kwargs_fail_at_load_naming_layer_and_key(tmp_path, kwargs, key):
    left_half_tiff(tmp_path / "grey.tif")
    (tmp_path / "not-a-raster.tif").write_text("hello")
    with pytest.raises(ConfigError) as error:
        config(tmp_path, **kwargs)
    assert (error.value.layer, error.value.key) == ("r", key)


@pytest.fixture
def range_server(tmp_path):
    server = RangeServer(tmp_path)
    yield server
    server.stop()


def test_same_raster_over_http_range_requests(tmp_path, range_server):
    left_half_tiff(tmp_path / "http.tif", nodata=0)
    local = image(config(tmp_path, filename="http.tif", maskband=1))
    remote = image(config(tmp_path, filename=f"{range_server.url}/http.tif", maskband=1))
    assert (remote == local).all()
    head, *reads = range_server.ranges  # GDAL asks for the size first (a HEAD), then reads pieces
    assert head == "" and reads and all(r.startswith("bytes=") for r in reads)


def test_same_raster_from_s3(tmp_path, s3_server):
    left_half_tiff(tmp_path / "s3.tif", count=3)
    client = s3_server.client()
    client.create_bucket(Bucket="rasters")
    client.upload_file(str(tmp_path / "s3.tif"), "rasters", "cog/s3.tif")
    local = image(config(tmp_path, filename="s3.tif"))
    remote = image(config(tmp_path, filename="s3://rasters/cog/s3.tif", endpoint_url=s3_server.endpoint_url))
    assert (remote == local).all()


def test_unreachable_remote_raster_is_a_502_and_nothing_is_cached(tmp_path):
    cache = tmp_path / "cache"
    cfg = config(tmp_path, cache={"name": "Disk", "path": str(cache)},
                 filename=f"http://127.0.0.1:{free_port()}/gone.tif")
    response = get(cfg)
    assert response.status_code in (502, 504)
    assert b"Traceback" not in response.data and b"127.0.0.1" not in response.data
    assert not [name for _, _, names in os.walk(cache) for name in names if name.endswith(".png")]
