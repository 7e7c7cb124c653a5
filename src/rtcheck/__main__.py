"""``python -m rtcheck``: the same command line as ``rtcheck``."""

from rtcheck.cli import main

main()
