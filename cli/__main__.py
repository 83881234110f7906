"""`python -m snapstore.cli` runs the command line."""

from snapstore.cli.app import run

run()
