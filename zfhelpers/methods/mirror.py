"""An explicit deconvnet, layer by layer, for teaching (ZF §2.1, Fig. 1).

The forward pass records each max-pool's *switches* (argmax indices). The way down applies, in
reverse order, (i) **unpool** — put each pooled value back at its switch, (ii) **rectify** — ReLU
on the backward signal, (iii) **filter** — ``conv_transpose2d`` with the same weights, no bias.
Local response normalisation is skipped (identity), as in ZF.

Collision rule: with overlapping pools (3×3, stride 2) two windows can pick the same input
position. ``collision="sum"`` adds both values, which is what autograd (and so the hook engine
:func:`zfhelpers.methods.projection.unit_projection`) does; ``"overwrite"`` mimics
``nn.MaxUnpool2d``, where one of them wins (which one is unspecified). They agree whenever pools
do not overlap (VGG's 2×2/2).

Rectifiers: the forward pass runs each module as the network does (ReLU6 clips at 6; an in-place
module works on a copy, so the stored sizes and the caller's tensor stay intact); the way down
rectifies with ``max(R, 0)`` for ReLU and ReLU6 alike, the deconvnet rule of
:mod:`zfhelpers.methods.rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..models.capture import capture_detached
from ..models.zoo import adapt
from .projection import unit_projection
from .targets import strongest_channels

COLLISIONS = ("sum", "overwrite")
_FORWARD = (nn.Conv2d, nn.ReLU, nn.ReLU6, nn.LocalResponseNorm, nn.Identity, nn.Dropout)
#: ``unpool(signal, switches, size)``: the pooled signal back at the switches in a map of ``size``.
Unpool = Callable[[torch.Tensor, torch.Tensor, torch.Size], torch.Tensor]


@dataclass
class MirrorTrace:
    """What the way down looked like: ``stages[i] = (label, signal)`` from the layer to pixels,
    labels ``"<module index>: <step>"``; ``names`` maps module indices to friendly layer names."""

    image: torch.Tensor
    stages: list[tuple[str, torch.Tensor]] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)


def unpool_at_switches(signal: torch.Tensor, switches: torch.Tensor, size: torch.Size,
                       collision: str = "sum") -> torch.Tensor:  # fmt: skip
    """Each pooled value back at the position its switch recorded, zeros elsewhere (ZF §2.1)."""
    n, c = signal.shape[:2]
    out = signal.new_zeros(n, c, size[-2] * size[-1])
    if collision == "overwrite":  # what nn.MaxUnpool2d does: one colliding value survives
        out.scatter_(2, switches.flatten(2), signal.flatten(2))
    else:
        out.scatter_add_(2, switches.flatten(2), signal.flatten(2))
    return out.view(n, c, size[-2], size[-1])


def mirror_project(features: nn.Sequential, x: torch.Tensor, layer_index: int, channel: int,
                   position: tuple[int, int], collision: str = "sum", *,
                   unpool: Unpool | None = None) -> MirrorTrace:  # fmt: skip
    """Project one activation of ``features[layer_index]`` (output) for a single image.

    ``features`` is a plain conv stack (Conv2d / ReLU / ReLU6 / MaxPool2d / LocalResponseNorm),
    e.g. ``vgg16().features``. The activation keeps its value; all others are zero. ``unpool``
    replaces the unpooling step (the course's exercise plugs a student's version in here)."""
    if collision not in COLLISIONS:
        raise ValueError(f"unknown collision rule {collision!r}; valid: {', '.join(COLLISIONS)}")
    if x.shape[0] != 1:
        raise ValueError("the mirror projects one image at a time (it is the slow reference)")
    unpool = unpool or (lambda s, sw, size: unpool_at_switches(s, sw, size, collision))
    modules = list(features)[: layer_index + 1]
    sizes, switches = [], {}
    h = x
    with torch.no_grad():
        for i, m in enumerate(modules):
            sizes.append(h.shape)
            if isinstance(m, nn.MaxPool2d):
                h, switches[i] = F.max_pool2d(h, m.kernel_size, m.stride, m.padding, m.dilation,
                                              ceil_mode=m.ceil_mode, return_indices=True)  # fmt: skip
            elif isinstance(m, _FORWARD):
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
                signal = unpool(signal, switches[i], sizes[i][-2:])
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


def conv_stack(model, layer: str) -> tuple[nn.Sequential, int, dict[int, str]]:
    """The plain conv stack that computes ``layer`` from the input, the layer's index in it, and the
    friendly names of the stack's modules (``{index: "relu3"}``).

    The stack is the model itself (an ``nn.Sequential``) or its ``features`` (torchvision AlexNet /
    VGG, the zoo's conv stacks and twins), which run first on the input."""
    lm = adapt(model)
    path = lm.layers[lm.check_layer(layer)]
    parent, _, idx = path.rpartition(".")
    stack = lm.model.get_submodule(parent) if parent else lm.model
    if parent not in ("", "features") or not idx.isdigit() or not isinstance(stack, nn.Sequential):
        valid = [n for n, p in lm.layers.items() if p.rpartition(".")[0] in ("", "features")]
        raise checks.InputError(f"layer {layer!r} of {lm.name} is not in a plain conv stack the mirror can run; "
                                f"valid layers: {', '.join(valid) or 'none'}")  # fmt: skip
    names = {int(p.rpartition(".")[2]): n for n, p in lm.layers.items()
             if p.rpartition(".")[0] == parent and p.rpartition(".")[2].isdigit()}  # fmt: skip
    return stack, int(idx), names


def mirror_unit(model, x: torch.Tensor, *, layer: str, channel: int, position: tuple[int, int],
                collision: str = "sum", unpool: Unpool | None = None) -> MirrorTrace:  # fmt: skip
    """:func:`mirror_project` for a zoo model (or plain conv stack) and a friendly layer name; the
    trace's ``names`` label each stage with its layer."""
    stack, index, names = conv_stack(model, layer)
    x = checks.images(x, single=True, channels=None)
    trace = mirror_project(stack, x, index, channel, position, collision, unpool=unpool)
    trace.names = names
    return trace


@dataclass
class MirrorCheck:
    """The explicit mirror beside the hook engine for single units of one image.

    ``engine[k]`` and ``mirror[k]`` (3×H×W) project unit ``(layers[k], channels[k], positions[k])``;
    ``relative[k]`` is ``max |mirror − engine| / max |engine|`` (0 where both are identically zero)."""

    layers: list[str]
    channels: list[int]
    positions: list[tuple[int, int]]
    values: list[float]
    engine: torch.Tensor
    mirror: torch.Tensor
    relative: list[float]

    @property
    def worst(self) -> float:
        return max(self.relative)


def mirror_vs_engine(model, x: torch.Tensor, *, layers: Sequence[str], channels: Sequence[int] | None = None,
                     border: int = 0, collision: str = "sum") -> MirrorCheck:  # fmt: skip
    """Project the strongest unit of one channel per layer with the hook engine (deconvnet rule)
    and with the explicit mirror, and measure how far apart they are. ``channels`` defaults to
    each layer's channel with the strongest single (interior) activation."""
    x = checks.images(x, single=True, channels=None)
    layers = list(layers)
    if channels is None:
        acts = capture_detached(model, x, layers)
        channels = [strongest_channels(acts[n][0], 1, by="max", border=border)[0] for n in layers]
    if len(channels) != len(layers):
        raise checks.InputError(f"{len(channels)} channels for {len(layers)} layers; give one per layer")
    engine, mirror, positions, values, relative = [], [], [], [], []
    for layer, c in zip(layers, channels):
        p = unit_projection(model, x, layer=layer, channels=int(c), rule="deconvnet", border=border, ceiling=None)
        pos = tuple(p.positions[0, 0].tolist())
        m = mirror_unit(model, x, layer=layer, channel=int(c), position=pos, collision=collision).image[0]
        e = p.maps[0, 0]
        scale = float(e.abs().max())
        diff = float((m - e).abs().max())
        relative.append(diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")))
        engine.append(e)
        mirror.append(m)
        positions.append(pos)
        values.append(float(p.values[0, 0]))
    return MirrorCheck(layers, [int(c) for c in channels], positions, values, torch.stack(engine),
                       torch.stack(mirror), relative)  # fmt: skip


def mirror_strongest(model, x: torch.Tensor, *, layer: str, border: int = 0) -> MirrorTrace:
    """The mirror's way down (ZF Fig. 1) for the strongest single activation of ``layer`` on one
    image: the channel whose largest interior activation is largest, at that activation (the unit
    :func:`zfhelpers.methods.projection.strongest_units` would pick)."""
    lm = adapt(model)
    x = checks.images(x, single=True, channels=None)
    acts = capture_detached(lm, x, [layer])[layer][0]
    channel = strongest_channels(acts, 1, by="max", border=border, ceiling=lm.spec.ceiling)[0]
    p = unit_projection(lm, x, layer=layer, channels=channel, border=border)
    return mirror_unit(lm, x, layer=layer, channel=channel, position=tuple(p.positions[0, 0].tolist()))
