"""The command line: main.py dispatches; one module per command group
(weights, machine, run, chat, serve, desktop); output.py holds what they share."""

from edgeoss.cli.main import app, main

__all__ = ["app", "main"]
