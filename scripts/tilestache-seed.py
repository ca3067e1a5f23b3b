#!/usr/bin/env python3
"""tilestache-seed: see `tilestache-seed --help` and docs/scripts.md."""
import sys

from TileStache.Scripts.seed import main

if __name__ == "__main__":
    sys.exit(main())
