"""Feature evolution during training (ZF §4.2, Fig. 4) and a measurement of the claim beside it:
"the lower layers of the model can be seen to converge within a few epochs. However, the upper
layers only develop after a considerable number of epochs (40-50)".

Three per-layer scores of a checkpoint against the final one, all in [0, 1] (1 = same as final):

* ``top1_same`` — fraction of channels whose single strongest training image is the final one's
  (ZF: "sudden jumps in appearance result from a change in the image from which the strongest
  activation originates");
* ``top9_overlap`` — mean Jaccard overlap of each channel's top-9 image set with the final set;
* ``filter_cosine`` — mean cosine similarity of each filter with its final weights.

:func:`settled_epoch` reads off, per layer, the first checkpoint after which a score stays above a
threshold."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .scan import TopK


def top1(top: TopK) -> TopK:
    """Only the strongest activation of each channel (Fig. 4 projects one per feature map)."""
    return TopK(top.values[:, :1], top.images[:, :1], top.positions[:, :1], top.layer)


def _jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise |A ∩ B| / |A ∪ B| of two C×k index sets."""
    inter = (a[:, :, None] == b[:, None, :]).any(2).sum(1).float()
    return inter / (a.shape[1] + b.shape[1] - inter)


def convergence(tops: Mapping[int, Mapping[str, TopK]], weights: Mapping[int, Mapping[str, torch.Tensor]],
                final: int | None = None) -> dict[str, dict[str, list[float]]]:  # fmt: skip
    """``tops[epoch][layer]`` (scans of the same images) and ``weights[epoch][layer]`` (O×…)
    → ``{score: {layer: [value per epoch, in sorted epoch order]}}``."""
    epochs = sorted(tops)
    final = epochs[-1] if final is None else final
    layers = list(tops[final])
    out: dict[str, dict[str, list[float]]] = {"top1_same": {}, "top9_overlap": {}, "filter_cosine": {}}
    for layer in layers:
        ref, ref_w = tops[final][layer], weights[final][layer].flatten(1)
        out["top1_same"][layer] = [float((tops[e][layer].images[:, 0] == ref.images[:, 0]).float().mean())
                                   for e in epochs]  # fmt: skip
        out["top9_overlap"][layer] = [float(_jaccard(tops[e][layer].images, ref.images).mean()) for e in epochs]
        out["filter_cosine"][layer] = [
            float(torch.nn.functional.cosine_similarity(weights[e][layer].flatten(1), ref_w, dim=1).mean())
            for e in epochs
        ]
    return out


def settled_epoch(epochs: list[int], scores: list[float], threshold: float) -> int | None:
    """First epoch from which ``scores`` stay ≥ ``threshold`` (None if they never do before the end)."""
    for i, e in enumerate(epochs):
        if all(s >= threshold for s in scores[i:]):
            return e
    return None
