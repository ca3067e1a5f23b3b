"""Goodies of TileStache 1.51 that are gone: naming one is a config error saying what to use instead."""
from __future__ import annotations

from ..Errors import ConfigError


def retired(goodie: str, instead: str) -> type:
    """A class that, when a config builds it, fails naming the goodie and its replacement."""

    class Retired:
        __doc__ = f"{goodie} is retired: {instead}"

        def __init__(self, *args, **kwargs) -> None:
            raise ConfigError(f"{goodie} is no longer part of TileStache: {instead}")

    Retired.__name__ = Retired.__qualname__ = goodie.rsplit(":", 1)[-1]
    return Retired
