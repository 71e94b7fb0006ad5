"""The `chipbench` command line. Only this package reads the command line or prints; nothing imports it."""

from chipbench.cli.app import main

__all__ = ["main"]
