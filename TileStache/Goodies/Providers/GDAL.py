"""GDAL: tiles cut from a raster file, reprojected into each tile (rasterio).

Configuration, as in 1.51::

    "provider": {
      "class": "TileStache.Goodies.Providers.GDAL:Provider",
      "kwargs": {"filename": "landcover-1km.tif", "resample": "linear", "maskband": 2}
    }

``filename`` is relative to the configuration, or a cloud-optimized GeoTIFF at
an ``https://`` (or ``http://``) URL or ``s3://bucket/key``, read in pieces
with Range requests through GDAL's ``/vsicurl/`` and ``/vsis3/``. S3 takes the
standard AWS environment (including GDAL's ``AWS_S3_ENDPOINT``), or our own
kwargs ``endpoint_url`` and ``region`` (as the S3 cache names them).

``resample`` is ``cubic`` (the default), ``cubicspline``, ``linear`` or
``nearest``; cubic spline between rasters of the same scale falls back to
cubic, as the original did. A raster of one band is drawn grey, one of three or
more as red, green and blue from its first three bands. ``maskband`` above 0
names the band whose validity (its nodata, reprojected with nearest
neighbour) becomes the tile's alpha channel; 0 (the default) gives an RGB tile.

A local raster that cannot be opened fails at load; a remote one is opened
when a tile needs it, and if it cannot be read the tile is a 502 (504 on a
timeout) and nothing is cached.
"""
from __future__ import annotations

import os
import re
import urllib.parse

import numpy
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.env import PROJDataFinder
from rasterio.errors import RasterioError
from rasterio.session import AWSSession
from rasterio.transform import from_bounds
from rasterio.warp import reproject

from ...Config import resolve_path
from ...Errors import ConfigError, KnownUnknown, UpstreamError, UpstreamTimeout

try:
    from rasterio._err import CPLE_BaseError as _GDALError
except ImportError:  # pragma: no cover - rasterio keeps this name, but it is private
    _GDALError = RasterioError

RESAMPLINGS = {
    "cubic": Resampling.cubic,
    "cubicspline": Resampling.cubic_spline,
    "linear": Resampling.bilinear,
    "nearest": Resampling.nearest,
}
REMOTE = re.compile(r"^(https?|s3)://", re.I)
HTTP_TIMEOUT = "10"  # seconds, unless GDAL_HTTP_TIMEOUT is set in the environment
READ_ERRORS = (RasterioError, _GDALError)

# The mapnik wheel sets PROJ_LIB to a folder without proj.db, and rasterio hands PROJ_DATA or PROJ_LIB to its own
# bundled PROJ each time a GDAL environment starts: where neither holds a proj.db, PROJ_DATA names rasterio's.
if not any(os.path.isfile(os.path.join(os.environ.get(name, ""), "proj.db")) for name in ("PROJ_DATA", "PROJ_LIB")) \
        and PROJDataFinder().search_wheel():
    os.environ["PROJ_DATA"] = PROJDataFinder().search_wheel()


def gdal_path(location: str) -> str:
    """The path GDAL opens for a file or URL: /vsicurl/ for http(s), /vsis3/ for s3."""
    if re.match(r"^https?://", location, re.I):
        return "/vsicurl/" + location
    if location[:5].lower() == "s3://":
        return "/vsis3/" + location[5:]
    return location


class Provider:
    """A raster's pixels reprojected into each tile, grey or RGB, with optional alpha from a band's mask."""

    def __init__(self, layer, filename: str, resample: str = "cubic", maskband: int = 0,
                 endpoint_url: str | None = None, region: str | None = None) -> None:
        if not isinstance(filename, str) or not filename:
            raise ConfigError("filename must name a raster file or URL", key="filename")
        if resample not in RESAMPLINGS:
            raise ConfigError(f"resample must be one of {', '.join(RESAMPLINGS)}, not {resample!r}",
                              key="resample")
        if isinstance(maskband, bool) or not isinstance(maskband, int) or maskband < 0:
            raise ConfigError(f"maskband must be a band number (0 for none), not {maskband!r}", key="maskband")
        if endpoint_url is not None and not re.match(r"^https?://[^/]+/?$", str(endpoint_url)):
            raise ConfigError("endpoint_url must be http(s)://host[:port]", key="endpoint_url")
        self.layer = layer
        dirpath = getattr(getattr(layer, "config", None), "dirpath", ".") or "."
        self.location = resolve_path(dirpath, filename)
        self.remote = bool(REMOTE.match(self.location))
        if "://" in self.location and not self.remote:
            raise ConfigError(f"a raster is a file, an http(s):// URL or s3://bucket/key, not {self.location}",
                              key="filename")
        self.path = gdal_path(self.location)
        self.resample = RESAMPLINGS[resample]
        self.maskband = maskband
        self.endpoint_url = endpoint_url
        self.region = region
        if not self.remote:
            self._check(self._describe())

    def _env(self) -> rasterio.Env:
        """GDAL settings for one read: quick failure on remote errors, and the S3 endpoint if given."""
        options = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "0"}
        if "GDAL_HTTP_TIMEOUT" not in os.environ:
            options["GDAL_HTTP_TIMEOUT"] = HTTP_TIMEOUT
        session = None
        if self.location[:5].lower() == "s3://" and (self.endpoint_url or self.region):
            endpoint = urllib.parse.urlsplit(self.endpoint_url) if self.endpoint_url else None
            session = AWSSession(endpoint_url=endpoint.netloc if endpoint else None, region_name=self.region)
            if endpoint:
                options.update(AWS_HTTPS="YES" if endpoint.scheme == "https" else "NO",
                               AWS_VIRTUAL_HOSTING="FALSE")
        return rasterio.Env(session=session, **options) if session else rasterio.Env(**options)

    def _describe(self) -> tuple[int, bool]:
        """(band count, georeferenced?) of the raster; ConfigError when GDAL cannot open it."""
        try:
            with self._env(), rasterio.open(self.path) as source:
                return source.count, source.crs is not None or bool(source.gcps[0])
        except READ_ERRORS as error:
            raise ConfigError(f"GDAL cannot open {self.location}: {error}", key="filename") from None

    def _check(self, description: tuple[int, bool]) -> None:
        count, georeferenced = description
        if not georeferenced:
            raise ConfigError(f"{self.location} has no coordinate reference system", key="filename")
        if count == 2 or count == 0:
            raise ConfigError(f"{self.location} has {count} bands: one (grey) or three or more (RGB) are drawn",
                              key="filename")
        if self.maskband > count:
            raise ConfigError(f"{self.location} has no band {self.maskband} (it has {count})", key="maskband")

    def renderArea(self, width: int, height: int, srs: str, xmin: float, ymin: float,
                   xmax: float, ymax: float, zoom: int) -> Image.Image:
        """The area as an RGB image (RGBA with maskband), black and transparent where the raster is not."""
        crs = CRS.from_user_input(srs)
        transform = from_bounds(xmin, ymin, xmax, ymax, width, height)
        try:
            with self._env(), rasterio.open(self.path) as source:
                if self.remote:
                    self._check((source.count, source.crs is not None or bool(source.gcps[0])))
                return self._draw(source, width, height, crs, transform)
        except ConfigError as error:
            raise UpstreamError(f"The raster cannot be drawn: {error.message}") from None
        except READ_ERRORS as error:
            if not self.remote:
                raise KnownUnknown("The raster could not be read") from error
            if re.search(r"tim(e|ed) ?out", str(error), re.I):
                raise UpstreamTimeout("The remote raster did not answer in time") from None
            raise UpstreamError("The remote raster could not be read") from None

    def _draw(self, source, width: int, height: int, crs: CRS, transform) -> Image.Image:
        gcps, gcp_crs = source.gcps
        placement = ({"gcps": gcps, "src_crs": gcp_crs} if source.crs is None and gcps else {})
        resample = self.resample
        if resample is Resampling.cubic_spline and not placement:
            # Cubic spline at the source's own scale darkens the picture; the original used cubic there.
            xscale, yscale = transform.a / source.transform.a, transform.e / source.transform.e
            if max(abs(xscale - 1), abs(yscale - 1)) < .001:
                resample = Resampling.cubic
        indexes = [1] if source.count == 1 else [1, 2, 3]
        colour = numpy.zeros((len(indexes), height, width), numpy.uint8)
        reproject(rasterio.band(source, indexes), colour, dst_transform=transform, dst_crs=crs,
                  dst_nodata=0, resampling=resample, **placement)
        if len(indexes) == 1:
            colour = numpy.repeat(colour, 3, axis=0)
        if not self.maskband:
            return Image.fromarray(numpy.ascontiguousarray(colour.transpose(1, 2, 0)), "RGB")
        # Validity does not interpolate: the mask band is warped with nearest neighbour into NaN.
        valid = numpy.full((height, width), numpy.nan, numpy.float32)
        reproject(rasterio.band(source, self.maskband), valid, dst_transform=transform, dst_crs=crs,
                  dst_nodata=numpy.nan, resampling=Resampling.nearest, **placement)
        alpha = numpy.where(numpy.isnan(valid), 0, 255).astype(numpy.uint8)
        return Image.fromarray(numpy.ascontiguousarray(numpy.concatenate([colour, alpha[None]]).transpose(1, 2, 0)),
                               "RGBA")
