"""The ``laser`` command: parsing and printing only; the work is done by library functions."""

from laser_core.cli.main import main

__all__ = ["main"]
