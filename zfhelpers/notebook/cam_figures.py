"""Figures of notebook 10 (CAM, Grad-CAM, Grad-CAM++, Guided Grad-CAM): the maps of the top classes,
the two-object test, the baselines with the randomisation sanity check, and an explorer."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..analysis.cam_evidence import SURVIVES, TwoObjects
from ..analysis.stats import bootstrap_ci
from ..methods import cam as cams
from .plots import plot_heat_overlay

TITLES = {"cam": "CAM", "gradcam": "Grad-CAM", "gradcampp": "Grad-CAM++", "guided_gradcam": "Guided Grad-CAM"}
COLOURS = {"gradcam": "#1f77b4", "gradcampp": "#ff7f0e", "guided_gradcam": "#2ca02c"}


def _guided(ax, guided: torch.Tensor) -> None:
    """Guided Grad-CAM as |signal| summed over colour, grey = none (robust 99.5 % scaling)."""
    g = guided.abs().sum(0)
    ax.imshow((g / max(float(torch.quantile(g.flatten(), 0.995)), 1e-12)).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.axis("off")


def shown_methods(methods: Sequence[str], identity_holds: bool) -> list[str]:
    """The columns worth drawing: CAM is dropped when Grad-CAM = ReLU(CAM)/Z holds (same map)."""
    return [m for m in methods if not (m == "cam" and identity_holds)]


def _title(method: str, identity_holds: bool) -> str:
    if method == "gradcam" and identity_holds:
        return "Grad-CAM = ReLU(CAM)/Z\n(GAP + linear head: identical)"
    return TITLES.get(method, method)


def methods_figure(samples, maps: dict[int, dict], loaded, probs: torch.Tensor, *, layer: str,
                   identity_holds: bool = False):  # fmt: skip
    """One row per (photo, class rank), one column per method. Heat maps are min–max scaled per map;
    Guided Grad-CAM is shown as |signal| (grey = none). Where Grad-CAM = ReLU(CAM)/Z holds, CAM
    gets no column of its own: the title says why."""
    methods = shown_methods(list(next(iter(maps.values()))), identity_holds)
    rows = [(i, rank) for i in range(len(samples)) for rank in maps]
    fig, axes = plt.subplots(len(rows), len(methods) + 1, figsize=(2.35 * (len(methods) + 1), 2.05 * len(rows)),
                             squeeze=False)  # fmt: skip
    for r, (i, rank) in enumerate(rows):
        s, results = samples[i], maps[rank]
        t = int(results[methods[0]].targets[i])
        axes[r, 0].imshow(s.display)
        axes[r, 0].set_title(f"{s.name} #{rank}: {loaded.categories[t]} ({float(probs[i, t]):.2f})", fontsize=7)
        axes[r, 0].axis("off")
        for j, m in enumerate(methods, 1):
            if m == "guided_gradcam":
                _guided(axes[r, j], results[m].guided[i])
            else:
                plot_heat_overlay(axes[r, j], s.display, cams.normalize(results[m].upsampled)[i], colorbar=False)
            if r == 0:
                axes[r, j].set_title(_title(m, identity_holds), fontsize=8)
    fig.suptitle(f"Class activation maps of the top-{len(maps)} classes, {loaded.name} layer {layer} "
                 "(each map scaled to its own range)", fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return fig


def two_objects_figure(results: dict[str, TwoObjects], loaded, samples: dict, claims: dict | None = None):
    """Left: the first composite with the Grad-CAM map of each photo's own class. Right: the share
    of each class's map on its own photo, per composite half and method, with the mean's 95 % CI;
    the dashed line is chance (a map blind to the class puts half its mass on each photo)."""
    fig = plt.figure(figsize=(15, 3.3))
    gs = fig.add_gridspec(1, 4, width_ratios=[2, 2, 2, 1.6])
    main = results.get("gradcam") or next(iter(results.values()))
    a, b = main.composites[0]
    display = np.concatenate([samples[a].display, samples[b].display], axis=1)
    ax = fig.add_subplot(gs[0, 0])
    ax.imshow(display)
    ax.set_title(f"{a} | {b} side by side (one input)", fontsize=8)
    ax.axis("off")
    for k in range(2):
        ax = fig.add_subplot(gs[0, k + 1])
        heat = main.maps[0][k]
        plot_heat_overlay(ax, display, (heat / heat.max().clamp_min(1e-12)).numpy(), colorbar=False)
        ax.set_title(f"{TITLES[main.method]} '{loaded.categories[main.classes[0][k]]}': "
                     f"{main.shares[0, k]:.0%} on the {['left', 'right'][k]}", fontsize=8)  # fmt: skip
    ax = fig.add_subplot(gs[0, 3])
    rng = np.random.default_rng(0)
    for x, (method, res) in enumerate(results.items()):
        values = res.shares.ravel()
        ax.scatter(x + rng.uniform(-0.12, 0.12, values.size), values, s=12, color=COLOURS.get(method), alpha=0.7)
        lo, hi = claims[method].ci if claims and method in claims else bootstrap_ci(values)
        ax.errorbar(x + 0.25, values.mean(), yerr=[[values.mean() - lo], [hi - values.mean()]], fmt="o",
                    color="black", capsize=3, ms=4)  # fmt: skip
    ax.axhline(0.5, color="0.4", ls="--", lw=1, label="chance (0.5)")
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels([TITLES[m] for m in results], fontsize=8)
    ax.set_xlim(-0.5, len(results) - 0.3)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("share of the class's map on its own photo", fontsize=8)
    ax.set_title(f"{len(main.composites)} composites × 2 classes\n(black: mean, 95 % CI)", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    ax.tick_params(labelsize=7)
    fig.suptitle("Two objects, two classes: is the map class-discriminative?", fontsize=10)
    fig.tight_layout()
    return fig


def _rho_band(steps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = np.array([s.spearman for s in steps])
    ci = np.array([bootstrap_ci(s.spearman_per_image) if s.spearman_per_image else (s.spearman, s.spearman)
                   for s in steps])  # fmt: skip
    return mean, ci[:, 0], ci[:, 1]


def baselines_figure(samples, trained: torch.Tensor, randomized: torch.Tensor, edges: torch.Tensor,
                     steps: dict[str, list], loaded, classes=None):  # fmt: skip
    """Left: the trained network's Grad-CAM, the same on a fully re-initialised network, and a Sobel
    edge map (no model); each row labelled with its photo and the class of its maps (``classes``,
    one name per photo). Right: cascading randomisation from the classifier down — Spearman ρ of
    each method's map with the trained one (mean over the photos, band: 95 % bootstrap CI). A map
    that stays above the dotted line after the classifier is re-initialised does not show what the
    classifier uses."""
    fig = plt.figure(figsize=(13, 2.4 * len(samples) + 0.6))
    gs = fig.add_gridspec(len(samples), 5)
    columns = [
        ("trained Grad-CAM", cams.normalize(trained)),
        ("Grad-CAM, all weights random", cams.normalize(randomized)),
        ("Sobel edges (no model)", edges),
    ]
    for i, s in enumerate(samples):
        for j, (title, heat) in enumerate(columns):
            ax = fig.add_subplot(gs[i, j])
            plot_heat_overlay(ax, s.display, heat[i], colorbar=False)
            if i == 0:
                ax.set_title(title, fontsize=8)
            if j == 0:
                row = s.name + (f"\nclass: {classes[i]}" if classes is not None else "")
                ax.text(-0.06, 0.5, row, transform=ax.transAxes, rotation=90, ha="right", va="center", fontsize=8)
    ax = fig.add_subplot(gs[:, 3:])
    labels = [st.randomized_up_to for st in next(iter(steps.values()))]
    for m, st in steps.items():
        mean, lo, hi = _rho_band(st)
        ax.plot(range(len(labels)), mean, marker="o", ms=3, label=TITLES.get(m, m), color=COLOURS.get(m))
        ax.fill_between(range(len(labels)), lo, hi, color=COLOURS.get(m), alpha=0.15, lw=0)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel("Spearman ρ with the trained model's map", fontsize=8)
    ax.set_xlabel("randomised from the top down to …", fontsize=8)
    ax.axhline(0, color="0.5", lw=0.8, label="unrelated maps (0)")
    ax.axhline(SURVIVES, color="0.3", lw=0.8, ls=":", label=f"survives (ρ ≥ {SURVIVES:g})")
    ax.set_ylim(-1.02, 1.02)
    ax.legend(fontsize=7, loc="lower left")
    ax.tick_params(labelsize=7)
    fig.suptitle(f"Baselines and cascading randomisation (Adebayo et al. 2018), {loaded.name}", fontsize=10)
    fig.tight_layout()
    return fig


def cam_explorer(loaded, x: torch.Tensor, samples, *, layer: str):
    """Layer, class rank and photo: Grad-CAM, Grad-CAM++ and Guided Grad-CAM of that class."""
    import ipywidgets

    from .widgets import controls_explorer

    names = [s.name for s in samples]
    spatial = [n for n in loaded.layers if len(loaded.shape(n)) == 3]
    methods = [m for m in cams.applicable(loaded) if m != "cam"]

    def render(layer: str, rank: int, image: str):
        i = names.index(image)
        fig, axes = plt.subplots(1, len(methods), figsize=(3.3 * len(methods), 3))
        for ax, m in zip(axes, methods):
            res = cams.run(m, loaded, x[i : i + 1], target=f"top{rank}", layer=layer)
            if m == "guided_gradcam":
                _guided(ax, res.guided[0])
            else:
                plot_heat_overlay(ax, samples[i].display, cams.normalize(res.upsampled)[0], colorbar=False)
            ax.set_title(f"{TITLES[m]}: {loaded.categories[int(res.targets[0])]}", fontsize=8)
        fig.tight_layout()
        return fig

    return controls_explorer(render, {
        "layer": ipywidgets.Dropdown(options=spatial, value=layer, description="layer"),
        "rank": ipywidgets.IntSlider(value=1, min=1, max=5, description="class rank", continuous_update=False),
        "image": ipywidgets.Dropdown(options=names, value=names[0], description="image")})  # fmt: skip
