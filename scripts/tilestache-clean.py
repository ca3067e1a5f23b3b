#!/usr/bin/env python3
"""tilestache-clean: see `tilestache-clean --help` and docs/scripts.md."""
import sys

from TileStache.Scripts.clean import main

if __name__ == "__main__":
    sys.exit(main())
