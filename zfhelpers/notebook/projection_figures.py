"""Figure builders of notebooks 02 (deconvnet, ZF §2.1) and 09 (backward rules, Springenberg et al.
2015; sanity check, Adebayo et al. 2018). Each returns a matplotlib Figure and never saves it.

Projections are drawn as in ZF's figures: grey is zero, colour saturates at a high percentile of
the projection's magnitude (:func:`zfhelpers.data.display.projection_rgb`); for grey inputs
(Fashion-MNIST replicated to RGB) the channel sum is shown in grey, which is all a grey image can
excite."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..analysis.projections import high_frequency_share
from ..data.display import projection_rgb, support_box

RULE_COLOURS = {"gradient": "tab:blue", "deconvnet": "tab:green", "guided": "tab:purple"}


def projection_image(projection: torch.Tensor, *, grey: bool = False) -> np.ndarray:
    """3×H×W signed projection → H×W×3 display image, grey = 0 (channel sum in grey if ``grey``)."""
    p = projection.detach()
    return projection_rgb(p.sum(0, keepdim=True).expand(3, -1, -1) if grey else p)


def _off(axes) -> None:
    for ax in np.atleast_1d(axes).flat:
        ax.axis("off")


def _figure(nrows: int, ncols: int, width: float, height: float):
    """Subplots under constrained layout: titles never overlap the row above, margins stay thin."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, hspace=0.02, wspace=0.02)
    return fig, axes


def _finish(fig, title: str = "", *, fontsize: float = 9.5) -> None:
    if title:
        fig.suptitle(title, fontsize=fontsize)


def _power_of_ten(x: float) -> str:
    """1e4 → '10⁴' (for labels)."""
    exponent = round(math.log10(x))
    if not math.isclose(x, 10.0**exponent):
        return f"{x:g}"
    return "10" + str(exponent).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


# --------------------------------------------------------------------------- 02: Fig. 1 path
def deconv_path_figure(display: np.ndarray, trace, *, grey: bool = False, max_panels: int = 10, title: str = ""):
    """ZF Fig. 1 on a real image: one unit's signal on its way down the explicit mirror. Each panel
    is the L2 norm over channels after an unpool or filter step, zoomed to the part of the map that
    covers the final support (red box); the last panel is the projection itself."""
    stages = [(n, s) for n, s in trace.stages if "skip" not in n]
    keep = [stages[0]] + [st for st in stages[1:-1] if "unpool" in st[0] or "filter" in st[0]]
    if len(keep) > max_panels - 2:
        keep = keep[:: int(math.ceil(len(keep) / (max_panels - 2)))]
    panels = len(keep) + 2
    fig, axes = _figure(1, panels, 1.75 * panels, 2.35)
    axes = axes[0]
    axes[0].imshow(display, cmap="gray" if display.ndim == 2 else None)
    y0, y1, x0, x1 = support_box(trace.image[0])
    axes[0].add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="red", lw=1.2))
    axes[0].set_title("input + support", fontsize=7.5)
    big_h, big_w = trace.image.shape[-2:]
    for ax, (name, signal) in zip(axes[1:-1], keep):
        idx, _, step = name.partition(": ")
        norm = signal[0].norm(dim=0).numpy()
        sy, sx = norm.shape[0] / big_h, norm.shape[1] / big_w
        cy0, cy1 = int(y0 * sy), max(int(math.ceil(y1 * sy)), int(y0 * sy) + 3)
        cx0, cx1 = int(x0 * sx), max(int(math.ceil(x1 * sx)), int(x0 * sx) + 3)
        ax.imshow(norm[cy0:cy1, cx0:cx1], cmap="magma", interpolation="nearest")
        label = trace.names.get(int(idx), f"module {idx}")
        ax.set_title(f"{step} {label}\n{norm.shape[0]}×{norm.shape[1]}, {signal.shape[1]} ch", fontsize=6.5)
    axes[-1].imshow(projection_image(trace.image[0], grey=grey)[y0:y1, x0:x1], interpolation="nearest")
    axes[-1].set_title("pixels (grey = 0)", fontsize=7.5)
    _off(axes)
    _finish(fig, title or "Deconvnet path of one activation: unpool (switches) → rectify → filter (transposed); "
            "norm over channels at each stage, zoomed to the red box", fontsize=8.5)  # fmt: skip
    return fig


# --------------------------------------------------------------------------- 02: per-layer projections
def layer_projections_figure(display: np.ndarray, rows, *, rule: str = "deconvnet", grey: bool = False,
                             title: str = ""):  # fmt: skip
    """ZF-style panel for one image: per layer (row) and channel, the feature map with its strongest
    unit marked, that unit's projection (grey = 0) and the image patch under the projection.
    ``rows``: :class:`zfhelpers.methods.projection.LayerUnits`."""
    ncols = max(len(r.channels) for r in rows)
    fig, axes = _figure(len(rows), 3 * ncols, 1.2 * 3 * ncols, 1.4 * len(rows) + 0.3)
    _off(axes)
    for r, row in enumerate(rows):
        proj = row.projections[rule]
        for k, ch in enumerate(proj.channels):
            y, x = proj.positions[k, 0].tolist()
            a0, a1, a2 = axes[r, 3 * k : 3 * k + 3]
            a0.imshow(row.acts[ch].numpy(), cmap="viridis", interpolation="nearest")
            a0.plot([x], [y], marker="s", mfc="none", mec="red", ms=5)
            a0.set_title(f"{row.layer} ch{ch}", fontsize=6.5)
            y0, y1, x0, x1 = support_box(proj.maps[k, 0])
            a1.imshow(projection_image(proj.maps[k, 0], grey=grey)[y0:y1, x0:x1], interpolation="nearest")
            a1.set_title(f"projection {y1 - y0}×{x1 - x0}", fontsize=6.5)
            a2.imshow(display[y0:y1, x0:x1], interpolation="nearest")
            a2.set_title("patch", fontsize=6.5)
    _finish(fig, title)
    return fig


# --------------------------------------------------------------------------- 02: mirror vs engine
def mirror_engine_figure(check, *, grey: bool = False, amplify: float = 1e4, title: str = ""):
    """Hook engine (top), explicit mirror (middle) and their difference magnified ``amplify`` times on
    the engine's own grey-is-zero scale (bottom), each cropped to the unit's support. A flat grey
    bottom row means the two agree to better than 1/``amplify`` of the projection's range;
    ``check`` is a :class:`zfhelpers.methods.mirror.MirrorCheck`."""
    n = len(check.layers)
    fig, axes = _figure(3, n, 1.9 * n, 6.2)
    _off(axes)
    for j in range(n):
        e, m = check.engine[j], check.mirror[j]
        y0, y1, x0, x1 = support_box(e)
        diff = (m - e) * amplify
        e_img = projection_image(e, grey=grey)[y0:y1, x0:x1]
        m_img = projection_image(m, grey=grey)[y0:y1, x0:x1]
        d_img = _on_scale(diff, e, grey=grey)[y0:y1, x0:x1]
        rel = check.relative[j]
        axes[0, j].imshow(e_img, interpolation="nearest")
        axes[0, j].set_title(f"{check.layers[j]} ch{check.channels[j]}\nengine (autograd + rule)", fontsize=7)
        axes[1, j].imshow(m_img, interpolation="nearest")
        axes[1, j].set_title("mirror (unpool, rectify, filter)", fontsize=7)
        axes[2, j].imshow(d_img, interpolation="nearest")
        text = "identical (difference 0)" if rel == 0 else f"max rel. difference {rel:.1e}"
        axes[2, j].set_title(f"(mirror − engine) × {_power_of_ten(amplify)}\n{text}", fontsize=7)
    _finish(fig, title or (f"Explicit mirror vs hook engine; bottom row: their difference × {_power_of_ten(amplify)} "
                           "on the engine's scale (flat grey = they agree)"), fontsize=8.5)  # fmt: skip
    return fig


def _on_scale(values: torch.Tensor, reference: torch.Tensor, *, grey: bool, percentile: float = 99.5) -> np.ndarray:
    """``values`` drawn with the grey-is-zero scale that :func:`projection_image` uses for ``reference``."""
    ref = reference.sum(0, keepdim=True) if grey else reference
    val = values.sum(0, keepdim=True).expand(3, -1, -1) if grey else values
    nz = ref.abs()[ref.abs() > 0]
    peak = float(torch.quantile(nz.float(), percentile / 100)) if nz.numel() else 1.0
    return (val / (2 * max(peak, 1e-12)) + 0.5).clamp(0, 1).permute(1, 2, 0).numpy()


# --------------------------------------------------------------------------- 02: artefacts of the deconvnet
def artefacts_figure(display: np.ndarray, rows, *, zoom: int = 24, title: str = ""):
    """Deconvnet against guided backprop for the same units (rows): the deconvnet projection, its
    centre magnified (``zoom`` px: the checkerboard / stripe pattern), the guided projection, and
    the patch; titles give each projection's high-frequency share
    (:func:`zfhelpers.analysis.projections.high_frequency_share`)."""
    units = [(row, k) for row in rows for k in range(len(row.channels))]
    fig, axes = _figure(len(units), 4, 7.2, 1.85 * len(units) + 0.4)
    _off(axes)
    for r, (row, k) in enumerate(units):
        d, g = row.projections["deconvnet"].maps[k, 0], row.projections["guided"].maps[k, 0]
        y0, y1, x0, x1 = support_box(d)
        d_img = projection_image(d)
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        h = zoom // 2
        axes[r, 0].imshow(d_img[y0:y1, x0:x1], interpolation="nearest")
        axes[r, 0].set_title(f"{row.layer} ch{row.channels[k]}: deconvnet\nhigh-freq. share "
                             f"{high_frequency_share(d):.2f}", fontsize=7)  # fmt: skip
        axes[r, 1].imshow(d_img[max(cy - h, 0) : cy + h, max(cx - h, 0) : cx + h], interpolation="nearest")
        axes[r, 1].set_title(f"its centre, {zoom}×{zoom} px", fontsize=7)
        axes[r, 2].imshow(projection_image(g)[y0:y1, x0:x1], interpolation="nearest")
        axes[r, 2].set_title(f"guided backprop\nhigh-freq. share {high_frequency_share(g):.2f}", fontsize=7)
        axes[r, 3].imshow(display[y0:y1, x0:x1], interpolation="nearest")
        axes[r, 3].set_title("patch", fontsize=7)
    _finish(fig, title, fontsize=9)
    return fig


# --------------------------------------------------------------------------- 09: three rules
def rule_units_figure(display: np.ndarray, rows, *, rules=("gradient", "deconvnet", "guided"), title: str = ""):
    """Rows: one unit per layer; columns: the patch under its deconvnet support, then its projection
    under each rule, all cropped to that box (grey = 0)."""
    fig, axes = _figure(len(rows), len(rules) + 1, 2.0 * (len(rules) + 1), 2.05 * len(rows) + 0.35)
    _off(axes)
    for r, row in enumerate(rows):
        maps = {rule: row.projections[rule].maps[0, 0] for rule in rules}
        y0, y1, x0, x1 = support_box(maps.get("deconvnet", next(iter(maps.values()))))
        axes[r, 0].imshow(display[y0:y1, x0:x1])
        axes[r, 0].set_title(f"{row.layer} ch{row.channels[0]}: patch", fontsize=8)
        for c, rule in enumerate(rules, 1):
            axes[r, c].imshow(projection_image(maps[rule])[y0:y1, x0:x1])
            axes[r, c].set_title(rule, fontsize=8, color=RULE_COLOURS.get(rule, "black"))
    _finish(fig, title)
    return fig


def rule_class_figure(samples, labels: list[str], maps: dict[str, torch.Tensor], *, title: str = ""):
    """Rows: photos (with their label); columns: the class score's map under each rule."""
    rules = list(maps)
    fig, axes = _figure(len(samples), len(rules) + 1, 2.0 * (len(rules) + 1), 2.05 * len(samples) + 0.35)
    _off(axes)
    for r, s in enumerate(samples):
        axes[r, 0].imshow(s.display)
        axes[r, 0].set_title(labels[r], fontsize=7.5)
        for c, rule in enumerate(rules, 1):
            axes[r, c].imshow(projection_image(maps[rule][r]))
            axes[r, c].set_title(rule, fontsize=8, color=RULE_COLOURS.get(rule, "black"))
    _finish(fig, title)
    return fig


def same_class_figure(samples, maps: dict[str, torch.Tensor], *, class_name: str, title: str = ""):
    """One class score sent back from every photo: the photos, then per rule a row of their maps."""
    rules = list(maps)
    n = len(samples)
    fig, axes = _figure(len(rules) + 1, n, 1.9 * n, 2.0 * (len(rules) + 1) + 0.3)
    _off(axes)
    for i, s in enumerate(samples):
        axes[0, i].imshow(s.display)
        axes[0, i].set_title(s.name, fontsize=8)
        for r, rule in enumerate(rules, 1):
            axes[r, i].imshow(projection_image(maps[rule][i]))
            axes[r, i].set_title(f"{rule}, from {s.name}", fontsize=7, color=RULE_COLOURS.get(rule, "black"))
    _finish(fig, title or f"The score of '{class_name}' sent back from each photo")
    return fig


# --------------------------------------------------------------------------- 09: sanity check
def sanity_figure(steps: dict[str, list], *, order: list[str] | None = None, image: int = 0, image_name: str = "",
                  n_images: int = 1, max_thumbs: int = 7, line: float | None = 0.5, title: str = ""):  # fmt: skip
    """Cascading randomisation (Adebayo et al. 2018 §3.1): per rule, the map of one photo as the
    layers are re-initialised from the top, and on the right the rank correlation (solid) and SSIM
    (dashed) with the trained model's map, averaged over photos, against the number of layers
    re-initialised (``order``: the cascade's layers, top-down; default one step per point). Chance
    (ρ = 0) is the grey line; ``line`` marks the threshold the verdicts use."""
    rules = list(steps)
    labels = [s.randomized_up_to for s in steps[rules[0]]]
    x = [0] + [order.index(name) + 1 for name in labels[1:]] if order else list(range(len(labels)))
    show = list(range(len(labels)))
    if len(show) > max_thumbs:
        show = sorted({int(round(v)) for v in np.linspace(0, len(labels) - 1, max_thumbs)})
    fig = plt.figure(figsize=(1.55 * len(show) + 4.6, 1.75 * len(rules) + 0.9), layout="constrained")
    gs = fig.add_gridspec(len(rules), len(show) + 3)
    for r, rule in enumerate(rules):
        for c, i in enumerate(show):
            ax = fig.add_subplot(gs[r, c])
            m = steps[rule][i].maps[image]
            peak = max(float(torch.quantile(m.flatten(), 0.995)), 1e-12)
            ax.imshow((m / peak).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(("trained" if i == 0 else f"↓ {labels[i]}") + f"\nmean ρ = {steps[rule][i].spearman:.2f}",
                         fontsize=6.5)  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(rule, fontsize=9, color=RULE_COLOURS.get(rule, "black"))
    ax = fig.add_subplot(gs[:, len(show) :])
    for rule in rules:
        colour = RULE_COLOURS.get(rule, "black")
        ax.plot(x, [s.spearman for s in steps[rule]], marker="o", ms=3, color=colour, label=f"{rule}: Spearman ρ")
        ax.plot(x, [s.ssim for s in steps[rule]], ls="--", lw=1, color=colour, label=f"{rule}: SSIM")
    ax.axhline(0, color="0.5", lw=0.8, label="chance (ρ = 0)")
    if line is not None:
        ax.axhline(line, color="0.5", lw=0.8, ls=":", label=f"ρ = {line:g}: changed below, barely changed above")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=90, fontsize=6.5)
    ax.set_xlabel("randomised from the top down to …" + (" (spaced by layers re-initialised)" if order else ""),
                  fontsize=8)  # fmt: skip
    ax.set_ylabel(f"similarity to the trained model's map\n(mean of {n_images} photos)", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=7, frameon=False)
    _finish(fig, title or f"Cascading randomisation; thumbnails: '{image_name}'")
    return fig
