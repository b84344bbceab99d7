"""The hook engine: one backward pass, three ReLU rules (ZF §2.1; Springenberg et al. 2015 §3.4).

==============  ==================================================  =========================
rule            backward signal through a rectifier                 used by
==============  ==================================================  =========================
``gradient``    ``R_l = 1[f_l > 0] · R_{l+1}``                       saliency (Simonyan 2014)
``deconvnet``   ``R_l = max(R_{l+1}, 0)`` (forward mask ignored)     Zeiler & Fergus 2014
``guided``      ``R_l = 1[f_l > 0] · max(R_{l+1}, 0)``               Springenberg et al. 2015
==============  ==================================================  =========================

Max-pool switches and transposed filters come from autograd: max-pool's backward routes the
signal to the recorded argmax (ZF's "unpooling with switches"), a convolution's input-gradient is
the transposed convolution with the same weights and no bias (ZF's "filtering"). Where 3×3/2 pools
overlap, several windows can share an argmax; autograd **sums** what lands there (the mirror in
:mod:`zfhelpers.deconvnet` follows the same rule). Local response normalisation is skipped on the
way down by default for ``deconvnet`` (ZF §2.1: "we do not use any contrast normalization").

ReLU6 (MobileNetV2) is handled with the mask ``0 < f < 6``. In-place ReLUs are switched to
out-of-place while the rules are active and restored afterwards, even after an exception.
Rectifiers called functionally (``F.relu`` inside a ``forward``) cannot be hooked; they are
counted and reported with an :class:`UnhookedRectifierWarning` (or an error with ``strict=True``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .activations import eval_mode, forward_until, resolve_layer, unwrap

RULES = ("gradient", "deconvnet", "guided")


class UnhookedRectifierWarning(UserWarning):
    """A functional ReLU ran during the pass and kept its ordinary gradient."""


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; valid rules: {', '.join(RULES)}")
    return rule


class _Rectifier(torch.autograd.Function):
    """clamp(x, 0, upper) forward; the chosen rule backward. vmap-able for batched backward."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, rule, upper):
        return x.clamp(0, upper) if upper is not None else x.clamp_min(0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, rule, upper = inputs
        ctx.rule = rule
        ctx.save_for_backward(x)
        ctx.upper = upper

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.rule == "deconvnet":
            return grad.clamp_min(0), None, None
        mask = (x > 0) if ctx.upper is None else (x > 0) & (x < ctx.upper)
        if ctx.rule == "gradient":
            return grad * mask, None, None
        return grad.clamp_min(0) * mask, None, None


class _PassThrough(torch.autograd.Function):
    """Forward: the module's output. Backward: the signal unchanged (used to skip LRN)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, y):
        return y.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad, None


_FUNCTIONAL_RECTIFIERS = {
    torch.relu: "torch.relu",
    torch.relu_: "torch.relu_",
    F.relu: "F.relu",
    F.relu_: "F.relu_",
    F.relu6: "F.relu6",
    F.hardtanh: "F.hardtanh",
    torch.Tensor.relu: "Tensor.relu",
    torch.Tensor.relu_: "Tensor.relu_",
}


class _RectifierSpy(TorchFunctionMode):
    """Counts rectifier calls made outside the hooked modules."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.unhooked: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = _FUNCTIONAL_RECTIFIERS.get(func)
        if name is not None and self.depth == 0:
            self.unhooked[name] = self.unhooked.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def _upper(module: nn.Module) -> float | None:
    return None if isinstance(module, nn.ReLU) else float(module.max_val)


class BackpropRules:
    """Context manager that swaps the backward rule of every ReLU/ReLU6 module of ``model``.

    ``with BackpropRules(model, "guided") as rules: ...`` — inside, any autograd backward through
    ``model`` uses the rule. Hooks, ``inplace`` flags and the function mode are restored on exit.
    ``rules.unhooked`` lists functional rectifiers seen during the body."""

    def __init__(self, model: nn.Module, rule: str, *, skip_lrn: bool | None = None, strict: bool = False):
        self.model = model
        self.rule = check_rule(rule)
        self.skip_lrn = (rule == "deconvnet") if skip_lrn is None else skip_lrn
        self.strict = strict
        self.unhooked: dict[str, int] = {}
        self._handles: list = []
        self._inplace: list[tuple[nn.Module, bool]] = []
        self._spy: _RectifierSpy | None = None

    def __enter__(self) -> BackpropRules:
        try:
            self._spy = _RectifierSpy()
            for module in self.model.modules():
                if isinstance(module, nn.ReLU | nn.ReLU6):
                    self._hook_rectifier(module)
                elif isinstance(module, nn.LocalResponseNorm) and self.skip_lrn:
                    self._handles.append(module.register_forward_hook(lambda m, i, o: _PassThrough.apply(i[0], o)))
            self._spy.__enter__()
        except BaseException:
            self._restore()
            raise
        return self

    def _hook_rectifier(self, module: nn.Module) -> None:
        spy, rule, upper = self._spy, self.rule, _upper(module)
        self._inplace.append((module, module.inplace))
        # In-place would overwrite the input the rule's mask needs (and the caller's tensor).
        module.inplace = False

        def pre(_m, _inputs):
            spy.depth += 1

        def post(_m, inputs, _output):
            spy.depth -= 1
            # Recompute from the untouched input so the module's own ReLU backward is bypassed.
            return _Rectifier.apply(inputs[0], rule, upper)

        self._handles.append(module.register_forward_pre_hook(pre))
        self._handles.append(module.register_forward_hook(post))

    def _restore(self) -> None:
        if self._spy is not None:
            try:
                self._spy.__exit__(None, None, None)
            except (RuntimeError, IndexError):  # mode was never entered
                pass
            self.unhooked = dict(self._spy.unhooked)
            self._spy = None
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for module, flag in self._inplace:
            module.inplace = flag
        self._inplace.clear()

    def __exit__(self, exc_type, exc, tb) -> None:
        self._restore()
        if self.unhooked and exc_type is None:
            msg = (f"rectifiers called functionally kept their plain gradient under rule {self.rule!r}: "
                   + ", ".join(f"{k}×{v}" for k, v in sorted(self.unhooked.items())))  # fmt: skip
            if self.strict:
                raise RuntimeError(msg)
            warnings.warn(msg, UnhookedRectifierWarning, stacklevel=2)


def forward_to(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``model(x)`` only up to ``module`` and return its output (graph attached)."""
    return forward_until(model, {"out": module}, x)["out"]


# --------------------------------------------------------------------------- projections
@dataclass
class Projection:
    """Input-space projections of single activations.

    ``maps[k, n]`` (3×H×W) is the projection of unit ``(channels[k], positions[k, n])`` of image
    ``n``; ``values[k, n]`` its activation (the seed of the backward pass, as in ZF §2.1)."""

    maps: torch.Tensor
    channels: list[int]
    positions: torch.Tensor  # K×N×2 (y, x); empty last dim for fully-connected layers
    values: torch.Tensor
    layer: str
    rule: str


def _resolve(model, layer: str) -> tuple[nn.Module, nn.Module, str]:
    return unwrap(model), resolve_layer(model, layer), layer


def interior(acts: torch.Tensor, border: int) -> torch.Tensor:
    """``acts`` with ``border`` cells at each spatial edge set to -inf (for argmax searches)."""
    if border <= 0:
        return acts
    out = torch.full_like(acts, float("-inf"))
    out[..., border:-border, border:-border] = acts[..., border:-border, border:-border]
    return out


def _positions(acts: torch.Tensor, channels: list[int], position, border: int = 0,
               ceiling: float | None = None) -> torch.Tensor:  # fmt: skip
    """K×N×2 (y, x) per channel and image: argmax of each map, or a fixed / explicit position."""
    n = acts.shape[0]
    if acts.dim() == 2:
        return torch.zeros(len(channels), n, 0, dtype=torch.long, device=acts.device)
    h, w = acts.shape[-2:]
    if isinstance(position, str):
        if position != "max":
            raise ValueError(f"position must be 'max', (y, x) or a K×N×2 tensor, got {position!r}")
        candidates = acts[:, channels]
        if ceiling is not None:  # clipped units pass no gradient through their own rectifier
            candidates = candidates.masked_fill(candidates >= ceiling, float("-inf"))
        flat = interior(candidates, border).flatten(2).argmax(2).T  # K×N
        return torch.stack([flat // w, flat % w], dim=-1)
    pos = torch.as_tensor(position, dtype=torch.long)
    if pos.shape == (2,):
        pos = pos.expand(len(channels), n, 2)
    if pos.shape != (len(channels), n, 2):
        raise ValueError(f"positions must have shape (2,) or ({len(channels)}, {n}, 2), got {tuple(pos.shape)}")
    if not ((pos[..., 0] >= 0) & (pos[..., 0] < h) & (pos[..., 1] >= 0) & (pos[..., 1] < w)).all():
        raise ValueError(f"positions outside the {h}×{w} map")
    return pos.clone()


def _receptive_field(model, net: nn.Module, layer: str):
    from . import receptive

    if hasattr(model, "layers") and hasattr(model, "model"):
        return receptive.for_layer(model, layer)
    if isinstance(net, nn.Sequential) and layer.isdigit():
        try:
            return receptive.receptive_field(list(net)[: int(layer) + 1])
        except TypeError:
            return None
    return None


def _pack(boxes: dict[tuple[int, int], tuple[int, int, int, int]], units: list[tuple[int, int]]):
    """First-fit: put units of the same image into one backward slot only when their receptive
    fields are disjoint. The rectified backward signal of a unit never leaves its receptive field,
    so units in one slot cannot interact and each map is recovered exactly by masking its box."""
    slots: list[dict[int, list]] = []
    for k, n in units:
        y0, y1, x0, x1 = boxes[k, n]
        for slot in slots:
            taken = slot.setdefault(n, [])
            if all(y1 <= a0 or b1 <= y0 or x1 <= c0 or d1 <= x0 for a0, b1, c0, d1 in (t[1] for t in taken)):
                taken.append(((k, n), boxes[k, n]))
                break
        else:
            slots.append({n: [((k, n), boxes[k, n])]})
    return slots


@dataclass
class RecordedForward:
    """The forward half of :func:`project`: ``model`` run to ``layer`` under ``rule`` with the graph
    kept, so that many units of the same images can be projected without repeating the pass (the
    notebook explorers project one channel per slider move). The rule lives in the graph
    (:class:`_Rectifier` nodes), so the backward passes need no hooks."""

    model: object
    net: nn.Module
    x: torch.Tensor  # the input copy the projections are taken against (requires grad)
    acts: torch.Tensor  # the layer's output, graph attached
    layer: str
    rule: str

    def project(self, channels, position="max", *, batch_size: int = 16, border: int = 0, pack: bool = True,
                ceiling: float | None = None, keep_graph: bool = True) -> Projection:  # fmt: skip
        """Project units of this pass's layer (arguments as in :func:`project`). ``keep_graph=False``
        frees the graph after the last backward pass (then this object cannot project again)."""
        return _project_units(self, channels, position, batch_size, border, pack, ceiling, keep_graph)


def record_forward(model, x: torch.Tensor, layer: str, rule: str = "deconvnet", *,
                   skip_lrn: bool | None = None) -> RecordedForward:  # fmt: skip
    """Run ``model`` on ``x`` up to ``layer`` with the backward ``rule`` in place (see :func:`project`)."""
    net, module, layer = _resolve(model, layer)
    check_rule(rule)
    if x.dim() != 4:
        raise ValueError(f"x must be N×C×H×W, got shape {tuple(x.shape)}")
    with eval_mode(net), BackpropRules(net, rule, skip_lrn=skip_lrn), torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        acts = forward_to(net, module, xg)
    return RecordedForward(model, net, xg, acts, layer, rule)


def project(
    model,
    x: torch.Tensor,
    layer: str,
    channels,
    position="max",
    rule: str = "deconvnet",
    *,
    batch_size: int = 16,
    skip_lrn: bool | None = None,
    border: int = 0,
    pack: bool = True,
    ceiling: float | None = None,
) -> Projection:
    """Project single activations of ``layer`` to pixel space (ZF §2.1), batched.

    All other activations of the layer are zeroed; the chosen one keeps its value. One forward
    pass for all images (stopped at ``layer``), then vmapped backward passes of ``batch_size``
    seeds each. With ``pack`` (and a plain conv stack whose receptive fields are known), units
    whose receptive fields do not overlap share one backward seed — exact, see :func:`_pack`.
    ``channels`` is an int or a list; ``border`` keeps ``position="max"`` that many cells away
    from the map's edges (zero-padding makes some trained nets fire hardest on the border);
    ``ceiling`` (e.g. 6 for ReLU6) makes ``"max"`` skip clipped units, whose gradient and guided
    projections are zero by definition. To project many units of the same images one after the
    other, call :func:`record_forward` once and then its ``project`` method."""
    forward = record_forward(model, x, layer, rule, skip_lrn=skip_lrn)
    return forward.project(channels, position, batch_size=batch_size, border=border, pack=pack, ceiling=ceiling,
                           keep_graph=False)  # fmt: skip


def _project_units(fwd: RecordedForward, channels, position, batch_size: int, border: int, pack: bool,
                   ceiling: float | None, keep_graph: bool) -> Projection:  # fmt: skip
    """The backward half of :func:`project`: seed each chosen unit with its value, vmapped."""
    channels = [int(channels)] if isinstance(channels, int) else [int(c) for c in channels]
    x, acts, layer = fwd.x, fwd.acts, fwd.layer
    n_img, height, width = x.shape[0], x.shape[2], x.shape[3]
    bad = [c for c in channels if not 0 <= c < acts.shape[1]]
    if bad:
        raise ValueError(f"channels {bad} out of range for {layer}; valid: 0..{acts.shape[1] - 1}")
    pos = _positions(acts.detach(), channels, position, border, ceiling)
    n_idx = torch.arange(n_img, device=acts.device)
    values = torch.stack([acts.detach()[(n_idx, c, *pos[k].unbind(-1))] for k, c in enumerate(channels)])
    live = [(k, n) for k in range(len(channels)) for n in range(n_img) if values[k, n] != 0]
    rf = _receptive_field(fwd.model, fwd.net, layer) if pack and acts.dim() == 4 else None
    if rf is None:  # one seed per channel, all images at once
        slots = [{n: [((k, n), None)] for kk, n in live if kk == k} for k in range(len(channels))]
        slots = [s for s in slots if s]
    else:
        boxes = {(k, n): rf.box(*pos[k, n].tolist(), height, width) for k, n in live}
        slots = _pack(boxes, live)
    maps = x.new_zeros(len(channels), n_img, *x.shape[1:]).detach()
    for start in range(0, len(slots), batch_size):
        chunk = slots[start : start + batch_size]
        seeds = torch.zeros(len(chunk), *acts.shape, dtype=acts.dtype, device=acts.device)
        for s, slot in enumerate(chunk):
            for n, members in slot.items():
                for (k, _), _box in members:
                    seeds[(s, n, channels[k], *pos[k, n].tolist())] = values[k, n]
        last = start + batch_size >= len(slots)
        (g,) = torch.autograd.grad(acts, x, seeds, is_grads_batched=True, retain_graph=keep_graph or not last)
        for s, slot in enumerate(chunk):
            for n, members in slot.items():
                for (k, _), box in members:
                    if box is None:
                        maps[k, n] = g[s, n]
                    else:
                        y0, y1, x0, x1 = box
                        maps[k, n, :, y0:y1, x0:x1] = g[s, n, :, y0:y1, x0:x1]
    return Projection(maps, channels, pos, values, layer, fwd.rule)


def attribute(model, x: torch.Tensor, target, rule: str = "gradient", *, layer: str | None = None) -> torch.Tensor:
    """Backpropagate a class score (``target``: int or one per image) — or the sum of a whole
    layer's channel ``target`` when ``layer`` is given — to the input under ``rule``."""
    check_rule(rule)
    net = unwrap(model)
    with eval_mode(net), BackpropRules(net, rule), torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        out = net(xg) if layer is None else forward_to(net, resolve_layer(model, layer), xg)
        t = torch.as_tensor(target).expand(x.shape[0])
        score = out[torch.arange(x.shape[0]), t]
        (g,) = torch.autograd.grad(score.sum(), xg)
    return g
