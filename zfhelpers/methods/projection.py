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
from ..models.capture import capture, capture_detached, eval_mode
from ..models.zoo import adapt
from .cone import ConeBackward
from .receptive import for_layer
from .rules import BackpropRules, check_rule
from .targets import resolve_channels, resolve_targets, strongest_channels


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


#: How :class:`Projector` runs the backward passes: ``"cone"`` by hand inside each unit's receptive
#: field (:mod:`zfhelpers.methods.cone`; plain conv stacks only), ``"autograd"`` through the whole
#: image, ``"auto"`` the first where it applies.
ENGINES = ("auto", "cone", "autograd")


class Projector:
    """One forward pass of ``inputs`` to ``layer`` under ``rule``, re-used by every projection asked
    of it. On plain conv stacks (``engine="auto"``) it keeps only what the rule's backward pass
    needs (pooling switches, rectifier outputs) and projects each unit inside its receptive field
    (:mod:`zfhelpers.methods.cone`); elsewhere it keeps the autograd graph until the object is
    dropped. ``only_channels`` (cone
    engine; for a one-off call that names its channels): the layer's last convolution computes
    only those maps, and the other channels of ``acts`` are NaN."""

    def __init__(self, model, inputs: torch.Tensor, *, layer: str, rule: str = "deconvnet",
                 skip_lrn: bool | None = None, engine: str = "auto",
                 only_channels: list[int] | None = None):  # fmt: skip
        self.lm = adapt(model)
        self.layer = self.lm.check_layer(layer)
        self.rule = check_rule(rule)
        self.skip_lrn = skip_lrn
        x = checks.images(inputs, channels=None)
        checks.choice(engine, ENGINES, name="engine")
        self.cone = ConeBackward.build(self.lm, self.layer, self.rule, skip_lrn) if engine != "autograd" else None
        if engine == "cone" and self.cone is None:
            raise checks.InputError(f"engine 'cone' needs a plain features stack of convolutions, max-poolings and "
                                    f"rectifiers up to {self.layer}; use engine='auto' or 'autograd'")  # fmt: skip
        if self.cone is not None:  # no graph: the switches (and rectifier outputs) the rule needs are kept
            self.inputs = x.detach()
            self.acts = self.cone.forward(self.inputs, only_channels)
        else:
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
        if live and self.cone is not None:
            self._cone_backward(live, chans, pos, values, maps, batch_size)
        elif live:
            slots = self._slots(live, pos, pack)
            self._backward(slots, chans, pos, values, maps, batch_size)
        return Projection(maps, chans, pos, values, self.layer, self.rule)

    def _cone_backward(self, live, chans, pos, values, maps, batch_size: int) -> None:
        """``batch_size`` units at a time, each through its own cone (:mod:`zfhelpers.methods.cone`)."""
        for start in range(0, len(live), batch_size):
            k, n = (torch.tensor(v, device=pos.device) for v in zip(*live[start : start + batch_size]))
            c = torch.tensor(chans, device=pos.device)[k]
            windows, rows, cols = self.cone.project(n, c, pos[k, n, 0], pos[k, n, 1], values[k, n])
            h, w = windows.shape[-2:]
            for s, (k_s, n_s, y0, x0) in enumerate(zip(k.tolist(), n.tolist(), rows.tolist(), cols.tolist())):
                maps[k_s, n_s, :, y0 : y0 + h, x0 : x0 + w] = windows[s]

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
                    rule: str = "deconvnet", border: int = 0, ceiling: float | None = None,
                    batch_size: int = 16, pack: bool = True, skip_lrn: bool | None = None,
                    crop: bool | None = None, engine: str = "auto") -> Projection:  # fmt: skip
    """Project single activations of ``layer`` to pixel space (ZF §2.1), batched.

    ``channels``: int, list or ``"topK"``; ``position``: ``"max"`` (each map's strongest unit),
    ``(y, x)`` or a K×N×2 tensor. One forward pass for all images (stopped at ``layer``), then
    backward passes of ``batch_size`` units each. ``border`` keeps ``"max"`` that many cells from
    the map's edges (zero padding makes some nets fire hardest on the border); ``ceiling``
    defaults to the model's ReLU6 clip.

    ``engine`` (see :data:`ENGINES`): on plain conv stacks each unit's backward pass runs inside its
    receptive field (:mod:`zfhelpers.methods.cone`); elsewhere autograd runs vmapped backward passes
    of the whole image, units whose receptive fields do not overlap sharing one seed (exact, see
    :func:`pack_units`), and ``crop`` (default: when it pays) projects a few units whose receptive
    fields cover a small part of the image from a crop around them (:func:`crop_box`), exactly:
    nothing outside a unit's receptive field reaches it on the way up or receives signal on the way
    down. ``crop=True`` forces the crop (with autograd inside)."""
    lm = adapt(model)
    layer = lm.check_layer(layer)
    x = checks.images(inputs, channels=None)
    checks.choice(engine, ENGINES, name="engine")
    rf = for_layer(lm, layer)
    cone = engine != "autograd" and ConeBackward.build(lm, layer, check_rule(rule), skip_lrn) is not None
    if rf is not None and (crop or (crop is None and not cone and _crop_may_pay(rf, channels, x.shape[-2:]))):
        return _cropped_units(lm, x, layer, rf, channels, position, rule, border, ceiling, batch_size, pack, skip_lrn)
    # a one-off call that names its channels needs only those maps of the layer's last convolution
    projector = Projector(lm, x, layer=layer, rule=rule, skip_lrn=skip_lrn, engine=engine,
                          only_channels=None if isinstance(channels, str) or not cone else channels)  # fmt: skip
    return projector.units(channels, position, border=border, ceiling=ceiling, batch_size=batch_size, pack=pack)


#: Crop only when the units' receptive fields cover at most this share of the image.
CROP_SHARE = 0.5


def _crop_may_pay(rf, channels, hw) -> bool:
    """Before any forward pass: can the crops of these units be small? (one field per channel)"""
    k = 1 if isinstance(channels, int) else (len(channels) if isinstance(channels, list | tuple) else None)
    return k is not None and k * rf.size[0] * rf.size[1] <= CROP_SHARE * hw[0] * hw[1]


def crop_box(rf, positions: torch.Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the smallest crop holding the receptive fields of units ``positions``
    (P×2) whose origin lies on the layer's grid (y0, x0 multiples of the field's jump), so that unit
    (y, x) of the image is unit (y − y0/jump, x − x0/jump) of the crop with the same value."""
    boxes = [rf.box(int(y), int(x), height, width) for y, x in positions.tolist()]
    y0, y1 = min(b[0] for b in boxes), max(b[1] for b in boxes)
    x0, x1 = min(b[2] for b in boxes), max(b[3] for b in boxes)
    return y0 - y0 % rf.jump[0], y1, x0 - x0 % rf.jump[1], x1


def _cropped_units(lm, x, layer, rf, channels, position, rule, border, ceiling, batch_size, pack, skip_lrn):
    """:func:`unit_projection` image by image from crops (positions from one gradient-free pass)."""
    acts = capture_detached(lm, x, [layer])[layer]
    chans = resolve_channels(acts, channels)
    ceiling = lm.spec.ceiling if ceiling is None else ceiling
    pos = unit_positions(acts, chans, position, border, ceiling)
    height, width = x.shape[-2:]
    maps = x.new_zeros(len(chans), *x.shape)
    n_idx = torch.arange(x.shape[0], device=acts.device)
    values = torch.stack([acts[(n_idx, c, *pos[k].unbind(-1))] for k, c in enumerate(chans)])
    for n in range(x.shape[0]):
        y0, y1, x0, x1 = crop_box(rf, pos[:, n], height, width)
        part = Projector(lm, x[n : n + 1, :, y0:y1, x0:x1], layer=layer, rule=rule, skip_lrn=skip_lrn,
                         engine="autograd")  # fmt: skip
        shift = torch.tensor([y0 // rf.jump[0], x0 // rf.jump[1]], device=pos.device)
        sub = part.units(chans, pos[:, n : n + 1] - shift, ceiling=ceiling, batch_size=batch_size, pack=pack)
        maps[:, n, :, y0:y1, x0:x1] = sub.maps[:, 0]
    return Projection(maps, chans, pos, values, layer, rule)


def channel_projection(model, inputs: torch.Tensor, *, layer: str, channels, rule: str = "gradient") -> torch.Tensor:
    """Backpropagate the summed activation of feature map(s) ``channels`` of ``layer`` (summed
    over the given channels and all positions) to the input: N×C×H×W."""
    projector = Projector(model, inputs, layer=layer, rule=rule, engine="autograd")
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


@dataclass
class LayerUnits:
    """The strongest units of one layer on one image, projected under one or more rules.

    ``acts`` is the layer's C×h×w activation; ``projections[rule]`` holds the same units (same
    channels and positions) under each rule."""

    layer: str
    acts: torch.Tensor
    projections: dict[str, Projection]

    @property
    def channels(self) -> list[int]:
        return next(iter(self.projections.values())).channels

    def head(self, k: int) -> LayerUnits:
        """The first ``k`` units (the strongest channels) only."""
        cut = {rule: Projection(p.maps[:k], p.channels[:k], p.positions[:k], p.values[:k], p.layer, p.rule)
               for rule, p in self.projections.items()}  # fmt: skip
        return LayerUnits(self.layer, self.acts, cut)


def strongest_units(model, inputs: torch.Tensor, *, layers, n_channels: int = 1, border: int = 0,
                    rules=("deconvnet",)) -> list[LayerUnits]:  # fmt: skip
    """Per layer, the ``n_channels`` channels whose strongest single activation on the one image
    ``inputs`` is largest (units within ``border`` cells of the edge, and ReLU6 units clipped at
    the ceiling, skipped), each projected at that activation under every rule in ``rules``."""
    lm = adapt(model)
    x = checks.images(inputs, single=True, channels=None)
    for rule in rules:
        check_rule(rule)
    out = []
    for layer in layers:
        projector = Projector(lm, x, layer=layer, rule=rules[0])
        acts = projector.acts.detach()[0]
        chans = strongest_channels(acts, n_channels, by="max", border=border, ceiling=lm.spec.ceiling)
        first = projector.units(chans, border=border)
        del projector  # frees the graph before the next rule's forward pass
        projections = {rules[0]: first}
        for rule in rules[1:]:  # the same units: the positions the first rule found
            projections[rule] = unit_projection(lm, x, layer=layer, channels=chans, position=first.positions,
                                                rule=rule)  # fmt: skip
        out.append(LayerUnits(layer, acts, projections))
    return out
