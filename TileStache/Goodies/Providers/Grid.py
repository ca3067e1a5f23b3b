"""UTM grid lines as a transparent overlay: the original's Grid goodie, on Pillow and pyproj.

Configuration (as in 1.51)::

    "grid": {"provider": {"class": "TileStache.Goodies.Providers.Grid:UTM",
                          "kwargs": {"display": "MGRS", "spacing": 200, "tick": 10}}}

The UTM zone is the one under the rendered area's centre. Lines fall on
round eastings and northings (a power of ten of metres) chosen so that
they are at least about ``spacing`` pixels apart; each line carries a tick
every tenth of a step, ``tick`` pixels long (west of verticals, south of
horizontals). Each intersection is labelled in ``display`` style: "UTM"
("33T 05 50") or "MGRS" ("33T VK 05 50"). Lines are white with a black
copy one pixel up and left, so they show on dark and light maps alike.
"""
from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFont
from pyproj import CRS, Transformer

from ...Errors import ConfigError

__all__ = ["UTM", "Provider", "utm_zone", "latitude_band", "mgrs_square"]

LATITUDE_BANDS = "CDEFGHJKLMNPQRSTUVWX"  # 8 degrees each from 80S; X runs on to 84N
# 100 km square letters: eastings by zone set (zone % 3), northings by zone parity.
EASTING_LETTERS = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")
NORTHING_LETTERS = ("FGHJKLMNPQRSTUVABCDE", "ABCDEFGHJKLMNPQRSTUV")
WHITE, BLACK, LABEL_BACK = (255, 255, 255, 255), (0, 0, 0, 255), (255, 255, 255, 0x99)


def utm_zone(lon: float) -> int:
    """The UTM zone number (1-60) of a longitude."""
    return int(math.floor((lon + 180.0) / 6.0)) % 60 + 1


def latitude_band(lat: float) -> str:
    """The UTM/MGRS latitude band letter of a latitude."""
    return LATITUDE_BANDS[min(max(int(math.floor((lat + 80.0) / 8.0)), 0), len(LATITUDE_BANDS) - 1)]


def mgrs_square(zone: int, easting: float, northing: float) -> str:
    """The two letters of the MGRS 100 km square holding a UTM easting and northing in a zone
    ("" for an easting outside 100-900 km, beyond any square)."""
    if not 100000 <= easting < 900000:
        return ""
    column = EASTING_LETTERS[zone % 3][int(easting // 100000) - 1]
    row = NORTHING_LETTERS[zone % 2][int(northing % 2000000 // 100000)]
    return column + row


class UTM:
    """Renders transparent UTM grid lines with labels; ``display`` "UTM" or "MGRS"."""

    def __init__(self, layer, display: str = "UTM", spacing: int = 128, tick: int = 8) -> None:
        if not isinstance(display, str) or display.lower() not in ("utm", "mgrs"):
            raise ConfigError(f'display must be "UTM" or "MGRS", not {display!r}', key="display")
        for key, value in (("spacing", spacing), ("tick", tick)):
            try:
                number = int(value)
            except (TypeError, ValueError):
                number = -1
            if isinstance(value, bool) or number < (1 if key == "spacing" else 0):
                raise ConfigError(f"{key} must be a whole number of pixels, not {value!r}", key=key)
        self.layer = layer
        self.display = display.lower()
        self.spacing = int(spacing)
        self.tick = int(tick)
        self.font = ImageFont.load_default(size=14)

    def renderArea(self, width: int, height: int, srs: str, xmin: float, ymin: float,
                   xmax: float, ymax: float, zoom: int, scale_factor: float | None = None) -> Image.Image:
        """An RGBA image of the area (in the layer's projection) with the grid drawn on transparency."""
        crs = CRS.from_user_input(srs)
        lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = lonlat.transform((xmin + xmax) / 2, (ymin + ymax) / 2)
        zone, south = utm_zone(lon), lat < 0
        utm = CRS.from_dict({"proj": "utm", "zone": zone, "south": south, "datum": "WGS84"})
        to_utm = Transformer.from_crs(crs, utm, always_xy=True)
        from_utm = Transformer.from_crs(utm, crs, always_xy=True)
        utm_lonlat = Transformer.from_crs(utm, "EPSG:4326", always_xy=True)

        eastings, northings = to_utm.transform([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax])
        e0, e1, n0, n1 = min(eastings), max(eastings), min(northings), max(northings)
        pixels = math.hypot(width, height)
        units = math.hypot(e1 - e0, n1 - n0)
        zeros = max(1, math.ceil(math.log10(units / (pixels / self.spacing))))  # steps of 10 m or more
        step = 10 ** zeros
        tick = self.tick * units / pixels
        cols = range(int(e0 // step) * step, int(e1 // step + 2) * step, step)
        rows = range(int(n0 // step) * step, int(n1 // step + 2) * step, step)
        fine = [step * i / 10 for i in range(10)]

        def pixel(points):
            xs, ys = from_utm.transform([p[0] for p in points], [p[1] for p in points])
            return [(int(width * (x - xmin) / (xmax - xmin)), int(height * (ymax - y) / (ymax - ymin)))
                    for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]  # none off the zone

        lines = []
        for e in cols:
            northing_steps = [n + f for n in rows for f in fine]
            lines.append(pixel([(e, n) for n in northing_steps]))
            lines.extend(pixel([(e, n), (e - tick, n)]) for n in northing_steps)
        for n in rows:
            easting_steps = [e + f for e in cols for f in fine]
            lines.append(pixel([(e, n) for e in easting_steps]))
            lines.extend(pixel([(e, n), (e, n - tick)]) for e in easting_steps)

        labels = []
        for e in cols:
            for n in rows:
                point = pixel([(e, n)])
                if not point:
                    continue
                (x, y), = point
                lon, lat = utm_lonlat.transform(e, n)
                labels.append(((x + 2, y - 18), self.label(zone, latitude_band(lat), e, n, zeros)))

        image = Image.new("RGBA", (width, height), (0xEE, 0xEE, 0xEE, 0))
        draw = ImageDraw.Draw(image)
        for (x, y), text in labels:
            left, top, right, bottom = draw.textbbox((x, y), text, font=self.font)
            draw.rectangle((left - 2, y, right + 2, bottom), fill=LABEL_BACK)
        lines = [line for line in lines if len(line) > 1]
        for line in lines:
            draw.line(line, fill=WHITE)
        for line in lines:
            draw.line([(x - 1, y - 1) for x, y in line], fill=BLACK)
        for (x, y), text in labels:
            draw.text((x, y), text, fill=BLACK, font=self.font)
        return image

    def label(self, zone: int, band: str, easting: float, northing: float, zeros: int) -> str:
        """An intersection's label: the grid zone and the easting and northing cut to the step."""
        grid = f"{zone}{band}"
        if self.display == "mgrs":
            e, n = f"{int(easting) % 100000:05d}", f"{int(northing) % 100000:05d}"
            e, n = (e[:-zeros], n[:-zeros]) if zeros else (e, n)
            return " ".join(part for part in (grid, mgrs_square(zone, easting, northing), e, n) if part)
        e, n = f"{int(easting):07d}", f"{int(northing):07d}"
        return " ".join((grid, e[:-zeros] if zeros else e, n[:-zeros] if zeros else n))


Provider = UTM  # the class path the issue names, TileStache.Goodies.Providers.Grid:Provider
