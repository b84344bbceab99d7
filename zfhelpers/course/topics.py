"""Imports every topic module of exercises so that they register (one module per group of notebooks)."""

from . import attribution, evolution_architecture, graph, inversion, projections  # noqa: F401
