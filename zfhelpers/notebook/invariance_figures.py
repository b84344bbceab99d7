"""Figures of notebook 05 (ZF §4.2, Fig. 5): distances at layer 1 and layer 7 and p(true class)
under vertical shift, zoom and rotation, and an explorer over one transformed image."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..analysis import invariance

#: Colours that match the photos' names (an orange drawn orange, coffee drawn coffee-brown);
#: other photos take tab10 colours not used here.
NAMED_COLOURS = {"orange": "#f28e1c", "coffee": "#6f4e37", "chelsea": "#1f77b4", "squirrel": "#2ca02c",
                 "camera": "#7f7f7f", "rocket": "#9467bd", "astronaut": "#d62728"}  # fmt: skip
UNITS = {"translate": "vertical shift (px)", "scale": "zoom factor", "rotate": "rotation (degrees)"}
EXAMPLES = {"translate": 40, "scale": 1.6, "rotate": 90}


def colours(names: Sequence[str]) -> dict[str, str]:
    """A colour per photo: its named colour, else the next unused tab10 colour."""
    spare = [c for c in plt.get_cmap("tab10").colors if _hex(c) not in NAMED_COLOURS.values()]
    out, k = {}, 0
    for name in names:
        if name in NAMED_COLOURS:
            out[name] = NAMED_COLOURS[name]
        else:
            out[name] = _hex(spare[k % len(spare)])
            k += 1
    return out


def _hex(rgb) -> str:
    return "#" + "".join(f"{round(v * 255):02x}" for v in rgb[:3])


def invariance_figure(curves: dict[str, invariance.InvarianceCurves], x, names: Sequence[str], loaded, *,
                      symmetric: Sequence[str] = ()):  # fmt: skip
    """ZF Fig. 5 as a 3×4 grid: per transformation, the photos transformed by an example amount,
    the layer-1 distance, the layer-7 distance and p(true class) against the amount; the
    symmetric photos dashed."""
    fig, axes = plt.subplots(3, 4, figsize=(15, 10), gridspec_kw={"width_ratios": [1.25, 1, 1, 1]})
    colour = colours(names)
    for r, (kind, c) in enumerate(curves.items()):
        shown = invariance.transform(x, kind, EXAMPLES[kind])
        tiles = [loaded.preprocess.denormalize(t).permute(1, 2, 0).clamp(0, 1).numpy() for t in shown]
        axes[r, 0].imshow(np.concatenate(tiles, axis=1))
        axes[r, 0].set_title(f"{kind} by {EXAMPLES[kind]}", fontsize=9)
        axes[r, 0].axis("off")
        panels = [(c.d_low, f"‖Δ‖ at layer 1 ({c.low_layer})"), (c.d_high, f"‖Δ‖ at layer 7 ({c.high_layer})"),
                  (c.p_true, "p(true class)")]  # fmt: skip
        for ax, (values, title) in zip(axes[r, 1:], panels):
            for i, name in enumerate(names):
                label = name + (" (symmetric)" if name in symmetric else "")
                ax.plot(c.amounts, values[i], marker="o", ms=2.5, color=colour[name], label=label,
                        ls="--" if name in symmetric else "-")  # fmt: skip
            ax.set_xlabel(UNITS[kind], fontsize=8)
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=7)
        axes[r, 3].set_ylim(-0.02, 1.02)
    axes[0, 3].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Invariance (ZF Fig. 5), {loaded.name}: distance from the untransformed image's features, "
                 "and p(true class)", fontsize=11)  # fmt: skip
    fig.tight_layout()
    return fig


def kept_table(curves: dict[str, invariance.InvarianceCurves], names: Sequence[str]) -> str:
    """Per photo, the share of p(true class) kept under each transformation (the claims' measure)."""
    head = f"{'photo':10} " + " ".join(f"{k:>10}" for k in curves)
    rows = [head]
    for i, name in enumerate(names):
        kept = [invariance.retained(k, c.amounts, c.p_true[i]) for k, c in curves.items()]
        rows.append(f"{name:10} " + " ".join(f"{v:10.2f}" for v in kept))
    return "\n".join(rows)


def invariance_explorer(loaded, x, samples, labels: Sequence[int]):
    """Transformation, amount and photo: the transformed photo with p(true class) and its top class."""
    import ipywidgets
    import torch

    from .widgets import controls_explorer

    names = [s.name for s in samples]

    def render(kind: str, amount: float, image: str):
        i = names.index(image)
        amount = amount if kind != "scale" else 1 + max(amount, 0) / 100
        t = invariance.transform(x[i : i + 1], kind, amount)
        with torch.inference_mode():
            p = loaded.model(t).softmax(1)[0]
        fig, ax = plt.subplots(figsize=(3.6, 3.8))
        ax.imshow(loaded.preprocess.denormalize(t[0]).permute(1, 2, 0).clamp(0, 1).numpy())
        top = int(p.argmax())
        ax.set_title(f"{kind} {amount:g}: p({loaded.categories[labels[i]]}) = {float(p[labels[i]]):.2f}\n"
                     f"top class: {loaded.categories[top]} ({float(p[top]):.2f})", fontsize=8)  # fmt: skip
        ax.axis("off")
        return fig

    return controls_explorer(render, {
        "kind": ipywidgets.Dropdown(options=list(invariance.KINDS), value="rotate", description="transform"),
        "amount": ipywidgets.IntSlider(value=90, min=-60, max=350, step=10, description="amount",
                                       continuous_update=False),
        "image": ipywidgets.Dropdown(options=names, value=names[0], description="image")})  # fmt: skip
