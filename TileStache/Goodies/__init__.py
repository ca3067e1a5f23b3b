"""Goodies: optional extras that are not part of the core server."""
