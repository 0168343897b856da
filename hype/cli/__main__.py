"""`python -m hype.cli` runs the `hype` command (handy from a checkout that is not installed)."""

from hype.cli import main

main(prog_name="hype")
