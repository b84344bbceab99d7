"""Imports every topic module of exercises so that they register (one module per group of notebooks)."""

from . import (
    evolution_architecture,  # noqa: F401
    projections,  # noqa: F401
)
