"""Imports every topic module of exercises so that they register (one module per group of notebooks)."""

from . import graph, projections  # noqa: F401
