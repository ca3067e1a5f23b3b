#!/usr/bin/env python3
"""Serve map tiles for a TileStache configuration (development server)."""
import sys

from TileStache.Server import main

if __name__ == "__main__":
    sys.exit(main())
