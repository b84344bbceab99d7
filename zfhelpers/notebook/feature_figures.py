"""Figure builders of notebook 01 ("direct visualisation": feature maps and filters; ZF §4.1 starts
from the first-layer filters, Fig. 6). Each returns a matplotlib Figure and never saves it."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import plots

GRID_COLUMNS = 8


def feature_maps_figure(sample, acts: dict[str, torch.Tensor], *, n_maps: int = 32, crop: int | None = None):
    """The input beside a grid of the first ``n_maps`` feature maps of each layer in ``acts``
    (C×H×W each), every map scaled to its own min..max; panel widths are chosen so that all panels
    have the same height (no blank bands)."""
    layers = list(acts)
    shown = {k: min(n_maps, v.shape[0]) for k, v in acts.items()}
    aspect = max(math.ceil(n / GRID_COLUMNS) for n in shown.values()) / GRID_COLUMNS  # grid height / width
    width = 12.0
    unit = width / (aspect + len(layers))  # width of one grid panel; the input is aspect × unit wide
    fig = plt.figure(figsize=(width, aspect * unit + 0.75))
    gs = fig.add_gridspec(1, len(layers) + 1, width_ratios=[aspect] + [1] * len(layers), wspace=0.04)
    ax = fig.add_subplot(gs[0])
    ax.imshow(sample.display)
    ax.set_title(f"input ({sample.name}, {crop or sample.display.shape[0]} px)", fontsize=8.5)
    ax.axis("off")
    for g, name in enumerate(layers, 1):
        a = acts[name]
        title = f"{name}: channels 0–{shown[name] - 1} of {a.shape[0]}, {a.shape[1]}×{a.shape[2]}"
        plots.plot_feature_maps(a, channels=range(shown[name]), ax=fig.add_subplot(gs[g]), ncols=GRID_COLUMNS,
                                title=title)  # fmt: skip
    fig.suptitle("Feature maps, each channel scaled to its own min..max (yellow = high; a flat map is one colour)",
                 fontsize=9.5)  # fmt: skip
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.01, top=1 - 0.75 / (aspect * unit + 0.75) + 0.02)
    return fig


def filters_figure(first: torch.Tensor, second: torch.Tensor, *, names: tuple[str, str],
                   near_zero: np.ndarray | None = None):  # fmt: skip
    """Left: first-layer filters (O×3×k×k) as RGB tiles, grey = 0, each scaled to its own peak;
    filters flagged in ``near_zero`` are crossed out (their tiles show only rounding noise). Right:
    a deeper layer's filters as signed slices (red +, blue −). Panel widths give equal heights."""
    rgb_cols = GRID_COLUMNS
    rgb_rows = math.ceil(first.shape[0] / rgb_cols)
    depthwise = second.shape[1] == 1
    slice_rows, slice_cols = (8, 16) if depthwise else (min(8, second.shape[0]), min(16, second.shape[1]))
    ratios = [rgb_cols / rgb_rows, slice_cols / slice_rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 12 / sum(ratios) + 0.7), gridspec_kw={"width_ratios": ratios})
    k = first.shape[2]
    title = f"{names[0]}: {first.shape[0]} RGB filters {k}×{first.shape[3]} (grey = 0)"
    plots.plot_rgb_filters(first, ncols=rgb_cols, ax=axes[0], title=title)
    if near_zero is not None:
        for i in np.flatnonzero(near_zero):
            r, c = divmod(int(i), rgb_cols)
            cx, cy = 1 + c * (k + 1) + (k - 1) / 2, 1 + r * (first.shape[3] + 1) + (first.shape[3] - 1) / 2
            axes[0].plot([cx - k / 2, cx + k / 2], [cy - k / 2, cy + k / 2], color="red", lw=1)
            axes[0].plot([cx - k / 2, cx + k / 2], [cy + k / 2, cy - k / 2], color="red", lw=1)
        axes[0].set_xlabel(f"crossed out: {int(near_zero.sum())} filters with almost no weight", fontsize=8)
    what = (f"{second.shape[0]} depthwise {second.shape[2]}×{second.shape[3]} filters (first {slice_rows * slice_cols})"
            if depthwise else f"{slice_rows} filters × {slice_cols} input channels of "
            f"{second.shape[0]}×{second.shape[1]}×{second.shape[2]}×{second.shape[3]}")  # fmt: skip
    plots.plot_filter_slices(second, n_out=slice_rows, n_in=slice_cols, ax=axes[1],
                             title=f"{names[1]}: {what}, red + / blue −")  # fmt: skip
    axes[0].axis("on")
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    for side in axes[0].spines.values():
        side.set_visible(False)
    fig.tight_layout(pad=0.4)
    return fig
