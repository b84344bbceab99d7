"""Figure of notebook 08 (ZF §4.3, Table 1, Fig. 8): the occluded images, and Δ per occluded part
and layer with its 95 % CI, the test against random occlusion, the chance levels and the paper's
values."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..analysis.correspondence import Correspondence
from ..claims.paper import entry

LAYER_COLOURS = {"layer 5": "#1f77b4", "layer 7": "#ff7f0e"}


def _stars(p: float | None) -> str:
    if p is None:
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."


def correspondence_figure(result: Correspondence, images, loaded, claims: dict, *, title: str = ""):
    """Left: each image unoccluded and with every part (and the first random draw) occluded.
    Right: Δ per occlusion and layer — bars the mean over image pairs with its 95 % bootstrap CI,
    dots the pairs, stars the paired permutation test against random occlusion (one-sided), black
    ticks ZF's Table 1, dashed 0.5 (chance for fair ±1 signs) and dotted the chance for the
    measured sign frequencies, zeros included (see :func:`~zfhelpers.analysis.correspondence.independent_chance`)."""
    cols = ["original", *result.examples]
    n = len(images)
    fig = plt.figure(figsize=(1.9 * len(cols) + 6.0, max(1.9 * n, 6.5)))
    gs = fig.add_gridspec(n, len(cols) + 3)
    for i in range(n):
        for j, name in enumerate(cols):
            ax = fig.add_subplot(gs[i, j])
            img = images[i] if name == "original" else loaded.preprocess.denormalize(result.examples[name][i])
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name.replace("_", " ") + (" (draw 1)" if name == "random" else ""), fontsize=9)
    ax = fig.add_subplot(gs[:, len(cols) :])
    table = result.table()
    names = list(table)
    pos = np.arange(len(names))
    rng = np.random.default_rng(0)
    for k, (layer, offset) in enumerate(zip(result.layers, (-0.2, 0.2))):
        key = layer.replace(" ", "")
        for x, part in zip(pos + offset, names):
            c = claims[f"08.delta.{part}.{key}"]
            values = table[part][layer]
            ax.bar(x, c.value, 0.38, color=LAYER_COLOURS[layer], alpha=0.55,
                   label=f"{layer} here ({result.layers[layer]})" if part == names[0] else None)  # fmt: skip
            ax.errorbar(x, c.value, yerr=[[c.value - c.ci[0]], [c.ci[1] - c.value]], color="black", capsize=3, lw=1)
            ax.scatter(x + rng.uniform(-0.1, 0.1, values.size), values, s=6, color="0.25", zorder=3)
            paper = entry(c.paper)["value"] if c.paper else None
            if paper is not None:
                ax.plot(x, paper, "k_", ms=16, mew=2, label="ZF Table 1" if (part, k) == (names[0], 0) else None)
            if part != "random":
                ax.text(x, max(c.ci[1], values.max()) + 0.01, _stars(c.p_value), ha="center", fontsize=7)
        ax.axhline(result.chance[layer], ls=":", color=LAYER_COLOURS[layer], lw=1.2,
                   label=f"chance for these signs, {layer} ({result.chance[layer]:.2f})")  # fmt: skip
    ax.axhline(0.5, color="0.35", ls="--", lw=1, label="chance for fair ±1 signs (0.5)")
    ax.set_xticks(pos)
    ax.set_xticklabels([p.replace("_", " ") for p in names], fontsize=8)
    ax.set_ylim(0, 0.7)
    ax.set_ylabel("Δ: mean sign disagreement of feature changes (lower = more consistent)", fontsize=8)
    ax.set_title(f"Δ per image pair ({len(next(iter(table.values()))['layer 5'])} pairs; random: mean of "
                 f"{result.draws} draws)\nstars: part below random, paired permutation test", fontsize=8)  # fmt: skip
    ax.legend(fontsize=6.5, loc="upper left", ncol=2)
    ax.tick_params(labelsize=7)
    fig.suptitle(title or f"Correspondence (ZF §4.3, Table 1), {loaded.name}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def correspondence_explorer(result: Correspondence):
    """Part and layer: Δ of every image pair with that part occluded against Δ of the same pair under
    random occlusion (points below the diagonal: the part's changes agree more than random ones)."""
    import ipywidgets

    from .widgets import controls_explorer

    def render(part: str, layer: str):
        part_delta, random_delta = result.parts[part][layer], result.random[layer].mean(0)
        fig, ax = plt.subplots(figsize=(4.2, 4.0))
        ax.scatter(random_delta, part_delta, s=18, color=LAYER_COLOURS[layer])
        lo = min(part_delta.min(), random_delta.min()) - 0.02
        hi = max(part_delta.max(), random_delta.max()) + 0.02
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", label="part = random")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"Δ, random occlusion (mean of {result.draws} draws)", fontsize=8)
        ax.set_ylabel(f"Δ, {part.replace('_', ' ')} occluded", fontsize=8)
        below = int((part_delta < random_delta).sum())
        ax.set_title(f"{layer} ({result.layers[layer]}): {below} of {part_delta.size} pairs below the diagonal",
                     fontsize=8)  # fmt: skip
        ax.legend(fontsize=7, loc="upper left")
        ax.tick_params(labelsize=7)
        fig.tight_layout()
        return fig

    return controls_explorer(render, {
        "part": ipywidgets.Dropdown(options=list(result.parts), description="part"),
        "layer": ipywidgets.Dropdown(options=list(result.layers), description="layer")})  # fmt: skip
