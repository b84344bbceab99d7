"""Receptive fields of units in plain conv stacks, from the layer geometry.

For a chain of convolutions and poolings, unit ``(y, x)`` of the last layer sees the input rows
``start + y * jump … start + y * jump + size - 1`` (likewise for columns), where the recurrence
over layers with kernel k, stride s, padding p, dilation d is::

    size  += (d * (k - 1)) * jump
    start -= p * jump
    jump  *= s

ReLU, LRN, batch norm and dropout do not change it. The box may extend past the image (padding);
:func:`unit_box` clips it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

_NEUTRAL = (nn.ReLU, nn.ReLU6, nn.LocalResponseNorm, nn.BatchNorm2d, nn.Dropout, nn.Identity)


@dataclass(frozen=True)
class ReceptiveField:
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]

    def box(self, y: int, x: int, height: int | None = None, width: int | None = None) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1), end-exclusive, of unit (y, x); clipped when the image size is given."""
        y0 = self.start[0] + y * self.jump[0]
        x0 = self.start[1] + x * self.jump[1]
        y1, x1 = y0 + self.size[0], x0 + self.size[1]
        if height is not None:
            y0, y1 = max(y0, 0), min(y1, height)
        if width is not None:
            x0, x1 = max(x0, 0), min(x1, width)
        return y0, y1, x0, x1


def pair(v) -> tuple[int, int]:
    """(height, width) of a module's int-or-pair geometry argument."""
    return (v, v) if isinstance(v, int) else tuple(v)


def receptive_field(modules: Sequence[nn.Module]) -> ReceptiveField:
    """Receptive field of the output of ``modules`` (applied in order) w.r.t. their input.

    Raises TypeError for modules whose geometry is unknown (residual blocks, adaptive pools)."""
    size, jump, start = [1, 1], [1, 1], [0, 0]
    for m in modules:
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            k, s, p = pair(m.kernel_size), pair(m.stride), pair(m.padding)
            d = pair(getattr(m, "dilation", 1))
            for a in range(2):
                size[a] += d[a] * (k[a] - 1) * jump[a]
                start[a] -= p[a] * jump[a]
                jump[a] *= s[a]
        elif not isinstance(m, _NEUTRAL):
            raise TypeError(f"no receptive-field rule for {type(m).__name__}")
    return ReceptiveField(tuple(size), tuple(jump), tuple(start))


def stack_for_layer(loaded, layer: str) -> list[nn.Module] | None:
    """The modules of a plain ``features`` stack up to and including ``layer``, else None."""
    path = loaded.layers[loaded.check_layer(layer)]
    head, _, idx = path.partition(".")
    if head != "features" or not idx.isdigit() or not isinstance(loaded.model.features, nn.Sequential):
        return None
    return list(loaded.model.features)[: int(idx) + 1]


def for_layer(loaded, layer: str) -> ReceptiveField | None:
    """Receptive field of a zoo layer that sits in a plain ``features`` stack, else None."""
    stack = stack_for_layer(loaded, layer)
    if stack is None:
        return None
    try:
        return receptive_field(stack)
    except TypeError:
        return None


def _out_len(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:  # PyTorch: the last window must start inside
        out -= 1
    return out


def exact_box(modules: Sequence[nn.Module], in_hw: tuple[int, int], y: int, x: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the input pixels connected to unit (y, x), for an input of ``in_hw``.

    Unlike :meth:`ReceptiveField.box`, positions that fall into zero padding at an intermediate
    layer are dropped, so near the borders the box can be smaller than the nominal one."""
    geo, sizes = [], [tuple(in_hw)]
    for m in modules:
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            k, s, p = pair(m.kernel_size), pair(m.stride), pair(m.padding)
            d = pair(getattr(m, "dilation", 1))
            ceil = bool(getattr(m, "ceil_mode", False))
            geo.append((k, s, p, d))
            sizes.append(tuple(_out_len(sizes[-1][a], k[a], s[a], p[a], d[a], ceil) for a in range(2)))
        elif not isinstance(m, _NEUTRAL):
            raise TypeError(f"no receptive-field rule for {type(m).__name__}")
    lo, hi = [y, x], [y, x]
    for (k, s, p, d), size in zip(reversed(geo), reversed(sizes[:-1])):
        for a in range(2):
            lo[a] = max(lo[a] * s[a] - p[a], 0)
            hi[a] = min(hi[a] * s[a] - p[a] + d[a] * (k[a] - 1), size[a] - 1)
    return lo[0], hi[0] + 1, lo[1], hi[1] + 1
