#!/usr/bin/env python3
"""tilestache-list: see `tilestache-list --help` and docs/scripts.md."""
import sys

from TileStache.Scripts.listing import main

if __name__ == "__main__":
    sys.exit(main())
