"""The command-line tools (tilestache-seed, -clean, -list, -render, -compose), one module each.

Each module has ``parser()`` and ``main(argv) -> exit code``; the scripts in
``scripts/`` and the console scripts only call ``main``. Exit codes: 0 done,
1 some tiles failed, 2 usage error.
"""
