"""Figures and explorers of notebooks 11 (FMI, Xia et al. 2016 §2) and 12 (RMCI, PMCI vs Gatys, §3),
built from the results of :mod:`zfhelpers.inversion` (compute modules never import matplotlib)."""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from ..analysis import texture
from ..inversion.fmi import FMILayer, collapsed
from ..inversion.optimize import capture_codes, get_recipe, invert
from ..inversion.rmci import VARIANT_LABELS, RMCILayer, rmci_layer
from ..inversion.style import STATISTICS, StyleComparison
from .explorers import DEAD_COLOUR, blank, firing_channel, say, show
from .widgets import Drawing, Explorer, controls_explorer, layer_channel_explorer, new_figure

PANEL = 1.25  # inches per image panel
FMI_COLOUR, PLAIN_COLOUR = "tab:blue", "tab:orange"
METHOD_COLOURS = {"gatys": "tab:purple", "pmci": "tab:green", "content": "0.55"}
METHOD_NAMES = {"gatys": "Gatys (Gram)", "pmci": "PMCI (channel sums)", "content": "content photo"}


def _image(ax, img, title: str = "", *, colour: str | None = None, fontsize: float = 7) -> None:
    ax.imshow(np.asarray(img))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize, color=colour or "black", pad=2)
    if colour:
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(2)


# --------------------------------------------------------------------------- 11: FMI
def fmi_grid(study: Mapping[str, FMILayer], photos: Mapping[str, np.ndarray], *, title: str = ""):
    """One block per layer: a row per photo with the photo, its plain inversion and the FMI of each
    filter — the same filters on every photo, so a column compares one filter across photos.
    Collapsed FMIs (filter peaks lower on the result than on the photo) are framed in red."""
    first = next(iter(study.values()))
    n_img, k = first.fmi.shape[:2]
    fig = plt.figure(figsize=(PANEL * (k + 2) + 0.6, (PANEL + 0.28) * n_img * len(study) + 0.5), layout="constrained")
    subs = np.atleast_1d(fig.subfigures(len(study), 1))
    for sub, (layer, s) in zip(subs, study.items()):
        axes = sub.subplots(n_img, k + 2, squeeze=False)
        sub.suptitle(f"{layer}: filters {', '.join(map(str, s.filters))}", fontsize=9, x=0.02, ha="left")
        for i, name in enumerate(s.names):
            _image(axes[i, 0], photos[name], "photo" if i == 0 else "")
            axes[i, 0].set_ylabel(name, fontsize=8)
            _image(axes[i, 1], s.plain[i], "plain inversion" if i == 0 else "")
            for j, f in enumerate(s.filters):
                bad = bool(s.collapsed[i, j])
                label = f"filter {f}" if i == 0 else ""
                _image(
                    axes[i, 2 + j],
                    s.fmi[i, j],
                    f"{label} (collapsed)".strip() if bad else label,
                    colour=DEAD_COLOUR if bad else None,
                )
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _dots(ax, x: float, values: np.ndarray, hollow: np.ndarray, colour: str) -> None:
    spread = np.linspace(-0.14, 0.14, len(values)) if len(values) > 1 else np.zeros(1)
    ax.scatter((x + spread)[~hollow], values[~hollow], s=12, color=colour, alpha=0.55, lw=0)
    if hollow.any():
        ax.scatter((x + spread)[hollow], values[hollow], s=16, facecolor="none", edgecolor=DEAD_COLOUR, lw=0.9)


def texture_depth_figure(
    study: Mapping[str, FMILayer], values: Mapping[str, Mapping[str, torch.Tensor]], *, seed: int = 0
):
    """Per metric, each FMI image as a dot (collapsed ones as red rings), the FMI mean with its 95 %
    bootstrap interval, and the plain inversion of the same layer and photos as the control."""
    from ..analysis.stats import bootstrap_ci

    layers = list(study)
    x = np.arange(len(layers))
    labels = {
        "colourfulness": "colourfulness (Hasler & Süsstrunk)",
        "spectral_entropy": "spectral entropy",
        "coherence": "orientation coherence",
    }
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.4), layout="constrained")
    for ax, metric in zip(axes, texture.METRICS):
        means, lows, highs = [], [], []
        for i, layer in enumerate(layers):
            v = values[layer][metric].flatten().numpy()
            _dots(ax, i, v, study[layer].collapsed.flatten().numpy(), FMI_COLOUR)
            lo, hi = bootstrap_ci(v, seed=seed)
            means.append(v.mean())
            lows.append(v.mean() - lo)
            highs.append(hi - v.mean())
        ax.errorbar(
            x - 0.25, means, yerr=[lows, highs], color="black", marker="o", ms=4, capsize=3, label="FMI mean, 95 % CI"
        )
        plain = np.stack([values[layer][f"plain {metric}"].numpy() for layer in layers])  # L×I
        ax.plot(x + 0.25, plain.mean(1), color=PLAIN_COLOUR, marker="s", ms=5, label="plain inversion (control)")
        for i in range(plain.shape[1]):
            ax.scatter(x + 0.25, plain[:, i], color=PLAIN_COLOUR, s=10, alpha=0.6, lw=0)
        ax.set_xticks(x, layers, fontsize=8)
        ax.set_title(labels[metric], fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].scatter([], [], s=12, color=FMI_COLOUR, label="one FMI image (filter × photo)")
    axes[0].scatter([], [], s=16, facecolor="none", edgecolor=DEAD_COLOUR, label="collapsed FMI (included)")
    handles, labels_ = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels_,
        loc="outside upper center",
        ncol=4,
        fontsize=7,
        frameon=False,
        title="FMI textures by depth, beside the plain inversion of the same layer",
        title_fontsize=10,
    )
    return fig


def specificity_figure(sp: texture.Specificity, names: tuple[str, str], filters: Mapping[str, list[int]] | None = None):
    """Per layer the texture distances between the filters' FMIs on the two photos (the diagonal,
    outlined, is the same filter), then the accuracy against its permutation null. ``filters``:
    layer → the filter indices, for the tick labels (default: 0…K−1)."""
    layers = list(sp.distances)
    fig, axes = plt.subplots(1, len(layers) + 1, figsize=(2.1 * (len(layers) + 1) + 0.6, 2.9), layout="constrained")
    vmax = max(float(d[0].max()) for d in sp.distances.values())
    for ax, layer in zip(axes, layers):
        d = sp.distances[layer][0].numpy()
        im = ax.imshow(d, cmap="viridis_r", vmin=0, vmax=vmax)
        for i in range(len(d)):
            ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, ec="white", lw=1.5))
        ax.scatter(d.argmin(1), np.arange(len(d)), s=10, color="red", marker="o", lw=0)
        ax.set_title(f"{layer}: {sp.per_layer[layer]:.0%} identified", fontsize=8)
        ticks = (filters or {}).get(layer, list(range(len(d))))
        ax.set_xticks(range(len(d)), ticks)
        ax.set_yticks(range(len(d)), ticks)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(f"filter on {names[1]}", fontsize=7)
        ax.set_ylabel(f"filter on {names[0]}", fontsize=7)
    fig.colorbar(im, ax=axes[: len(layers)], shrink=0.8, label="texture distance", pad=0.01)
    ax = axes[-1]
    ax.hist(
        sp.null,
        bins=np.arange(-0.5 / sp.decisions, 1 + 1 / sp.decisions, 1 / sp.decisions) if sp.decisions <= 60 else 30,
        color="0.6",
    )
    ax.axvline(sp.chance, color="0.3", ls="--", lw=1, label=f"chance {sp.chance:.2f}")
    ax.axvline(sp.accuracy, color="red", lw=1.5, label=f"observed {sp.accuracy:.2f}")
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("share identified", fontsize=7)
    floor = sp.p_value <= 1.5 / (sp.n_perm + 1)
    p_text = f"p ≤ {sp.p_value:.0e}" if floor else f"p = {sp.p_value:.2g}"
    ax.set_title(f"{sp.n_perm} shuffles of filter labels ({p_text})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False, loc="upper center")
    fig.suptitle(
        "Is a filter's texture more like its own on the other photo than like other filters'? "
        "(white: same filter; red dot: nearest on the other photo)",
        fontsize=9,
    )
    return fig


class FMIDrawing(Drawing):
    """The photo and the FMI of the chosen filter, computed on demand and cached."""

    def __init__(self, loaded, sample, recipe, seed: int = 0):
        self.lm, self.sample, self.recipe, self.seed = loaded, sample, get_recipe(recipe), seed
        self._cache: dict[tuple[str, int], tuple[np.ndarray, bool]] = {}
        self.figure = new_figure(6.2, 3.2)
        self.ax_photo, self.ax_fmi = self.figure.subplots(1, 2)
        _image(self.ax_photo, sample.display, sample.name)
        self.im, self.msg = blank(self.ax_fmi)
        self.figure.tight_layout()

    def codes(self, layer: str) -> torch.Tensor:
        return capture_codes(self.lm, self.sample.tensor, [layer])[layer][0]

    def __call__(self, layer: str, channel: int) -> str | None:
        key = (layer, channel)
        if key not in self._cache:
            from ..inversion.codes import feature_map

            code = self.codes(layer)[None]
            target = feature_map(code, channel)
            res = invert(
                self.lm,
                {layer: target},
                self.recipe,
                image_shape=tuple(self.sample.tensor.shape[-2:]),
                seed=self.seed,
                progress=False,
            )
            got = capture_codes(self.lm, res.images, [layer])[layer]
            self._cache[key] = (res.display[0].numpy(), bool(collapsed(got, code, [channel])[0]))
        img, bad = self._cache[key]
        show(self.im, self.ax_fmi, img)
        silent = not bool(self.codes(layer)[channel].any())
        self.ax_fmi.set_title(
            f"FMI {layer}, filter {channel}" + (" (collapsed)" if bad else ""),
            fontsize=8,
            color=DEAD_COLOUR if bad else "black",
        )
        say(self.msg, None)
        return f"filter {channel} is silent on {self.sample.name}" if silent else None


def fmi_explorer(loaded, sample, *, recipe, layer: str, seed: int = 0) -> Explorer:
    """Layer and filter sliders; each move inverts one FMI (seconds on a CPU), opening on a filter
    that fires on the photo."""
    spatial = {n: loaded.channels(n) for n in loaded.layers if n.startswith("relu")}
    drawing = FMIDrawing(loaded, sample, recipe, seed)
    return layer_channel_explorer(drawing, spatial, layer=layer, channel=firing_channel(drawing.codes(layer)))


# --------------------------------------------------------------------------- 12: RMCI, PMCI vs Gatys
def rmci_grid(study: Mapping[str, RMCILayer], photo: np.ndarray, *, title: str = ""):
    """Rows: each RMCI variant × draw (labelled); columns: layers. Each panel says how much of its
    modified code the image reproduces (⟨Φ(x*), ψ⟩ / ‖ψ‖²; about 0 = nothing, a grey image)."""
    first = next(iter(study.values()))
    n_var, n_draw = first.display.shape[:2]
    rows, cols = n_var * n_draw, len(study)
    fig = plt.figure(figsize=(PANEL * 1.15 * (cols + 1) + 1.6, (PANEL * 1.15 + 0.3) * rows + 0.4), layout="constrained")
    grid = fig.add_gridspec(rows, cols + 1)
    _image(fig.add_subplot(grid[:, 0]), photo, "content", fontsize=8)
    for j, (layer, s) in enumerate(study.items()):
        for v, variant in enumerate(s.variants):
            for d in range(n_draw):
                r = v * n_draw + d
                ax = fig.add_subplot(grid[r, j + 1])
                share = float(s.share[v, d])
                _image(ax, s.display[v, d], layer if r == 0 else "", fontsize=8)
                ax.text(
                    0.03,
                    0.04,
                    f"ψ kept {share:.2f}",
                    transform=ax.transAxes,
                    fontsize=6,
                    color="white",
                    bbox=dict(fc="black", alpha=0.45, lw=0, pad=1),
                )
                if j == 0:
                    ax.set_ylabel(f"{VARIANT_LABELS[variant]}\ndraw {d + 1}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def style_grid(cmp: StyleComparison, photo: np.ndarray, paintings: Mapping[str, np.ndarray], *, title: str = ""):
    """Rows: paintings (labelled); columns: content, style, then each method's result."""
    cols = 2 + len(cmp.methods)
    fig, axes = plt.subplots(
        len(cmp.paintings),
        cols,
        figsize=(PANEL * 1.5 * cols + 0.4, PANEL * 1.6 * len(cmp.paintings) + 0.5),
        squeeze=False,
        layout="constrained",
    )
    for r, p in enumerate(cmp.paintings):
        panels = [(photo, "content"), (paintings[p], "style")]
        panels += [(cmp.display[p, m], METHOD_NAMES[m]) for m in cmp.methods]
        for c, (img, name) in enumerate(panels):
            _image(axes[r, c], img, name if r == 0 else "", fontsize=8)
        axes[r, 0].set_ylabel(f"style: {p.replace('_', ' ')}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def style_errors_figure(cmp: StyleComparison):
    """Left: each method's own-statistic error per step (Gatys: the Gram error curve). Right: what was
    measured at the end — both statistics' relative errors for the content photo, PMCI and Gatys,
    per style layer (dots) and their mean (bars)."""
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.2), layout="constrained", gridspec_kw={"width_ratios": [1.3, 1, 1]})
    styles = ["-", "--", ":", "-."]
    for i, p in enumerate(cmp.paintings):
        for m in cmp.methods:
            c = cmp.curves[p, m].numpy()
            axes[0].plot(
                np.arange(1, len(c) + 1),
                c,
                color=METHOD_COLOURS[m],
                ls=styles[i % 4],
                lw=1.2,
                label=f"{METHOD_NAMES[m].split(' ')[0]}: {STATISTICS[m]} error, {p.replace('_', ' ')}",
            )
    axes[0].set_xlabel("step", fontsize=8)
    axes[0].set_ylabel("relative error of own statistic", fontsize=8)
    axes[0].set_title("convergence (mean over style layers)", fontsize=9)
    axes[0].legend(fontsize=6, frameon=False)
    who = ["content", *cmp.methods]
    for ax, stat in zip(axes[1:], ("pmci", "gatys")):
        for i, w in enumerate(who):
            vals = torch.stack([cmp.errors[p, w, stat] for p in cmp.paintings]).flatten().numpy()
            ax.bar(i, vals.mean(), color=METHOD_COLOURS[w], alpha=0.75, width=0.6)
            ax.scatter(np.full(len(vals), i) + np.linspace(-0.18, 0.18, len(vals)), vals, s=9, color="black", lw=0)
        ax.set_xticks(range(len(who)), [METHOD_NAMES[w].replace(" (", "\n(") for w in who], fontsize=7)
        ax.set_title(f"relative error of the {STATISTICS[stat]}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[1].set_ylabel("error vs the painting (dots: style layers)", fontsize=7)
    fig.suptitle("PMCI vs Gatys: each method's statistic, measured on both results", fontsize=10)
    return fig


def rmci_explorer(loaded, sample, *, recipe, layers, seed: int = 0) -> Explorer:
    """Layer, draw seed and variant controls; each move inverts one random modification."""
    names = [n for n in loaded.layers if n.startswith("relu")]
    controls = {
        "layer": ipywidgets.SelectionSlider(
            options=names,
            value=layers[0],
            description="layer",
            continuous_update=False,
            layout=ipywidgets.Layout(width="420px"),
        ),
        "draw": ipywidgets.IntSlider(value=seed, min=0, max=99, description="draw seed", continuous_update=False),
        "variant": ipywidgets.ToggleButtons(options=list(VARIANT_LABELS), description="RMCI"),
    }
    fig = new_figure(3.4, 3.4)
    ax = fig.subplots()
    im, msg = blank(ax)
    fig.tight_layout()

    class _RMCIDrawing(Drawing):
        figure = fig

        def __call__(self, layer: str, draw: int, variant: str) -> str | None:
            res = rmci_layer(
                loaded,
                sample.tensor,
                layer=layer,
                draws=1,
                variants=[variant],
                recipe=recipe,
                seed=draw,
                progress=False,
            )
            show(im, ax, res.display[0, 0].numpy())
            ax.set_title(f"RMCI {layer}, {VARIANT_LABELS[variant]}, seed {draw}", fontsize=7)
            say(msg, None)
            return f"share of ψ reproduced {float(res.share[0, 0]):.2f}"

    return controls_explorer(_RMCIDrawing(), controls)
