"""Input validation shared by every public entry point: a bad argument gets a clear error that
names it and what is allowed — never a torch internal error or a silently wrong result (no
negative-index wrap, no NaN maps, no empty batches)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch


class InputError(ValueError):
    """An argument a user passed is invalid; the message says which and what is allowed."""


def images(x, *, name: str = "inputs", channels: int | None = 3, single: bool = False) -> torch.Tensor:
    """A non-empty, finite N×C×H×W float tensor (1×C×H×W when ``single``)."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of shape N×C×H×W, got {type(x).__name__}")
    if x.dim() != 4:
        raise InputError(f"{name} must be N×C×H×W, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InputError(f"{name} is empty (0 images)")
    if single and x.shape[0] != 1:
        raise InputError(f"{name} must hold one image (1×C×H×W), got {x.shape[0]}")
    if channels is not None and x.shape[1] != channels:
        raise InputError(f"{name} must have {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise InputError(f"{name} must be a float tensor (normalised images), got {x.dtype}")
    if not torch.isfinite(x).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return x


def index(value, size: int, *, name: str) -> int:
    """An integer in 0..size-1: no bool, no float, no negative wrap-around."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | torch.Tensor):
        raise InputError(f"{name} must be an integer in 0..{size - 1}, got {value!r}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_floating_point() or value.dtype == torch.bool:
            raise InputError(f"{name} must be an integer in 0..{size - 1}, got {value!r}")
        value = int(value)
    if not 0 <= int(value) < size:
        raise InputError(f"{name} {int(value)} is out of range; valid: 0..{size - 1}")
    return int(value)


def indices(values, size: int, *, name: str) -> list[int]:
    """A non-empty list of distinct-or-not integers in 0..size-1 (an int is a list of one)."""
    if isinstance(values, torch.Tensor):
        values = values.flatten().tolist() if values.dim() else [values]
    if isinstance(values, numbers.Integral) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, str) or not isinstance(values, Sequence | range):
        raise InputError(f"{name} must be an integer or a list of integers in 0..{size - 1}, got {values!r}")
    out = [index(v, size, name=name) for v in values]
    if not out:
        raise InputError(f"{name} is empty; give at least one value in 0..{size - 1}")
    return out


def nonempty(values, *, name: str, hint: str = "") -> list:
    """A non-empty list or tuple (not a string, which would be taken letter by letter)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | range):
        raise InputError(f"{name} must be a list, got {type(values).__name__} {values!r}"
                         + (f"; {hint}" if hint else ""))  # fmt: skip
    if len(values) == 0:
        raise InputError(f"{name} is empty" + (f"; {hint}" if hint else ""))
    return list(values)


def positive_int(value, *, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer (no bool, no float) in ``minimum..maximum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f"{minimum}..{maximum}" if maximum is not None else f"≥ {minimum}"
        raise InputError(f"{name} must be {allowed}, got {value}")
    return int(value)


def choice(value, valid: Sequence[str], *, name: str) -> str:
    """One of ``valid``; the error lists them."""
    if value not in valid:
        raise InputError(f"unknown {name} {value!r}; valid: {', '.join(map(str, valid))}")
    return value
