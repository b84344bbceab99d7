"""Projections of single units by a backward pass confined to their receptive fields (ZF §2.1).

The signal sent down from one activation is non-zero only inside the unit's *cone*: at every layer
below it, the positions that feed the unit. For a plain stack of convolutions, max-poolings and
rectifiers (AlexNet, ZF, VGG) this module runs the backward pass of a rule
(:mod:`zfhelpers.methods.rules`) by hand on that cone, one window per unit and layer, instead of
through the whole image. A unit of VGG16's ``relu4_3`` (receptive field 92 px) on a 160×200 photo
then costs a seventh of a full backward pass, and once the forward pass is kept (a slider move in
the explorers) nothing else is run.

Each step is the transpose of one forward layer, exactly as autograd computes it:

* convolution: the transposed convolution with the same weights and no bias (ZF's "filtering")
  of the unit's window; of its output only the part inside the map is kept (the rest is zero
  padding of the forward pass);
* max-pooling: each value goes to its window's argmax, values landing on one position summed
  (ZF's "unpooling with switches"). Overlapping pools (AlexNet's, ZF's) record the switches in the
  forward pass; pools over non-overlapping tiles (VGG's) keep their input, and each unit's window
  reads its switches from it, picked as PyTorch picks them (the first maximum, the last NaN) —
  their forward pass pools by strided maxima (:func:`tile_max`), where PyTorch's CPU kernel for
  NCHW maps takes several times longer;
* rectifier: the rule's formula on the window, with the forward pass's mask where the rule uses one;
* batch norm in eval mode: its per-channel scale; dropout, identity, and local response
  normalisation where the rule skips it (ZF §2.1): nothing.

Windows. A window of h output rows starting at row r of a layer with kernel k, stride s, padding
p and dilation d reads input rows ``r·s − p … r·s − p + (h − 1)·s + d·(k − 1)``; the window below
is that span clipped to the map, of one common size for all units of a batch (the span's length,
or the map's height if smaller) and shifted to stay inside the map, so that a batch of units runs
as one tensor op. The result equals the full backward pass up to float rounding (summation order);
``tests/test_projection_cone.py`` checks it against autograd on every rule, at corners and edges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..models.capture import eval_mode
from .incremental import batch_norm_affine
from .receptive import pair, stack_for_layer

__all__ = ["ConeBackward"]


class _Reached(Exception):
    """Raised by the hook that stops the model where its features stack starts."""


def _kind(m: nn.Module, skip_lrn: bool) -> str | None:
    """How the backward pass crosses module ``m``, or None where this engine has no rule for it."""
    if type(m) is nn.Conv2d:  # exact types: a subclass may compute differently
        return None if isinstance(m.padding, str) or m.padding_mode != "zeros" else "conv"
    if type(m) is nn.MaxPool2d:
        if m.return_indices:
            return None
        tiles = pair(m.kernel_size) == pair(m.stride) and pair(m.padding) == (0, 0) and pair(m.dilation) == (1, 1)
        return "tiles" if tiles else "pool"
    if type(m) in (nn.ReLU, nn.ReLU6):
        return "rectifier"
    if type(m) is nn.BatchNorm2d:
        return "scale" if m.running_var is not None else None
    if type(m) in (nn.Dropout, nn.Dropout2d, nn.Identity) or (type(m) is nn.LocalResponseNorm and skip_lrn):
        return "pass"
    return None


def _windows(full: torch.Tensor, n: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, h: int, w: int):
    """S×C×h×w: window s of image ``n[s]`` of ``full`` (N×C×H×W), starting at (rows[s], cols[s]).
    Sliced unit by unit (a view for one unit): block copies, where one gather of every element
    by index is several times slower for the large windows of deep units."""
    if len(n) == 1:
        i, r, c = int(n[0]), int(rows[0]), int(cols[0])
        return full[i : i + 1, :, r : r + h, c : c + w]
    return torch.stack([full[i, :, r : r + h, c : c + w] for i, r, c in zip(n.tolist(), rows.tolist(), cols.tolist())])


def tile_input(h: torch.Tensor, kh: int, kw: int, ceil_mode: bool) -> torch.Tensor:
    """``h`` as tiles see it: with ``ceil_mode`` a partial last tile is kept (PyTorch's rule when
    the windows do not overlap and nothing is padded), so the map is padded with -inf. The padding
    never wins: a tile's first element is always real, and a later one is taken only if strictly
    larger, so a partial tile's maximum and argmax stay on its real elements."""
    pad_h, pad_w = (-h.shape[-2]) % kh if ceil_mode else 0, (-h.shape[-1]) % kw if ceil_mode else 0
    return F.pad(h, (0, pad_w, 0, pad_h), value=float("-inf")) if pad_h or pad_w else h


def tile_max(h: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Max-pooling over non-overlapping kh×kw tiles (the remainder rows/columns dropped, as
    ``nn.MaxPool2d(k)`` does): the same values, NaN included, by element-wise maxima of strided
    views — several times faster than PyTorch's CPU kernel for NCHW maps, which reads the input
    window by window."""
    oh, ow = h.shape[-2] // kh, h.shape[-1] // kw
    rows = h[..., 0 : oh * kh : kh, : ow * kw]
    for dy in range(1, kh):
        rows = torch.maximum(rows, h[..., dy : oh * kh : kh, : ow * kw])
    out = rows[..., 0::kw]
    for dx in range(1, kw):
        out = torch.maximum(out, rows[..., dx::kw])
    return out


def tile_switches(window: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Each kh×kw tile's argmax in ``window`` (a pool input cut at tile boundaries) as its row-major
    offset dy·kw + dx — the first maximum, or the last NaN, as PyTorch's max-pooling picks it."""
    best = window[..., 0::kh, 0::kw]
    code = torch.zeros(best.shape, dtype=torch.uint8, device=best.device)
    for idx in range(1, kh * kw):
        v = window[..., idx // kw :: kh, idx % kw :: kw]
        take = (v > best) | v.isnan()
        best, code = torch.where(take, v, best), code.masked_fill(take, idx)
    return code


def _place(lo: torch.Tensor, span: int, size_of_map: int) -> tuple[torch.Tensor, int]:
    """Start and common length of the windows that hold rows ``lo … lo + span − 1`` clipped to a
    map of ``size_of_map`` rows: the span's length (or the map's), shifted to stay inside the map."""
    size = min(span, size_of_map)
    return lo.clamp(min=0).clamp(max=size_of_map - size), size


def _shift(t: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """S×C×h×w windows of ``t`` (S×C×H×W) starting at (top[s], left[s]) in t's own coordinates,
    zero where they leave ``t``."""
    span_h, span_w = t.shape[-2:]
    if h == span_h and w == span_w and not top.any() and not left.any():
        return t
    out = t.new_zeros(*t.shape[:2], h, w)
    for s, (y, x) in enumerate(zip(top.tolist(), left.tolist())):  # the part of each window inside t
        y0, y1, x0, x1 = max(y, 0), min(y + h, span_h), max(x, 0), min(x + w, span_w)
        if y0 < y1 and x0 < x1:
            out[s, :, y0 - y : y1 - y, x0 - x : x1 - x] = t[s, :, y0:y1, x0:x1]
    return out


class ConeBackward:
    """One forward pass of ``inputs`` up to ``layer`` that records what the rule's backward pass
    needs (pooling switches; for guided and gradient the rectifiers' outputs, from which each
    window's mask is read), then cone-confined backward passes of single units.

    Build with :meth:`build`, which returns None where the model or layer is outside this engine
    (not a plain ``features`` stack, or a module it has no rule for): the caller then falls back
    to autograd (:class:`zfhelpers.methods.projection.Projector`)."""

    def __init__(self, lm, layer: str, stack: list[nn.Module], kinds: list[str], rule: str):
        self.lm, self.layer, self.stack, self.kinds, self.rule = lm, layer, stack, kinds, rule
        self.records: list[torch.Tensor | None] = [None] * len(stack)
        self.in_hw: list[tuple[int, int]] = [(0, 0)] * len(stack)
        self.acts: torch.Tensor | None = None

    @classmethod
    def build(cls, lm, layer: str, rule: str, skip_lrn: bool | None = None) -> ConeBackward | None:
        stack = stack_for_layer(lm, layer)
        if stack is None:
            return None
        skip_lrn = (rule == "deconvnet") if skip_lrn is None else skip_lrn
        kinds = [_kind(m, skip_lrn) for m in stack]
        if None in kinds:
            return None
        return cls(lm, layer, stack, kinds, rule)

    # -- the forward pass
    def forward(self, x: torch.Tensor, channels: list[int] | None = None) -> torch.Tensor:
        """The layer's activations for ``x`` (N×C×H×W), keeping what the backward passes need.

        The model runs until its ``features`` stack starts (whatever its ``forward`` does to the
        input first), then the stack runs module by module. An overlapping max-pooling is asked for
        its argmax once; a pooling over non-overlapping tiles (VGG's) keeps its input instead, and
        :meth:`project` reads the switches of each unit's window from it, as PyTorch picks them.
        For guided and gradient the rectifiers' outputs are kept (their masks, read per window).
        ``channels``: compute only these maps of the layer's last convolution (a one-off
        projection needs no others; the other channels of the result are NaN)."""
        last = max((i for i, k in enumerate(self.kinds) if k == "conv"), default=-1)
        conv = self.stack[last] if last >= 0 else None
        restrict = (channels is not None and conv is not None and conv.groups == 1
                    and all(k in ("rectifier", "pass") for k in self.kinds[last + 1 :]))  # fmt: skip
        if restrict:  # the same error as for all channels, before any work
            channels = checks.indices(channels, conv.out_channels, name="channels")
        with eval_mode(self.lm.model), torch.no_grad():
            h = self._stack_input(x)
            for i, (m, kind) in enumerate(zip(self.stack, self.kinds)):
                self.in_hw[i] = tuple(h.shape[-2:])
                if kind == "tiles":  # the input kept: _step reads each window's switches from it
                    self.records[i] = tile_input(h, *pair(m.kernel_size), m.ceil_mode)
                    h = tile_max(self.records[i], *pair(m.kernel_size))
                elif kind == "pool":  # the switches, from the same call
                    h, self.records[i] = F.max_pool2d(h, m.kernel_size, m.stride, m.padding, m.dilation,
                                                      m.ceil_mode, return_indices=True)  # fmt: skip
                elif restrict and i == last:
                    bias = conv.bias[channels] if conv.bias is not None else None
                    h = F.conv2d(h, conv.weight[channels], bias, conv.stride, conv.padding, conv.dilation)
                else:
                    h = m(h.clone() if i == 0 and getattr(m, "inplace", False) else h)  # never overwrite x
                if kind == "rectifier" and self.rule != "deconvnet":
                    # the output itself, its mask read per window by _step (later modules never
                    # write to it, except in-place rectifiers, which leave that mask unchanged)
                    self.records[i] = h
        if restrict:
            full = h.new_full((h.shape[0], conv.out_channels, *h.shape[-2:]), float("nan"))
            full[:, channels] = h
            h = full
            for i in range(last + 1, len(self.stack)):
                if self.records[i] is not None:  # other channels' masks are never read (seeds are one-hot)
                    record = self.records[i].new_zeros(full.shape)
                    record[:, channels] = self.records[i]
                    self.records[i] = record
        self.acts = h
        return h

    def _stack_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the model's ``features`` stack receives when the model runs on ``x`` (the caller
        holds the model in eval mode)."""
        seen: list[torch.Tensor] = []

        def grab(_m, inputs):
            seen.append(inputs[0].detach())
            raise _Reached

        handle = self.stack[0].register_forward_pre_hook(grab)
        try:
            self.lm.model(x)
        except _Reached:
            pass
        finally:
            handle.remove()
        if not seen:
            raise RuntimeError(f"the forward pass of {type(self.lm.model).__name__} never reached its features stack")
        return seen[0]

    # -- cone-confined backward passes
    @torch.no_grad()
    def project(self, n: torch.Tensor, c: torch.Tensor, y: torch.Tensor, x: torch.Tensor, value: torch.Tensor):
        """Backward passes seeded with ``value[s]`` at unit (c[s], y[s], x[s]) of image n[s], all
        other activations of the layer zero: S×3×h×w windows of input space and their top-left
        corners (rows, cols). Outside its window each unit's projection is zero."""
        if self.acts is None:
            raise RuntimeError("run forward() first")
        s = torch.arange(len(n), device=n.device)
        g = self.acts.new_zeros(len(n), self.acts.shape[1], 1, 1)
        g[s, c, 0, 0] = value.to(g.dtype)
        rows, cols = y.clone(), x.clone()
        for i in reversed(range(len(self.stack))):
            g, rows, cols = self._step(i, g, rows, cols, n, c)
            c = None if self.kinds[i] == "conv" else c  # the signal's channel, until a layer mixes them
        return g, rows, cols

    def _step(self, i: int, g: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, n: torch.Tensor,
              channel: torch.Tensor | None = None):  # fmt: skip
        m, kind = self.stack[i], self.kinds[i]
        if kind == "rectifier":
            if self.rule == "deconvnet":  # ZF: the rectified signal, the forward mask ignored
                return g.clamp_min(0), rows, cols
            out = _windows(self.records[i], n, rows, cols, *g.shape[-2:])  # the forward output
            mask = (out > 0) if type(m) is nn.ReLU else (out > 0) & (out < float(m.max_val))
            return (g if self.rule == "gradient" else g.clamp_min(0)) * mask, rows, cols
        if kind == "scale":
            return g * batch_norm_affine(m)[0].view(1, -1, 1, 1), rows, cols
        if kind == "pass":
            return g, rows, cols
        (kh, kw), (sh, sw), (ph, pw) = pair(m.kernel_size), pair(m.stride), pair(m.padding)
        dh, dw = pair(m.dilation)
        (in_h, in_w), (h, w) = self.in_hw[i], g.shape[-2:]
        span_h, span_w = (h - 1) * sh + dh * (kh - 1) + 1, (w - 1) * sw + dw * (kw - 1) + 1
        lo_r, lo_c = rows * sh - ph, cols * sw - pw  # the span's first input row and column
        top, size_h = _place(lo_r, span_h, in_h)
        left, size_w = _place(lo_c, span_w, in_w)
        if kind == "conv":
            if channel is not None and (h, w) == (1, 1) and m.groups == 1 and pair(m.dilation) == (1, 1):
                # one value in one channel: its transposed convolution is that channel's kernel, scaled
                s = torch.arange(len(channel), device=channel.device)
                t = g[s, channel, 0, 0].view(-1, 1, 1, 1) * m.weight.detach()[channel]
            else:
                t = self._filter_down(m, g)  # the span
            return _shift(t, top - lo_r, left - lo_c, size_h, size_w), top, left
        if kind == "tiles":  # every value to its tile's argmax (tiles do not overlap: nothing sums)
            code = tile_switches(_windows(self.records[i], n, lo_r, lo_c, span_h, span_w), kh, kw)
            out = g.new_zeros(*g.shape[:2], span_h, span_w)
            for idx in range(kh * kw):
                out[..., idx // kw :: kh, idx % kw :: kw] = g * (code == idx)
            return _shift(out, top - lo_r, left - lo_c, size_h, size_w), top, left  # cut to the map
        # pool: every value to its switch, in the window's own coordinates
        switch = _windows(self.records[i], n, rows, cols, h, w)
        local = (switch // in_w - top[:, None, None, None]) * size_w + (switch % in_w - left[:, None, None, None])
        out = g.new_zeros(*g.shape[:2], size_h * size_w).scatter_add_(2, local.flatten(2), g.flatten(2))
        return out.view(*g.shape[:2], size_h, size_w), top, left

    @staticmethod
    def _filter_down(m: nn.Conv2d, g: torch.Tensor) -> torch.Tensor:
        """The transposed convolution of ``g`` with ``m``'s weights, unpadded (the whole span)."""
        return F.conv_transpose2d(g, m.weight, None, m.stride, 0, 0, m.groups, m.dilation)
