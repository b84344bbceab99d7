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
* max-pooling: each value goes to its window's recorded argmax, values landing on one position
  summed (ZF's "unpooling with switches"; the switches are recorded by the forward pass);
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
        return None if m.return_indices else "pool"
    if type(m) in (nn.ReLU, nn.ReLU6):
        return "rectifier"
    if type(m) is nn.BatchNorm2d:
        return "scale" if m.running_var is not None else None
    if type(m) in (nn.Dropout, nn.Dropout2d, nn.Identity) or (type(m) is nn.LocalResponseNorm and skip_lrn):
        return "pass"
    return None


def _windows(full: torch.Tensor, n: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, h: int, w: int):
    """S×C×h×w: window s of image ``n[s]`` of ``full`` (N×C×H×W), starting at (rows[s], cols[s])."""
    r = (rows[:, None] + torch.arange(h, device=rows.device))[:, :, None]
    c = (cols[:, None] + torch.arange(w, device=cols.device))[:, None, :]
    return full[n[:, None, None], :, r, c].permute(0, 3, 1, 2)  # advanced indices first: S×h×w×C


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
    r = top[:, None] + torch.arange(h, device=top.device)
    c = left[:, None] + torch.arange(w, device=left.device)
    inside = ((r >= 0) & (r < span_h))[:, None, :, None] & ((c >= 0) & (c < span_w))[:, None, None, :]
    s = torch.arange(t.shape[0], device=t.device)
    out = t[s[:, None, None], :, r.clamp(0, span_h - 1)[:, :, None], c.clamp(0, span_w - 1)[:, None, :]]
    return out.permute(0, 3, 1, 2) * inside


class ConeBackward:
    """One forward pass of ``inputs`` up to ``layer`` that records what the rule's backward pass
    needs (pooling switches, rectifier masks), then cone-confined backward passes of single units.

    Build with :meth:`build`, which returns None where the model or layer is outside this engine
    (not a plain ``features`` stack, or a module it has no rule for): the caller then falls back
    to autograd (:class:`zfhelpers.methods.projection.Projector`)."""

    def __init__(self, lm, layer: str, stack: list[nn.Module], kinds: list[str], rule: str):
        self.lm, self.layer, self.stack, self.kinds, self.rule = lm, layer, stack, kinds, rule
        self.records: list[torch.Tensor | None] = [None] * len(stack)
        self.in_hw: list[tuple[int, int]] = [(0, 0)] * len(stack)
        self.acts: torch.Tensor | None = None
        self._flipped: dict[int, torch.Tensor] = {}

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
        """The layer's activations for ``x`` (N×C×H×W), recording switches and masks on the way.

        The model runs until its ``features`` stack starts (whatever its ``forward`` does to the
        input first), then the stack runs module by module, each max-pooling asked for its argmax
        once. ``channels``: compute only these maps of the layer's last convolution (a one-off
        projection needs no others; the other channels of the result are NaN)."""
        h = self._stack_input(x)
        last = max((i for i, k in enumerate(self.kinds) if k == "conv"), default=-1)
        conv = self.stack[last] if last >= 0 else None
        restrict = (channels is not None and conv is not None and conv.groups == 1
                    and all(k in ("rectifier", "pass") for k in self.kinds[last + 1 :]))  # fmt: skip
        if restrict:  # the same error as for all channels, before any work
            channels = checks.indices(channels, conv.out_channels, name="channels")
        with eval_mode(self.lm.model), torch.no_grad():
            for i, (m, kind) in enumerate(zip(self.stack, self.kinds)):
                self.in_hw[i] = tuple(h.shape[-2:])
                if kind == "pool":  # the switches, from the same call
                    h, self.records[i] = F.max_pool2d(h, m.kernel_size, m.stride, m.padding, m.dilation,
                                                      m.ceil_mode, return_indices=True)  # fmt: skip
                elif restrict and i == last:
                    bias = conv.bias[channels] if conv.bias is not None else None
                    h = F.conv2d(h, conv.weight[channels], bias, conv.stride, conv.padding, conv.dilation)
                else:
                    h = m(h.clone() if i == 0 and getattr(m, "inplace", False) else h)  # never overwrite x
                if kind == "rectifier" and self.rule != "deconvnet":
                    upper = float(m.max_val) if isinstance(m, nn.ReLU6) else None
                    self.records[i] = (h > 0) if upper is None else (h > 0) & (h < upper)
        if restrict:
            full = h.new_full((h.shape[0], conv.out_channels, *h.shape[-2:]), float("nan"))
            full[:, channels] = h
            h = full
            for i in range(last + 1, len(self.stack)):
                if self.records[i] is not None:  # masks of the other channels: never read (seeds are one-hot)
                    mask = self.records[i].new_zeros(full.shape)
                    mask[:, channels] = self.records[i]
                    self.records[i] = mask
        self.acts = h
        return h

    def _stack_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the model's ``features`` stack receives when the model runs on ``x``."""
        seen: list[torch.Tensor] = []

        def grab(_m, inputs):
            seen.append(inputs[0].detach())
            raise _Reached

        handle = self.stack[0].register_forward_pre_hook(grab)
        try:
            with eval_mode(self.lm.model), torch.no_grad():
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
            mask = _windows(self.records[i], n, rows, cols, *g.shape[-2:])
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
                t = self._filter_down(i, m, g)  # the span
            return _shift(t, top - lo_r, left - lo_c, size_h, size_w), top, left
        # pool: every value to its switch, in the window's own coordinates
        switch = _windows(self.records[i], n, rows, cols, h, w)
        local = (switch // in_w - top[:, None, None, None]) * size_w + (switch % in_w - left[:, None, None, None])
        out = g.new_zeros(*g.shape[:2], size_h * size_w).scatter_add_(2, local.flatten(2), g.flatten(2))
        return out.view(*g.shape[:2], size_h, size_w), top, left

    def _filter_down(self, i: int, m: nn.Conv2d, g: torch.Tensor) -> torch.Tensor:
        """The transposed convolution of ``g`` with ``m``'s weights, unpadded (the whole span). With
        stride 1 it runs as a forward convolution with the kernel transposed and flipped, fully
        padded: the same sums, on oneDNN's fast path, where PyTorch's ``conv_transpose2d`` takes a
        slow kernel for small maps (a unit's window at deep layers)."""
        if pair(m.stride) != (1, 1):
            return F.conv_transpose2d(g, m.weight, None, m.stride, 0, 0, m.groups, m.dilation)
        if i not in self._flipped:
            w = m.weight.detach()
            out, per_group, kh, kw = w.shape
            grouped = w.view(m.groups, out // m.groups, per_group, kh, kw).transpose(1, 2)
            self._flipped[i] = grouped.reshape(m.groups * per_group, out // m.groups, kh, kw).flip(-2, -1).contiguous()
        (kh, kw), (dh, dw) = pair(m.kernel_size), pair(m.dilation)
        return F.conv2d(g, self._flipped[i], None, 1, (dh * (kh - 1), dw * (kw - 1)), m.dilation, m.groups)
