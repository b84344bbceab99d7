"""Figure builders and the explorer of notebook 06 (architecture selection, ZF §4.1, Fig. 6). Each
builder returns a matplotlib Figure and never saves it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..analysis import scan, top9
from ..analysis import spectra as architecture
from ..analysis.stats import bootstrap_ci
from .plots import plot_rgb_filters, plot_top9
from .widgets import Explorer, layer_channel_explorer

#: Line styles per twin: zf_norenorm is drawn dashed with open markers over zf's solid line, so
#: that the two coincide visibly instead of one hiding the other.
STYLES = {
    "alexnet": dict(color="tab:red", ls="-", lw=1.6, marker=None),
    "zf": dict(color="tab:blue", ls="-", lw=3.0, marker=None, alpha=0.6),
    "zf_norenorm": dict(color="k", ls="--", lw=1.0, marker="o", ms=3.5, mfc="none"),
}


def layer1_filters_figure(twins: Mapping[str, object], panels: Mapping[str, str], *, identical: Mapping[str, str],
                          title: str = ""):  # fmt: skip
    """ZF Fig. 6 (a)–(c): each twin's layer-1 filters (channel sums, grey = 0) above the RMS of
    every filter (red: ZF's cap 0.1). ``identical`` maps a twin to the twin it equals bit for bit;
    its panel says so."""
    fig = plt.figure(figsize=(13, 5.4), layout="constrained")
    grid = fig.add_gridspec(2, len(panels), height_ratios=[3, 1.3])
    for j, (panel, v) in enumerate(panels.items()):
        w = twins[v].conv_weight("conv1")
        g = architecture.grey_filters(w)
        ax = fig.add_subplot(grid[0, j])
        stride = twins[v].model.features[0].stride[0]
        head = f"({panel}) {v}: {w.shape[0]} filters {w.shape[2]}x{w.shape[3]}, stride {stride}"
        plot_rgb_filters(g[:, None].expand(-1, 3, -1, -1), ncols=6, ax=ax, title=head)
        if v in identical:
            ax.text(0.5, -0.02, f"identical to ({_panel_of(panels, identical[v])}) {identical[v]} bit for bit:\n"
                                "the RMS cap never bound, so it changed nothing",
                    transform=ax.transAxes, ha="center", va="top", fontsize=8.5, color="tab:red")  # fmt: skip
        ax2 = fig.add_subplot(grid[1, j])
        rms = architecture.filter_rms(w)
        ax2.bar(range(len(rms)), rms.numpy(), color="tab:blue")
        ax2.axhline(0.1, color="red", lw=0.8, ls=":", label="RMS cap 0.1")
        ax2.set_title(f"filter RMS (max / median {float(rms.max() / rms.median()):.1f})", fontsize=8)
        ax2.set_xlabel("filter", fontsize=7)
        ax2.tick_params(labelsize=7)
        if j == 0:
            ax2.legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _panel_of(panels: Mapping[str, str], twin: str) -> str:
    return next(p for p, v in panels.items() if v == twin)


def layer2_figure(projections, *, title: str = ""):
    """ZF Fig. 6 (d)/(e): one twin's layer-2 maps, top-9 projections beside their patches."""
    return plot_top9([projections], title=title)


def spectra_figure(filters: Mapping[str, torch.Tensor], measures: Mapping[str, Mapping[str, np.ndarray]], *,
                   cutoff: float = architecture.DATA_CUTOFF, title: str = ""):  # fmt: skip
    """Left: radial power spectrum of each twin's layer-1 filters (mean over filters, 95 % bootstrap
    band), the mid band shaded and the data's band limit dotted. Right: per twin, each filter's
    share of power in the mid band and above the data band (dots) with mean and 95 % CI — the
    numbers behind the claims."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained", width_ratios=[1.2, 1])
    lo_mid, hi_mid = architecture.BANDS["mid"]
    ax.axvspan(lo_mid, hi_mid, color="0.92", lw=0, label="mid band")
    for v, g in filters.items():
        freqs, spec = architecture.radial_power(g)
        f, s = freqs[1:].numpy(), spec[:, 1:].numpy()
        band = np.array([bootstrap_ci(s[:, i], n_boot=400) for i in range(s.shape[1])])
        style = STYLES.get(v, {})
        ax.semilogy(f, s.mean(0), label=v, **style)
        ax.fill_between(f, np.maximum(band[:, 0], 1e-6), band[:, 1], color=style.get("color"), alpha=0.12, lw=0)
    ax.axvline(cutoff, color="grey", ls=":", lw=0.9)
    ax.text(cutoff, 0.02, " data band limit", fontsize=7, va="bottom", transform=ax.get_xaxis_transform())
    ax.set_xlabel("spatial frequency (cycles / input pixel)")
    ax.set_ylabel("normalised power (mean over filters)")
    ax.set_title("Radial power spectrum of the layer-1 filters", fontsize=9)
    ax.legend(fontsize=7.5)
    names = list(measures)
    rng = np.random.default_rng(0)
    for what, offset in (("mid", -0.2), ("above", 0.2)):
        for x, v in enumerate(names):
            vals = measures[v][what]
            colour = STYLES.get(v, {}).get("color", "k")
            ax2.scatter(x + offset + rng.uniform(-0.07, 0.07, len(vals)), vals, s=7, color=colour, alpha=0.4, lw=0,
                        marker="o" if what == "mid" else "^")  # fmt: skip
            lo, hi = bootstrap_ci(vals)
            m = float(np.mean(vals))
            label = None if x else ("mid band (1/12–1/4)" if what == "mid" else f"above {cutoff:g}")
            ax2.errorbar([x + offset], [m], yerr=[[m - lo], [hi - m]], fmt="o" if what == "mid" else "^",
                         color="k", ms=4.5, capsize=3, label=label)  # fmt: skip
    ax2.set_xticks(range(len(names)), names, fontsize=8)
    ax2.set_ylabel("share of a filter's power")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_title("Per filter (dots); mean and 95 % CI (black)", fontsize=9)
    ax2.legend(fontsize=7.5, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


class ArchitectureDrawing:
    """Explorer of notebook 06: one twin's map, its top-9 scanned activations projected."""

    def __init__(self, twins: Mapping[str, object], images, prepare: Callable | None = None):
        self.twins, self.images, self.prepare, self.tops = twins, images, prepare, {}

    def top(self, twin: str, layer: str):
        if (twin, layer) not in self.tops:
            self.tops[twin, layer] = scan.scan_topk(self.twins[twin], self.images, layer=layer, k=9, batch_size=200,
                                                    prepare=self.prepare, progress=False)  # fmt: skip
        return self.tops[twin, layer]

    def __call__(self, layer: str, channel: int, twin: str):
        lm = self.twins[twin]
        channel = min(channel, lm.channels(layer) - 1)
        tp = top9.project_topk(lm, self.top(twin, layer), [channel], self.images, prepare=self.prepare, grey=True)
        return plot_top9([tp], title=f"{twin} {layer} channel {channel}")


def architecture_explorer(twins: Mapping[str, object], images, *, twin: str, layer: str,
                          prepare: Callable | None = None) -> Explorer:  # fmt: skip
    """Layer, channel and twin controls over :class:`ArchitectureDrawing`, opening on the channel of
    ``layer`` whose strongest activation is largest (a map that fires)."""
    import ipywidgets

    drawing = ArchitectureDrawing(twins, images, prepare)
    start = int(drawing.top(twin, layer).values[:, 0].argmax())
    spatial = {n: twins[twin].channels(n) for n in ("relu1", "relu2", "relu3", "relu4", "relu5")}
    extra = {"twin": ipywidgets.Dropdown(options=list(twins), value=twin)}
    return layer_channel_explorer(drawing, spatial, layer=layer, channel=start, extra=extra)
