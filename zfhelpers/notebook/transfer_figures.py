"""Figures of notebook 14 (ZF §5: Fig. 9 / Tables 4–5 and Table 7 analogues)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..analysis.transfer import LayerProbe, TransferCurve, fit_softmax, mean_ci, one_thread
from ..data import digits
from .widgets import Drawing, Explorer, controls_explorer, new_figure


def _band(ax, x, rows: np.ndarray, *, label: str, color: str, marker: str):
    stats = np.array([mean_ci(rows[:, j]) for j in range(rows.shape[1])])
    for r in rows:  # each seed, faint: the spread the interval summarises
        ax.plot(x, r, color=color, alpha=0.25, lw=0.8)
    ax.fill_between(x, stats[:, 1], stats[:, 2], color=color, alpha=0.18, lw=0)
    ax.plot(x, stats[:, 0], color=color, marker=marker, lw=2, label=label)


def transfer_curve_figure(curve: TransferCurve, *, chance: float, examples=None, title: str = ""):
    """Test accuracy vs training examples per class (log axis) of both arms: mean over seeds with
    its 95 % t interval (band) and every seed (thin lines); chance as a dashed line. ``examples``
    (optional, N×28×28 uint8) are shown as a strip of the digits the twin sees."""
    fig = plt.figure(figsize=(10.0, 5.6 if examples is not None else 4.6), layout="constrained")
    if examples is not None:
        top, ax = fig.subfigures(2, 1, height_ratios=[1, 5])
        strip = top.subplots(1, len(examples))
        for a, img in zip(np.atleast_1d(strip), examples):
            a.imshow(np.asarray(img), cmap="gray", vmin=0, vmax=255)
            a.set_axis_off()
        ax = ax.subplots()
    else:
        ax = fig.subplots()
    x = np.asarray(curve.sizes)
    _band(ax, x, curve.transfer, label="classifier only (frozen twin features + softmax)", color="tab:blue",
          marker="o")  # fmt: skip
    _band(ax, x, curve.scratch, label="same network trained from scratch", color="tab:orange", marker="s")
    ax.axhline(chance, color="0.3", ls="--", lw=1, label=f"chance ({chance:.0%})")
    ax.set_xscale("log")
    ax.set_xticks(x, [str(v) for v in x])
    ax.minorticks_off()
    ax.set_ylim(0, 1)
    ax.set_xlabel("training examples per class")
    ax.set_ylabel(f"test accuracy ({curve.n_test} held-out digits)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or f"Transfer vs from scratch, {len(curve.seeds)} seeds (band: 95 % CI)", fontsize=10)
    return fig


def probe_figure(probe: LayerProbe, *, chance: float, labels: list[str] | None = None, title: str = ""):
    """Probe accuracy per layer: every seed (dots), mean with its 95 % t interval, chance line."""
    fig, ax = plt.subplots(figsize=(10.0, 4.4), layout="constrained")
    x = np.arange(len(probe.layers))
    stats = np.array([mean_ci(probe.accuracy[:, j]) for j in x])
    jitter = np.linspace(-0.12, 0.12, probe.accuracy.shape[0])
    for i, row in enumerate(probe.accuracy):
        ax.plot(x + jitter[i], row, "o", color="0.6", ms=3, alpha=0.6, label="one seed" if i == 0 else None)
    ax.errorbar(x, stats[:, 0], yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]], color="tab:blue",
                marker="D", lw=2, capsize=4, label="mean, 95 % CI")  # fmt: skip
    ax.axhline(chance, color="0.3", ls="--", lw=1, label=f"chance ({chance:.0%})")
    ax.set_xticks(x, labels or probe.layers)
    ax.set_ylim(0, 1)
    ax.set_xlabel("layer of the twin (features average-pooled to a fixed grid)")
    ax.set_ylabel(f"test accuracy ({probe.n_test} held-out digits)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title or f"Linear probe per layer, {probe.n_per_class} digits per class", fontsize=10)
    return fig


class ProbeDrawing(Drawing):
    """The probe's confusion matrix on the held-out digits for one layer and training size."""

    def __init__(self, features: dict[str, np.ndarray], labels, pool, test, *, seed: int = 0,
                 weight_decay: float = 1e-3):  # fmt: skip
        self.features, self.labels, self.pool, self.test = features, np.asarray(labels), pool, test
        self.seed, self.weight_decay = seed, weight_decay
        self.figure = new_figure(4.6, 4.2)
        self.ax = self.figure.add_subplot(1, 1, 1)
        self.im = self.ax.imshow(np.zeros((10, 10)), cmap="Blues", vmin=0, vmax=1)
        self.ax.set_xticks(range(10))
        self.ax.set_yticks(range(10))
        self.ax.set_xlabel("predicted digit")
        self.ax.set_ylabel("true digit")
        self.figure.colorbar(self.im, ax=self.ax, fraction=0.046, label="fraction of the true digit")

    def __call__(self, layer: str, per_class: int) -> str | None:
        idx = digits.sample_per_class(self.labels, per_class, seed=self.seed, pool=self.pool)
        f = self.features[layer]
        with one_thread():
            predict = fit_softmax(f[idx], self.labels[idx], weight_decay=self.weight_decay)
            pred = predict(f[self.test])
        truth = self.labels[self.test]
        conf = np.zeros((10, 10))
        np.add.at(conf, (truth, pred), 1)
        self.im.set_data(conf / conf.sum(1, keepdims=True).clip(min=1))
        self.ax.set_title(f"{layer}, {per_class}/class: accuracy {(pred == truth).mean():.1%}", fontsize=9)
        return None


def probe_explorer(features: dict[str, np.ndarray], labels, pool, test, *, layer: str, per_class: int = 5,
                   weight_decay: float = 1e-3) -> Explorer:  # fmt: skip
    """Layer and training-size controls over :class:`ProbeDrawing`."""
    import ipywidgets

    drawing = ProbeDrawing(features, labels, pool, test, weight_decay=weight_decay)
    sizes = digits.valid_sizes(labels, pool)
    controls = {
        "layer": ipywidgets.Dropdown(options=list(features), value=layer, description="layer"),
        "per_class": ipywidgets.IntSlider(value=per_class, min=1, max=min(sizes.stop - 1, 50),
                                          description="per class", continuous_update=False),
    }  # fmt: skip
    return controls_explorer(drawing, controls)
