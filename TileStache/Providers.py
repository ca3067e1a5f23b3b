"""Remote tile providers (Proxy, URL Template) and the name -> class registry.

A provider is any object built as ``Provider(layer, **kwargs)`` with
``renderTile(width, height, srs, coord)`` and/or
``renderArea(width, height, srs, xmin, ymin, xmax, ymax, zoom)`` returning an
object with ``save(file, format)`` (usually a Pillow image), and optionally
``getTypeByExtension(extension) -> (mime type, format name)``.
"""
from __future__ import annotations

import io
import socket
import urllib.error
import urllib.parse
import urllib.request
from string import Template

import ModestMaps
from ModestMaps.Core import Point
from ModestMaps.Providers import TemplatedMercatorProvider
from PIL import Image, UnidentifiedImageError

from .Errors import ConfigError, UpstreamError, UpstreamTimeout
from .Geography import getProjectionByName

# Provider names a configuration may use, lower case -> "module:class".
PROVIDER_CLASSES = {
    "mapnik": "TileStache.Mapnik:ImageProvider",
    "mapnik grid": "TileStache.Mapnik:GridProvider",
    "proxy": "TileStache.Providers:Proxy",
    "url template": "TileStache.Providers:UrlTemplate",
    "vector": "TileStache.Vector:Provider",
    "mbtiles": "TileStache.MBTiles:Provider",
    "pmtiles": "TileStache.PMTiles:Provider",
    "sandwich": "TileStache.Sandwich:Provider",
}

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "TileStache"


def getProviderByName(name: str) -> type:
    """The provider class registered under a name (case-insensitive)."""
    from .Caches import load_class

    key = name.strip().lower()
    if key not in PROVIDER_CLASSES:
        raise KeyError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDER_CLASSES))}")
    return load_class(PROVIDER_CLASSES[key])


def fetch_upstream(url: str, timeout: float, referer: str | None = None,
                   source: str = "Upstream tile server") -> tuple[bytes, str]:
    """GET a remote URL: (body, content type); failures become UpstreamError / UpstreamTimeout.

    ``source`` names the remote in error messages. An error status is kept
    on the UpstreamError as ``upstream_status``.
    """
    headers = {"User-Agent": USER_AGENT}
    if referer:
        headers["Referer"] = referer
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        failure = UpstreamError(f"{source} answered {error.code}")
        failure.upstream_status = error.code
        raise failure from None
    except (TimeoutError, socket.timeout):
        raise UpstreamTimeout(f"{source} timed out") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, (TimeoutError, socket.timeout)):
            raise UpstreamTimeout(f"{source} timed out") from None
        raise UpstreamError(f"{source} unreachable") from None
    except (OSError, ValueError):  # ValueError: http.client refuses a malformed URL
        raise UpstreamError(f"{source} connection failed") from None


def open_image(body: bytes) -> Image.Image:
    """A fully loaded Pillow image from bytes; anything else is an UpstreamError."""
    try:
        image = Image.open(io.BytesIO(body))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError):
        raise UpstreamError("Upstream answered with something that is not an image") from None
    return image


class Verbatim:
    """An upstream image kept as the bytes it came in, like the original's ``Verbatim``.

    ``save`` writes those bytes unchanged when the format asked for is the one
    they are in and the layer (when given) has no pixel effect and no palette
    option; otherwise the decoded image is encoded the layer's way. It also
    answers like a Pillow image (``size``, ``mode``, ``convert``, ``crop``...).
    """

    def __init__(self, body: bytes, layer=None) -> None:
        self.body = bytes(body)
        self.layer = layer
        self._image = open_image(self.body)  # refuses what is not an image (502) before anything is cached
        self.format = (self._image.format or "").upper()

    def image(self) -> Image.Image:
        """The decoded Pillow image."""
        return self._image

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._image, name)

    def passes_through(self, format: str) -> bool:
        """True when saving in a format writes the upstream bytes as they are."""
        if format.upper() != self.format:
            return False
        layer = self.layer
        if layer is None:
            return True
        if getattr(layer, "pixel_effect", None) is not None:
            return False
        options = getattr(layer, "png_options", None) or {}
        return not (self.format == "PNG" and ("palette" in options or "palette256" in options))

    def save(self, file, format: str, **options) -> None:
        """Write the upstream bytes, or the image re-encoded when the format or the layer asks for it."""
        if self.passes_through(format):
            file.write(self.body)
        elif self.layer is not None and hasattr(self.layer, "encode_tile"):
            file.write(self.layer.encode_tile(self._image, format))
        else:
            from .Formats import encode

            file.write(encode(self._image, format, options))


class Proxy:
    """Tiles fetched from another tile server: a {Z}/{X}/{Y} URL or a ModestMaps provider name."""

    def __init__(self, layer, url: str | None = None, provider: str | None = None,
                 timeout: float | None = None, provider_name: str | None = None) -> None:
        self.layer = layer
        self.timeout = float(timeout) if timeout is not None else DEFAULT_TIMEOUT
        provider = provider or provider_name
        if url:
            if not isinstance(url, str) or not url.lower().startswith(("http://", "https://", "file://")):
                raise ConfigError("url must be an http(s) URL template with {Z}, {X}, {Y}", key="url")
            self.provider = TemplatedMercatorProvider(url)
        elif provider:
            known = ModestMaps.builtinProviders
            if provider.upper() not in known:
                raise ConfigError(f"unknown ModestMaps provider {provider!r} "
                                  f"(known: {', '.join(sorted(known))})", key="provider")
            self.provider = known[provider.upper()]()
        else:
            raise ConfigError("proxy needs a url or a provider", key="url")

    def renderTile(self, width: int, height: int, srs: str, coord) -> Image.Image | Verbatim:
        """The upstream tile(s) for a coordinate: one kept verbatim, or several layered into one image."""
        urls = self.provider.getTileUrls(coord)
        bodies = [fetch_upstream(url, self.timeout)[0] for url in urls]
        if len(bodies) == 1:
            return Verbatim(bodies[0], self.layer)
        images = [open_image(body) for body in bodies]
        composite = Image.new("RGBA", images[0].size, (0, 0, 0, 0))
        for image in images:
            composite.alpha_composite(image.convert("RGBA").resize(composite.size))
        return composite


class UrlTemplate:
    """Images from a WMS-like URL template with $xmin $ymin $xmax $ymax $width $height $srs $zoom."""

    def __init__(self, layer, template: str, referer: str | None = None,
                 source_projection: str | None = None, timeout: float | None = None) -> None:
        if not isinstance(template, str) or not template.lower().startswith(("http://", "https://")):
            raise ConfigError("template must be an http(s) URL", key="template")
        self.layer = layer
        self.template = Template(template)
        self.referer = referer
        self.timeout = float(timeout) if timeout is not None else DEFAULT_TIMEOUT
        try:
            self.source_projection = getProjectionByName(source_projection) if source_projection else None
        except (ValueError, ImportError, AttributeError) as error:
            raise ConfigError(str(error), key="source projection") from None

    def renderArea(self, width: int, height: int, srs: str, xmin: float, ymin: float,
                   xmax: float, ymax: float, zoom: int) -> Image.Image | Verbatim:
        """The image the template's URL returns for this area: kept verbatim, unless a metatile is to be cut."""
        if self.source_projection is not None:
            source = self.source_projection
            layer_projection = self.layer.projection
            ll = source.locationProj(layer_projection.projLocation(Point(xmin, ymin)))
            ur = source.locationProj(layer_projection.projLocation(Point(xmax, ymax)))
            xmin, ymin, xmax, ymax = ll.x, ll.y, ur.x, ur.y
            srs = source.srs
        url = self.template.safe_substitute(
            width=width, height=height, srs=urllib.parse.quote(srs, safe=":"), zoom=zoom,
            xmin=repr(float(xmin)), ymin=repr(float(ymin)), xmax=repr(float(xmax)), ymax=repr(float(ymax)))
        tile = Verbatim(fetch_upstream(url, self.timeout, self.referer)[0], self.layer)
        metatile = getattr(self.layer, "metatile", None)
        if metatile is None or not metatile.isForReal():
            return tile  # served as it came, whatever its size (as the original did)
        if tile.size != (width, height):  # cutting needs the size asked for
            raise UpstreamError(f"Upstream image is {tile.size[0]}x{tile.size[1]}, expected {width}x{height}")
        return tile.image().convert("RGBA")
