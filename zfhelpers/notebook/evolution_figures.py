"""Figure builders and the explorer of notebook 04 (feature evolution during training, ZF §4
"Feature Evolution during Training", Fig. 4). Each builder returns a matplotlib Figure and never
saves it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..analysis import evolution, scan, top9
from ..analysis.stats import bootstrap_ci
from .widgets import Explorer, layer_channel_explorer

LAYER_CMAP = "viridis"


def stretch(img: np.ndarray) -> np.ndarray:
    """Per-tile contrast stretch about grey = 0.5 (ZF: colour contrast "artificially enhanced")."""
    return 0.5 + (img - 0.5) / (2 * max(float(np.abs(img - 0.5).max()), 1e-8))


def evolution_grid(panels: Mapping[int, Mapping[str, object]], rows: Sequence[tuple[str, int, int]],
                   epochs: Sequence[int], *, title: str = ""):  # fmt: skip
    """ZF Fig. 4: one row per fixed feature map ``(layer, channel, index in the layer's projections)``,
    one column per checkpoint; each tile the projection of that map's strongest training activation
    at that checkpoint (``panels[epoch][layer]``: :class:`zfhelpers.analysis.top9.TopProjections`)."""
    fig, axes = plt.subplots(len(rows), len(epochs), figsize=(1.15 * len(epochs) + 0.8, 1.15 * len(rows)),
                             squeeze=False, layout="constrained")  # fmt: skip
    for r, (layer, c, i) in enumerate(rows):
        for j, e in enumerate(epochs):
            ax = axes[r, j]
            img = panels[e][layer].projections[i, 0]
            ax.imshow(stretch(img), interpolation="nearest" if img.shape[0] < 40 else "antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"epoch {e}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{layer}\nch{c}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _colours(n: int):
    cmap = plt.get_cmap(LAYER_CMAP)
    return [cmap(x) for x in np.linspace(0.0, 0.85, n)]


def chance_levels(n_images: int, k: int = 9) -> dict[str, float]:
    """Scores of an unrelated checkpoint: the winning image drawn at random (1/N), two random k-sets
    of N images (expected Jaccard ≈ E|A∩B| / (2k − E|A∩B|) with E|A∩B| = k²/N), random filters (0)."""
    inter = k * k / n_images
    return {"top1_same": 1.0 / n_images, "top9_overlap": inter / (2 * k - inter), "filter_cosine": 0.0}


def convergence_figure(scores: Mapping[str, Mapping[str, list[np.ndarray]]], epochs: Sequence[int], *,
                       n_images: int, threshold: float | None = None, title: str = ""):  # fmt: skip
    """Per score (plain-words titles, :data:`zfhelpers.analysis.evolution.SCORE_TITLES`), the mean
    over each layer's feature maps at every checkpoint with its 95 % bootstrap band over maps, and
    the score of an unrelated checkpoint (chance, dotted)."""
    names = list(scores)
    fig, axes = plt.subplots(1, len(names), figsize=(4.0 * len(names), 3.3), squeeze=False, layout="constrained")
    chance = chance_levels(n_images)
    for ax, name in zip(axes[0], names):
        per_layer = scores[name]
        for colour, (layer, rows) in zip(_colours(len(per_layer)), per_layer.items()):
            mean = [float(v.mean()) for v in rows]
            band = np.array([bootstrap_ci(v, n_boot=500) for v in rows])
            ax.plot(epochs, mean, marker="o", ms=3.5, color=colour, label=layer)
            ax.fill_between(epochs, band[:, 0], band[:, 1], color=colour, alpha=0.15, lw=0)
        ax.axhline(chance[name], color="k", lw=0.8, ls=":", label="chance (unrelated checkpoint)")
        if threshold is not None:
            ax.axhline(threshold, color="grey", lw=0.8, ls="--", label=f"settled threshold {threshold:g}")
        ax.set_title(evolution.SCORE_TITLES[name], fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].set_ylabel("similarity to the final checkpoint\n(mean over maps, 95 % CI)")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def layer_order_figure(values: Mapping[str, Mapping[str, np.ndarray]], claims: Mapping[str, object], *,
                       pairs: Mapping[str, object] | None = None, title: str = ""):  # fmt: skip
    """The claim tested: per score, each layer's per-map value before the final checkpoint (dots,
    jittered) with its mean and 95 % bootstrap interval; the panel title gives Spearman ρ with depth,
    its interval and p (``claims[score]``: the trend Claim) and, from ``pairs[score]``, how many
    adjacent layer pairs are significantly ordered — a trend is not an ordering."""
    names = list(values)
    fig, axes = plt.subplots(1, len(names), figsize=(3.8 * len(names), 3.4), squeeze=False, layout="constrained")
    rng = np.random.default_rng(0)
    for ax, name in zip(axes[0], names):
        per_layer = values[name]
        for x, (colour, v) in enumerate(zip(_colours(len(per_layer)), per_layer.values())):
            ax.scatter(x + rng.uniform(-0.18, 0.18, len(v)), v, s=5, color=colour, alpha=0.35, lw=0)
            lo, hi = bootstrap_ci(v)
            ax.errorbar([x], [float(np.mean(v))], yerr=[[float(np.mean(v)) - lo], [hi - float(np.mean(v))]],
                        fmt="o", color="k", ms=4, capsize=3, lw=1.2)  # fmt: skip
        ax.set_xticks(range(len(per_layer)), list(per_layer), fontsize=8)
        c = claims.get(name)
        head = evolution.SCORE_TITLES[name]
        if c is not None:
            lo, hi = c.ci
            head += f"\nρ with depth {c.value:.2f} [{lo:.2f}, {hi:.2f}], p = {c.p_value:.2g}: {c.verdict}"
        pc = (pairs or {}).get(name)
        if pc is not None:
            head += f"\nadjacent pairs ordered: {int(pc.value)} of {pc.n}"
        ax.set_title(head, fontsize=8.5)
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].set_ylabel("mean over checkpoints before the last\n(per map; black: mean, 95 % CI)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


class EvolutionDrawing:
    """Explorer of notebook 04: one feature map's strongest training activation at every checkpoint."""

    def __init__(self, twins: Mapping[int, object], tops: Mapping[int, Mapping[str, object]], images,
                 prepare: Callable | None = None):  # fmt: skip
        self.twins, self.tops, self.images, self.prepare = twins, tops, images, prepare

    def __call__(self, layer: str, channel: int):
        epochs = sorted(self.twins)
        fig, axes = plt.subplots(1, len(epochs), figsize=(1.6 * len(epochs), 2.1), squeeze=False,
                                 layout="constrained")  # fmt: skip
        for j, e in enumerate(epochs):
            top = self.tops[e].get(layer)
            if top is None:
                top = scan.scan_topk(self.twins[e], self.images, layer=layer, k=1, prepare=self.prepare,
                                     progress=False)  # fmt: skip
            tp = top9.project_topk(self.twins[e], evolution.top1(top), [channel], self.images, prepare=self.prepare,
                                   grey=True)  # fmt: skip
            axes[0, j].imshow(stretch(tp.projections[0, 0]))
            axes[0, j].set_title(f"epoch {e}\nact {float(tp.values[0, 0]):.2f}", fontsize=8)
            axes[0, j].axis("off")
        fig.suptitle(f"{layer} channel {channel}: strongest training activation per checkpoint", fontsize=9)
        return fig


def evolution_explorer(twins: Mapping[int, object], tops: Mapping[int, Mapping[str, object]], images, *,
                       layer: str, prepare: Callable | None = None) -> Explorer:  # fmt: skip
    """Layer and channel sliders over :class:`EvolutionDrawing`, opening on the channel of ``layer``
    whose final strongest activation is largest (a map that fires)."""
    final = twins[max(twins)]
    layers = list(tops[max(tops)])
    start = int(tops[max(tops)][layer].values[:, 0].argmax())
    drawing = EvolutionDrawing(twins, tops, images, prepare)
    return layer_channel_explorer(drawing, {n: final.channels(n) for n in layers}, layer=layer, channel=start)
