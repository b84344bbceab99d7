"""An explicit deconvnet, layer by layer, for teaching (ZF §2.1, Fig. 1).

The forward pass records each max-pool's *switches* (argmax indices). The way down applies, in
reverse order, (i) **unpool** — put each pooled value back at its switch, (ii) **rectify** — ReLU
on the backward signal, (iii) **filter** — ``conv_transpose2d`` with the same weights, no bias.
Local response normalisation is skipped (identity), as in ZF.

Collision rule: with overlapping pools (3×3, stride 2) two windows can pick the same input
position. ``collision="sum"`` adds both values, which is what autograd (and so
:func:`zfhelpers.methods.backprop.project`) does; ``"overwrite"`` mimics ``nn.MaxUnpool2d``, where one of
them wins (which one is unspecified). They agree whenever pools do not overlap (VGG's 2×2/2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

COLLISIONS = ("sum", "overwrite")


@dataclass
class MirrorTrace:
    """What the way down looked like: ``stages[i] = (name, signal)`` from the layer to pixels."""

    image: torch.Tensor
    stages: list[tuple[str, torch.Tensor]] = field(default_factory=list)


def _unpool(signal: torch.Tensor, indices: torch.Tensor, size: torch.Size, collision: str) -> torch.Tensor:
    n, c = signal.shape[:2]
    out = signal.new_zeros(n, c, size[-2] * size[-1])
    if collision == "overwrite":  # what nn.MaxUnpool2d does: one colliding value survives
        out.scatter_(2, indices.flatten(2), signal.flatten(2))
    else:
        out.scatter_add_(2, indices.flatten(2), signal.flatten(2))
    return out.view(n, c, size[-2], size[-1])


def mirror_project(features: nn.Sequential, x: torch.Tensor, layer_index: int, channel: int,
                   position: tuple[int, int], collision: str = "sum") -> MirrorTrace:  # fmt: skip
    """Project one activation of ``features[layer_index]`` (output) for a single image.

    ``features`` is a plain conv stack (Conv2d / ReLU / ReLU6 / MaxPool2d / LocalResponseNorm),
    e.g. ``vgg16().features``. The activation keeps its value; all others are zero."""
    if collision not in COLLISIONS:
        raise ValueError(f"unknown collision rule {collision!r}; valid: {', '.join(COLLISIONS)}")
    if x.shape[0] != 1:
        raise ValueError("the mirror projects one image at a time (it is the slow reference)")
    modules = list(features)[: layer_index + 1]
    sizes, switches = [], {}
    h = x
    with torch.no_grad():
        for i, m in enumerate(modules):
            sizes.append(h.shape)
            if isinstance(m, nn.MaxPool2d):
                h, switches[i] = F.max_pool2d(h, m.kernel_size, m.stride, m.padding, m.dilation,
                                              ceil_mode=m.ceil_mode, return_indices=True)  # fmt: skip
            elif isinstance(m, nn.Conv2d | nn.ReLU | nn.ReLU6 | nn.LocalResponseNorm | nn.Identity | nn.Dropout):
                # an in-place module (ReLU, ReLU6 with its clip) works on a copy: h is kept in `sizes`' order
                h = m(h.clone()) if getattr(m, "inplace", False) else m(h)
            else:
                raise TypeError(f"mirror_project supports conv/relu/pool/LRN stacks, not {type(m).__name__}")
        y, x_ = position
        signal = torch.zeros_like(h)
        signal[0, channel, y, x_] = h[0, channel, y, x_]
        trace = MirrorTrace(image=signal)
        trace.stages.append((f"{layer_index}: start", signal))
        for i in range(len(modules) - 1, -1, -1):
            m = modules[i]
            if isinstance(m, nn.MaxPool2d):
                signal = _unpool(signal, switches[i], sizes[i], collision)
                step = "unpool"
            elif isinstance(m, nn.ReLU | nn.ReLU6):
                signal = signal.clamp_min(0)
                step = "rectify"
            elif isinstance(m, nn.Conv2d):
                out_pad = _output_padding(sizes[i], signal, m)
                signal = F.conv_transpose2d(signal, m.weight, None, m.stride, m.padding, out_pad, m.groups,
                                            m.dilation)  # fmt: skip
                step = "filter"
            else:  # LRN, identity, dropout: skipped on the way down (ZF §2.1)
                step = "skip"
            trace.stages.append((f"{i}: {step}", signal))
    trace.image = signal
    return trace


def _output_padding(in_size: torch.Size, signal: torch.Tensor, conv: nn.Conv2d) -> tuple[int, int]:
    """The rows/columns a strided conv dropped, so the transposed conv restores the input size."""
    pads = []
    for d in range(2):
        full = (signal.shape[2 + d] - 1) * conv.stride[d] - 2 * conv.padding[d] + conv.dilation[d] * (
            conv.kernel_size[d] - 1) + 1  # fmt: skip
        pads.append(in_size[2 + d] - full)
    return tuple(pads)
