#!/usr/bin/env python3
"""tilestache-compose: see `tilestache-compose --help` and docs/scripts.md."""
import sys

from TileStache.Scripts.compose import main

if __name__ == "__main__":
    sys.exit(main())
