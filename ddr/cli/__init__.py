"""The ``ddr`` command line; ``main`` is the console-script entry point."""

from ddr.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
