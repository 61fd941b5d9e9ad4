"""The `semgrad` command line."""

from semgrad.cli.commands import app, main

__all__ = ["app", "main"]
