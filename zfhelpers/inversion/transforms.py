"""Transforms applied to the image before each forward pass (modern recipe only): a random
translation ("jitter", Mordvintsev et al. 2015; Lucent's ``jitter``) discourages the
high-frequency patterns an exact inversion would otherwise exploit."""

from __future__ import annotations

import torch


def jitter(x: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Roll the whole batch by the same random (dy, dx) in [−pixels, pixels]."""
    if pixels <= 0:
        return x
    dy, dx = (torch.randint(-pixels, pixels + 1, (2,), generator=generator)).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))
