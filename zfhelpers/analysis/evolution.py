"""Feature evolution during training (ZF §4 "Feature Evolution during Training", Fig. 4) and a
measurement of the claim beside it:
"the lower layers of the model can be seen to converge within a few epochs. However, the upper
layers only develop after a considerable number of epochs (40-50)".

Three per-layer scores of a checkpoint against the final one, all in [0, 1] (1 = same as final):

* ``top1_same`` — fraction of channels whose single strongest training image is the final one's
  (ZF: "sudden jumps in appearance result from a change in the image from which the strongest
  activation originates");
* ``top9_overlap`` — mean Jaccard overlap of each channel's top-9 image set with the final set;
* ``filter_cosine`` — mean cosine similarity of each filter with its final weights.

:func:`settled_epoch` reads off, per layer, the first checkpoint after which a score stays above a
threshold. :func:`per_channel` keeps the scores per feature map, and :func:`layer_claims` /
:func:`order_claims` turn them into claims with bootstrap intervals over maps and a trend test
across layers (is the ordering "lower layers settle first" there, or only in a few means?)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..claims.record import Claim
from .scan import TopK
from .stats import bootstrap_ci, permutation_test

#: Plain-words names of the scores, for titles and tables.
SCORE_TITLES = {
    "top1_same": "top-1 image unchanged",
    "top9_overlap": "top-9 image overlap (Jaccard)",
    "filter_cosine": "filter cosine similarity",
}


def top1(top: TopK) -> TopK:
    """Only the strongest activation of each channel (Fig. 4 projects one per feature map)."""
    return TopK(top.values[:, :1], top.images[:, :1], top.positions[:, :1], top.layer)


def jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise |A ∩ B| / |A ∪ B| of two C×k index sets."""
    inter = (a[:, :, None] == b[:, None, :]).any(2).sum(1).float()
    return inter / (a.shape[1] + b.shape[1] - inter)


def convergence(tops: Mapping[int, Mapping[str, TopK]], weights: Mapping[int, Mapping[str, torch.Tensor]],
                final: int | None = None) -> dict[str, dict[str, list[float]]]:  # fmt: skip
    """``tops[epoch][layer]`` (scans of the same images) and ``weights[epoch][layer]`` (O×…)
    → ``{score: {layer: [value per epoch, in sorted epoch order]}}``."""
    scores = per_channel(tops, weights, final)
    return {name: {layer: [float(v.mean()) for v in rows] for layer, rows in per_layer.items()}
            for name, per_layer in scores.items()}  # fmt: skip


def per_channel(tops: Mapping[int, Mapping[str, TopK]], weights: Mapping[int, Mapping[str, torch.Tensor]],
                final: int | None = None) -> dict[str, dict[str, list[np.ndarray]]]:  # fmt: skip
    """Like :func:`convergence`, but one value per feature map: ``{score: {layer: [C-vector per epoch]}}``."""
    epochs = sorted(tops)
    final = epochs[-1] if final is None else final
    out: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in SCORE_TITLES}
    for layer in tops[final]:
        ref, ref_w = tops[final][layer], weights[final][layer].flatten(1)
        out["top1_same"][layer] = [(tops[e][layer].images[:, 0] == ref.images[:, 0]).float().numpy() for e in epochs]
        out["top9_overlap"][layer] = [jaccard(tops[e][layer].images, ref.images).numpy() for e in epochs]
        out["filter_cosine"][layer] = [
            torch.nn.functional.cosine_similarity(weights[e][layer].flatten(1).float(), ref_w.float(), dim=1).numpy()
            for e in epochs
        ]
    return out


def before_final(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Per feature map, the mean of a score over every checkpoint but the last (which is 1 by
    construction): 1 = identical to the final state from the first checkpoint on."""
    return np.mean(np.stack(rows[:-1]), axis=0)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either side is constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def trend_test(values: Mapping[str, np.ndarray], *, n_perm: int = 5000, n_boot: int = 1000,
               seed: int = 0) -> tuple[float, tuple[float, float], float]:  # fmt: skip
    """Spearman ρ between layer depth (1, 2, … in the order of ``values``) and the per-map values;
    a 95 % bootstrap interval resampling maps within each layer; and the one-sided permutation
    p-value of ρ < 0 (layer labels shuffled over maps). Returns (ρ, ci, p)."""
    depth = np.concatenate([np.full(len(v), i + 1.0) for i, v in enumerate(values.values())])
    pooled = np.concatenate([np.asarray(v, float) for v in values.values()])
    rho = spearman(depth, pooled)
    rng = np.random.default_rng(seed)
    null = np.array([spearman(rng.permutation(depth), pooled) for _ in range(n_perm)])
    p = float(((null <= rho + 1e-12).sum() + 1) / (n_perm + 1))
    boots = []
    for _ in range(n_boot):
        resampled = np.concatenate([rng.choice(np.asarray(v, float), len(v)) for v in values.values()])
        boots.append(spearman(depth, resampled))
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return rho, (float(lo), float(hi)), p


def layer_claims(values: Mapping[str, np.ndarray], *, score: str, model: str, tolerance: float = 0.02) -> list[Claim]:
    """One descriptive claim per layer: the mean of ``score`` before the final checkpoint
    (:func:`before_final`) over its maps, with a bootstrap interval over maps."""
    out = []
    for layer, v in values.items():
        out.append(Claim(
            id=f"04.{score}.{layer}",
            statement=(f"{model}, {layer}: mean {SCORE_TITLES[score]} with the final checkpoint, averaged over "
                       "the checkpoints before it (per feature map, then over maps)"),
            value=float(np.mean(v)), ci=bootstrap_ci(v), n=len(v), decimals=2, tolerance=tolerance,
            verdict="not comparable",
            reason="descriptive, one layer; the paper's statement is the ordering, tested in the trend claim",
        ))  # fmt: skip
    return out


def order_claims(values: Mapping[str, np.ndarray], *, score: str, model: str, alpha: float = 0.05,
                 paper: str | None = "zf2014.fig4.lower_layers_converge_early") -> list[Claim]:  # fmt: skip
    """ZF: "the lower layers ... converge within a few epochs; the upper layers only develop after a
    considerable number of epochs". Two claims on per-map scores (higher = closer to the final state):

    * ``trend`` — Spearman ρ of score against depth over all maps; reproduced when ρ < 0 with its
      95 % interval below 0 and a one-sided permutation p < ``alpha``;
    * ``ordered_pairs`` — how many adjacent layer pairs are ordered (lower layer higher) by a
      one-sided permutation test at ``alpha`` / (number of pairs) (Bonferroni): all pairs → the
      ordering holds layer by layer; fewer → only a trend."""
    rho, ci, p = trend_test(values)
    if rho < 0 and ci[1] < 0 and p < alpha:
        verdict, reason = "reproduced", "score falls with depth: 95 % CI of ρ below 0, permutation p < 0.05"
    elif rho < 0:
        verdict, reason = "partly reproduced", "ρ < 0 but its CI reaches 0 or the test is not significant"
    else:
        verdict, reason = "not reproduced", "score does not fall with depth (ρ ≥ 0)"
    names = list(values)
    trend = Claim(
        id=f"04.{score}.depth_trend",
        statement=(f"{model}: lower layers are closer to their final state earlier — Spearman ρ between layer "
                   f"depth and each map's {SCORE_TITLES[score]} before the final checkpoint (negative = lower "
                   "layers settle first)"),
        value=rho, ci=ci, p_value=p, test="permutation of layer labels over maps (one-sided, ρ < 0)",
        n=int(sum(len(v) for v in values.values())), decimals=2, tolerance=0.03, chance=0.0,
        paper=paper, verdict=verdict if paper else "not comparable",
        reason=reason if paper else f"{reason}; weights are not the paper's (visual) criterion",
    )  # fmt: skip
    level = alpha / max(len(names) - 1, 1)
    pairs = list(pair_p_values(values).values())
    ordered = sum(q < level for q in pairs)
    if ordered == len(pairs):
        verdict, reason = "reproduced", "every adjacent pair of layers is ordered (Bonferroni-corrected tests)"
    elif ordered > 0:
        verdict, reason = "partly reproduced", f"{ordered} of {len(pairs)} adjacent pairs significantly ordered"
    else:
        verdict, reason = "not reproduced", "no adjacent pair of layers is significantly ordered"
    pair_names = ", ".join(f"{a}>{b}" for a, b in zip(names, names[1:]))
    pair_claim = Claim(
        id=f"04.{score}.ordered_pairs",
        statement=(f"{model}: number of adjacent layer pairs ({pair_names}) "
                   f"whose {SCORE_TITLES[score]} is higher in the lower layer, one-sided permutation test per pair "
                   f"at {alpha:g}/{len(pairs)}"),
        # a pair near the corrected level may flip on another CPU (top-9 sets of near-tied maps)
        value=float(ordered), n=len(pairs), decimals=0, tolerance=1.0, test="permutation test per pair, Bonferroni",
        paper=paper, verdict=verdict if paper else "not comparable",
        reason=reason if paper else f"{reason}; weights are not the paper's (visual) criterion",
    )  # fmt: skip
    return [trend, pair_claim]


def pair_p_values(values: Mapping[str, np.ndarray], *, n_perm: int = 4000) -> dict[str, float]:
    """One-sided permutation p-value of "the lower layer's score is higher" per adjacent layer pair."""
    names = list(values)
    return {f"{a}>{b}": permutation_test(values[a], values[b], alternative="greater", n_perm=n_perm)
            for a, b in zip(names, names[1:])}  # fmt: skip


def settled_epoch(epochs: list[int], scores: list[float], threshold: float) -> int | None:
    """First epoch from which ``scores`` stay ≥ ``threshold`` (None if they never do before the end)."""
    for i, e in enumerate(epochs):
        if all(s >= threshold for s in scores[i:]):
            return e
    return None
