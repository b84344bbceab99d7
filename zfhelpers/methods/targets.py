"""One convention for what a method explains, shared by every method.

* **target** — a class: an int (the same for every image), ``"top1"`` … ``"topK"`` (each image's
  K-th most probable class; None means ``"top1"``), or a sequence / 1-D tensor with one class per
  image. Class-level methods (CAM family, class projections, occlusion) take ``target``.
* **channels** — feature maps of ``layer``: an int, a sequence of ints, or ``"topK"`` (the K
  channels with the strongest single activation, per the first image). Unit- and channel-level
  methods (projections, scans, inversion) take ``channels``."""

from __future__ import annotations

import numbers

import torch

from .. import checks


def _rank(spec: str, what: str, limit: int) -> int:
    if not (spec.startswith("top") and spec[3:].isdigit() and int(spec[3:]) >= 1):
        raise checks.InputError(f"{what} must be an index, a list of them, or 'top1'..'top{limit}'; got {spec!r}")
    rank = int(spec[3:])
    if rank > limit:
        raise checks.InputError(f"{what} {spec!r} asks for more than the {limit} available")
    return rank


def resolve_targets(logits: torch.Tensor, target="top1") -> torch.Tensor:
    """One class index per image (N long tensor on the logits' device) from any target form."""
    n, classes = logits.shape[0], logits.shape[1]
    if target is None:
        target = "top1"
    if isinstance(target, str):
        rank = _rank(target, "target", classes)
        return logits.topk(rank, dim=1).indices[:, rank - 1]
    if isinstance(target, torch.Tensor) and target.dim() > 1:
        shape = tuple(target.shape)
        raise checks.InputError(f"target must be an int, 'topK' or one class per image, got shape {shape}")
    single = isinstance(target, numbers.Integral) or (isinstance(target, torch.Tensor) and target.dim() == 0)
    values = checks.indices(target, classes, name="target")
    if single:
        values = values * n
    if len(values) != n:
        raise checks.InputError(f"{len(values)} targets for {n} images; give one class, or one per image")
    return torch.tensor(values, dtype=torch.long, device=logits.device)


def resolve_channels(acts: torch.Tensor, channels) -> list[int]:
    """Channel indices of ``acts`` (N×C×…) from an int, a sequence or ``"topK"``."""
    n_channels = acts.shape[1]
    if isinstance(channels, str):
        rank = _rank(channels, "channels", n_channels)
        strength = acts[0].flatten(1).amax(1)
        return strength.topk(rank).indices.tolist()
    return checks.indices(channels, n_channels, name="channels")


def strongest_channels(acts: torch.Tensor, k: int, by: str = "mean", border: int = 0,
                 ceiling: float | None = None) -> list[int]:  # fmt: skip
    """Channels of a C×H×W activation with the largest spatial ``mean`` or ``max`` (ties: lower
    index); ``border`` ignores that many cells at each edge, ``ceiling`` ignores clipped units
    (ReLU6 at 6) — the same choices :func:`zfhelpers.methods.projection.unit_projection` offers for its position."""
    if by not in ("mean", "max"):
        raise ValueError(f"by must be 'mean' or 'max', got {by!r}")
    if border > 0:
        acts = acts[..., border:-border, border:-border]
    if ceiling is not None:
        acts = acts.masked_fill(acts >= ceiling, 0.0)
    flat = acts.detach().float().flatten(1)
    score = flat.mean(1) if by == "mean" else flat.amax(1)
    order = sorted(range(len(score)), key=lambda c: (-float(score[c]), c))
    return order[:k]
