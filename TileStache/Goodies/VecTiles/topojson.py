"""VecTiles' TopoJSON: the vector provider's encoding, with the goodie's object names and flags.

One layer is the object ``vectile``; a MultiProvider tile has one object per
layer name, on one shared quantization. Geometries of clipping layers carry
``"clipped": true``, as in the original.
"""
from __future__ import annotations

import json

from ...Vector import encoders
from .geojson import dumps


def encode(file, layers: list[tuple[str, list, bool]]) -> None:
    """Write (object name, features, is_clipped) layers as one TopoJSON Topology."""
    topology = json.loads(encoders.topojson({name: features for name, features, _ in layers}))
    for name, _, is_clipped in layers:
        if is_clipped:
            for geometry in topology["objects"][name]["geometries"]:
                geometry["clipped"] = True
    file.write(dumps(topology))
