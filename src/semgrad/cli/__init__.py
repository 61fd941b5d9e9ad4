"""The `semgrad` command line."""

from semgrad.cli.app import app, main

__all__ = ["app", "main"]
