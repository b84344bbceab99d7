"""Projections to pixel space under a backward rule (:mod:`zfhelpers.methods.rules`).

Three scopes, one signature ``fn(model, inputs, *, …) -> result``:

* :func:`unit_projection` — **one activation** of ``layer`` (ZF §2.1): all other activations of
  the layer zeroed, the chosen one seeded with its own value; batched over channels × images;
* :func:`channel_projection` — the summed activation of whole feature maps of ``layer``;
* :func:`class_projection` — a class score (``target``); with ``rule="guided"`` this is guided
  backpropagation (Springenberg et al. 2015 §3.4), with ``"gradient"`` a saliency map.

:class:`Projector` keeps one image batch's forward pass (stopped at the layer) so that a slider
that changes only the channel or the position re-uses it."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .. import checks
from ..models.capture import capture, eval_mode
from ..models.zoo import adapt
from .receptive import for_layer
from .rules import BackpropRules, check_rule
from .targets import resolve_channels, resolve_targets


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


def interior(acts: torch.Tensor, border: int) -> torch.Tensor:
    """``acts`` with ``border`` cells at each spatial edge set to -inf (for argmax searches)."""
    if border <= 0:
        return acts
    out = torch.full_like(acts, float("-inf"))
    out[..., border:-border, border:-border] = acts[..., border:-border, border:-border]
    return out


def unit_positions(acts: torch.Tensor, channels: list[int], position="max", border: int = 0,
                   ceiling: float | None = None) -> torch.Tensor:  # fmt: skip
    """K×N×2 (y, x) per channel and image: argmax of each map (``"max"``; units at a ReLU6
    ``ceiling`` skipped, since a clipped unit passes no gradient), or a fixed / explicit position."""
    n = acts.shape[0]
    if acts.dim() == 2:
        return torch.zeros(len(channels), n, 0, dtype=torch.long, device=acts.device)
    h, w = acts.shape[-2:]
    if isinstance(position, str):
        checks.choice(position, ["max"], name="position (or give (y, x) or a K×N×2 tensor)")
        candidates = acts[:, channels]
        if ceiling is not None:
            candidates = candidates.masked_fill(candidates >= ceiling, float("-inf"))
        flat = interior(candidates, border).flatten(2).argmax(2).T  # K×N
        return torch.stack([flat // w, flat % w], dim=-1)
    pos = torch.as_tensor(position)
    if pos.is_floating_point() or pos.dtype == torch.bool:
        raise checks.InputError(f"positions must be integers (y, x), got {position!r}")
    pos = pos.long().to(acts.device)
    if pos.shape == (2,):
        pos = pos.expand(len(channels), n, 2)
    if pos.shape != (len(channels), n, 2):
        raise checks.InputError(f"positions must have shape (2,) or ({len(channels)}, {n}, 2), got {tuple(pos.shape)}")
    if not ((pos[..., 0] >= 0) & (pos[..., 0] < h) & (pos[..., 1] >= 0) & (pos[..., 1] < w)).all():
        raise checks.InputError(f"positions outside the {h}×{w} map of this layer")
    return pos.clone()


def pack_units(boxes: dict[tuple[int, int], tuple[int, int, int, int]], units: list[tuple[int, int]]):
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


class Projector:
    """One forward pass of ``inputs`` to ``layer`` under ``rule``, re-used by every projection asked
    of it (the graph is kept until the object is dropped)."""

    def __init__(self, model, inputs: torch.Tensor, *, layer: str, rule: str = "deconvnet",
                 skip_lrn: bool | None = None):  # fmt: skip
        self.lm = adapt(model)
        self.layer = self.lm.check_layer(layer)
        self.rule = check_rule(rule)
        self.skip_lrn = skip_lrn
        x = checks.images(inputs, channels=None)
        with self._rules():
            self.inputs = x.detach().clone().requires_grad_(True)
            self.acts = capture(self.lm, self.inputs, [self.layer])[self.layer]
        self.rf = for_layer(self.lm, self.layer) if self.acts.dim() == 4 else None

    @contextmanager
    def _rules(self):
        with eval_mode(self.lm.model), BackpropRules(self.lm.model, self.rule, skip_lrn=self.skip_lrn):
            with torch.enable_grad():
                yield

    def units(self, channels, position="max", *, border: int = 0, ceiling: float | None = None,
              batch_size: int = 16, pack: bool = True) -> Projection:  # fmt: skip
        """Project single activations (see :func:`unit_projection`)."""
        acts = self.acts.detach()
        chans = resolve_channels(acts, channels)
        ceiling = self.lm.spec.ceiling if ceiling is None else ceiling
        pos = unit_positions(acts, chans, position, border, ceiling)
        n_img = acts.shape[0]
        n_idx = torch.arange(n_img, device=acts.device)
        values = torch.stack([acts[(n_idx, c, *pos[k].unbind(-1))] for k, c in enumerate(chans)])
        live = [(k, n) for k in range(len(chans)) for n in range(n_img) if values[k, n] != 0]
        maps = self.inputs.new_zeros(len(chans), *self.inputs.shape)
        if live:
            slots = self._slots(live, pos, pack)
            self._backward(slots, chans, pos, values, maps, batch_size)
        return Projection(maps, chans, pos, values, self.layer, self.rule)

    def _slots(self, live, pos, pack: bool):
        if self.rf is None or not pack:  # one seed per channel, all images at once
            by_channel: dict[int, dict] = {}
            for k, n in live:
                by_channel.setdefault(k, {})[n] = [((k, n), None)]
            return list(by_channel.values())
        height, width = self.inputs.shape[-2:]
        boxes = {(k, n): self.rf.box(*pos[k, n].tolist(), height, width) for k, n in live}
        return pack_units(boxes, live)

    def _backward(self, slots, chans, pos, values, maps, batch_size: int) -> None:
        acts = self.acts
        # the rule is recorded in the graph by the forward pass: the backward needs no hooks
        with torch.enable_grad():
            for start in range(0, len(slots), batch_size):
                chunk = slots[start : start + batch_size]
                seeds = torch.zeros(len(chunk), *acts.shape, dtype=acts.dtype, device=acts.device)
                for s, slot in enumerate(chunk):
                    for n, members in slot.items():
                        for (k, _), _box in members:
                            seeds[(s, n, chans[k], *pos[k, n].tolist())] = values[k, n]
                (g,) = torch.autograd.grad(acts, self.inputs, seeds, is_grads_batched=True, retain_graph=True)
                for s, slot in enumerate(chunk):
                    for n, members in slot.items():
                        for (k, _), box in members:
                            if box is None:
                                maps[k, n] = g[s, n]
                            else:
                                y0, y1, x0, x1 = box
                                maps[k, n, :, y0:y1, x0:x1] = g[s, n, :, y0:y1, x0:x1]


def unit_projection(model, inputs: torch.Tensor, *, layer: str, channels, position="max",
                    rule: str = "deconvnet", border: int = 0, ceiling: float | None = None, batch_size: int = 16,
                    pack: bool = True, skip_lrn: bool | None = None) -> Projection:  # fmt: skip
    """Project single activations of ``layer`` to pixel space (ZF §2.1), batched.

    ``channels``: int, list or ``"topK"``; ``position``: ``"max"`` (each map's strongest unit),
    ``(y, x)`` or a K×N×2 tensor. One forward pass for all images (stopped at ``layer``), then
    vmapped backward passes of ``batch_size`` seeds each; units whose receptive fields do not
    overlap share one seed (exact, see :func:`pack_units`). ``border`` keeps ``"max"`` that many
    cells from the map's edges (zero padding makes some nets fire hardest on the border);
    ``ceiling`` defaults to the model's ReLU6 clip."""
    projector = Projector(model, inputs, layer=layer, rule=rule, skip_lrn=skip_lrn)
    return projector.units(channels, position, border=border, ceiling=ceiling, batch_size=batch_size, pack=pack)


def channel_projection(model, inputs: torch.Tensor, *, layer: str, channels, rule: str = "gradient") -> torch.Tensor:
    """Backpropagate the summed activation of feature map(s) ``channels`` of ``layer`` (summed
    over the given channels and all positions) to the input: N×C×H×W."""
    projector = Projector(model, inputs, layer=layer, rule=rule)
    chans = resolve_channels(projector.acts.detach(), channels)
    with torch.enable_grad():
        score = projector.acts[:, chans].sum()
        (g,) = torch.autograd.grad(score, projector.inputs)
    return g


def class_projection(model, inputs: torch.Tensor, *, target="top1", rule: str = "gradient") -> torch.Tensor:
    """Backpropagate the score (logit) of class ``target`` to the input under ``rule``: N×C×H×W."""
    lm = adapt(model)
    check_rule(rule)
    x = checks.images(inputs, channels=None)
    with eval_mode(lm.model), BackpropRules(lm.model, rule), torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        logits = lm.model(xg)
        t = resolve_targets(logits.detach(), target)
        score = logits[torch.arange(x.shape[0], device=logits.device), t]
        (g,) = torch.autograd.grad(score.sum(), xg)
    return g
