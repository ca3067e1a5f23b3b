#!/usr/bin/env python3
"""tilestache-render: see `tilestache-render --help` and docs/scripts.md."""
import sys

from TileStache.Scripts.render import main

if __name__ == "__main__":
    sys.exit(main())
