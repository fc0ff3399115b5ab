"""The `charclf` command: one module per group of commands over the shared group and options in app."""

from charclf.cli import compare, data, evaluate, lab, models, predict, serve, train  # noqa: F401  (each registers its commands)
from charclf.cli.app import main

__all__ = ["main"]
