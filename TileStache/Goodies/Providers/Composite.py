"""Composite: the original's layered rendering goodie, run by the Sandwich engine.

Configuration (as in 1.51)::

    "provider": {"class": "TileStache.Goodies.Providers.Composite:Provider",
                 "kwargs": {"stack": [{"src": "base"},
                                      [{"src": "outlines", "mask": "halos"}, {"src": "streets"}]]}}

``stack`` is one step (an object), a list of steps and nested lists, or the
path or URL of a JSON file holding one. Steps take ``src``, ``mask``,
``color``, ``mode``, ``opacity``, ``zoom`` and ``adjustments`` exactly as
Sandwich does. ``stackfile`` (deprecated in 1.51) names the XML form:
``<stack>`` holding ``<layer src=".." color="..">`` (with an optional
``<mask src=".."/>`` inside) and nested ``<stack>`` elements.
"""
from __future__ import annotations

import json
import urllib.request
from xml.dom.minidom import parse as parse_xml
from xml.parsers.expat import ExpatError

from ... import Sandwich
from ...Config import resolve_path
from ...Errors import ConfigError


def read_stack(dirpath: str, location: str):
    """The stack held by a JSON file or URL, relative to the configuration."""
    where = resolve_path(dirpath, location)
    try:
        if "://" in where:
            with urllib.request.urlopen(where, timeout=30) as response:
                return json.loads(response.read())
        with open(where, "rb") as file:
            return json.loads(file.read())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read a JSON stack from {location}: {error}", key="stack") from None


def xml_stack(element) -> list:
    """The JSON stack equivalent to a <stack> element of a deprecated stackfile."""
    steps = []
    for child in element.childNodes:
        if child.nodeType != child.ELEMENT_NODE:
            continue
        if child.tagName == "stack":
            steps.append(xml_stack(child))
        elif child.tagName == "layer":
            step = {key: child.getAttribute(key) for key in ("src", "color") if child.hasAttribute(key)}
            for mask in child.getElementsByTagName("mask"):
                if mask.hasAttribute("src"):
                    step["mask"] = mask.getAttribute("src")
            steps.append(step)
        else:
            raise ConfigError(f"unknown stackfile element <{child.tagName}>", key="stackfile")
    return steps


def read_stackfile(dirpath: str, location: str) -> list:
    """The stack described by a deprecated XML stackfile."""
    try:
        root = parse_xml(resolve_path(dirpath, location)).documentElement
    except (OSError, ExpatError) as error:
        raise ConfigError(f"cannot read stackfile {location}: {error}", key="stackfile") from None
    if root.tagName != "stack":
        raise ConfigError(f"a stackfile's root element is <stack>, not <{root.tagName}>", key="stackfile")
    return xml_stack(root)


class Provider(Sandwich.Provider):
    """A Sandwich provider built from the goodie's ``stack`` or ``stackfile``."""

    def __init__(self, layer, stack=None, stackfile: str | None = None) -> None:
        if isinstance(stack, str):
            stack = read_stack(layer.config.dirpath, stack)
        if stack is None and stackfile is not None:
            stack = read_stackfile(layer.config.dirpath, str(stackfile))
        if not isinstance(stack, (list, dict)):
            raise ConfigError("needs a stack (an object, a list, or a JSON file) or a stackfile", key="stack")
        super().__init__(layer, stack)


Composite = Provider  # the 1.51 name, kept for configs that use it
