"""Figures of notebook 13 (the explanatory graph): top patches of diverse best nodes, heat maps of
inferred nodes, location instability with its baselines, and a one-node explorer panel. Each
builder returns a matplotlib Figure; the numbers come from :mod:`zfhelpers.graph.evaluate`."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..graph import evaluate as graph_eval

COLOURS = {"nodes": "tab:blue", "raw_filters": "tab:orange"}


def _patch(padded: np.ndarray, i: int, xy, side: int, pad: int) -> np.ndarray:
    x, y = (int(round(float(v))) + pad for v in xy)
    return padded[i, y - side // 2 : y + side // 2, x - side // 2 : x + side // 2]


def node_patches_figure(images: torch.Tensor, inferred: dict, strides: dict[str, float], chosen: dict[str, list],
                        nodes_per_filter: dict[str, int], landmark_names, per_node: int = 5,
                        top_images: int = 20):  # fmt: skip
    """For each layer in ``chosen`` (layer → [(unit, landmark index)], e.g. from
    :func:`graph_eval.diverse_units`), the top ``per_node`` test patches of each chosen node, cropped
    around its inferred position: 30 / 40 px at 28×28 / 14×14 maps of a 112 px input (the paper's
    60 / 80 px at 224, scaled with the input)."""
    layers = list(chosen)
    rows = max(len(v) for v in chosen.values())
    size = images.shape[-1]
    # a narrow spacer column between layers leaves room for the next layer's row labels
    ratios = [r for li in range(len(layers)) for r in ([0.55] if li else []) + [1.0] * per_node]
    fig, grid = plt.subplots(rows, len(ratios), figsize=(sum(ratios) * 0.95 + 0.7, rows * 1.0), squeeze=False,
                             gridspec_kw={"width_ratios": ratios})  # fmt: skip
    keep = [j for j, r in enumerate(ratios) if r == 1.0]
    for j in set(range(len(ratios))) - set(keep):
        for ax in grid[:, j]:
            ax.axis("off")
    axes = grid[:, keep]
    pixels = images.permute(0, 2, 3, 1).numpy()
    for li, name in enumerate(layers):
        inf = inferred[name]
        side = (60 if round(size / strides[name]) >= 28 else 80) * size // 224  # the paper's 60 / 80 px at 224
        pad = side
        padded = np.pad(pixels, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=127)
        px = graph_eval.unit_pixels(inf.positions.flatten(1, 2), strides[name])
        _, top = graph_eval.rank_units(inf.ranking.flatten(1), top_images)
        for r in range(rows):
            for j in range(per_node):
                ax = axes[r, li * per_node + j]
                ax.set_xticks([])
                ax.set_yticks([])
                if r >= len(chosen[name]):
                    ax.axis("off")
                    continue
                u, k = chosen[name][r]
                i = int(top[j, u])
                ax.imshow(_patch(padded, i, px[i, u], side, pad))
                if j == 0:
                    c, n = divmod(u, nodes_per_filter[name])
                    ax.set_ylabel(f"{name}\nfilter {c} node {n}\n≈ {landmark_names[k]}", fontsize=6)
    fig.suptitle("Top-5 test patches of diverse best nodes (≤ 1 node per filter, taken in turn per part)", fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.1)
    return fig


def _published_note(paper: dict | None) -> str:
    known = [f"{e['dataset']} {e['value']:.3f}" for e in (paper or {}).values() if e["value"] is not None]
    if not known:
        return ""
    return ("Published for scale, raw top-conv filters of an ordinary VGG-16 on other data (Zhang, Wu & Zhu 2018): "
            + "; ".join(known)
            + ". Zhang et al. 2018's own values could not be retrieved (null in the registry).")  # fmt: skip


def diverse_patches_figure(study: dict, data: dict, layers: list[str], n: int = 6, top_images: int = 20):
    """:func:`node_patches_figure` of a :func:`graph_eval.run_study` result for ``layers``, the
    nodes chosen by :func:`graph_eval.diverse_units` (≤ 1 per filter, in turn per landmark)."""
    strides, graph = study["inputs"]["strides"], study["graph"]
    units = graph_eval.graph_units(study["inferred"], strides)
    chosen = {name: graph_eval.diverse_units(*units[name], data["marks_test"], graph[name].nodes_per_filter, n,
                                             top_images) for name in layers}  # fmt: skip
    return node_patches_figure(data["test"], study["inferred"], strides, chosen,
                               {name: graph[name].nodes_per_filter for name in layers}, data["names"],
                               top_images=top_images)  # fmt: skip


def heatmaps_figure(images: torch.Tensor, landmarks: torch.Tensor, inferred: dict, strides: dict[str, float],
                    landmark_names, image_ids=(0, 1, 2), nodes: int = 200):  # fmt: skip
    """Per image (rows) and layer (columns), the ``nodes`` best-scoring inferred nodes as Gaussians
    (σ = half a stride) weighted by their score S, over the image; first column: the landmarks."""
    layers = list(inferred)
    size = images.shape[-1]
    fig, axes = plt.subplots(len(image_ids), 1 + len(layers), figsize=(2 * (1 + len(layers)), 2.05 * len(image_ids)),
                             squeeze=False)  # fmt: skip
    yy, xx = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    colours = plt.cm.tab10(np.arange(landmarks.shape[1]))
    for r, i in enumerate(image_ids):
        axes[r, 0].imshow(images[i].permute(1, 2, 0))
        axes[r, 0].scatter(landmarks[i, :, 0], landmarks[i, :, 1], c=colours, s=14)
        for j, name in enumerate(layers):
            inf, stride = inferred[name], strides[name]
            px = graph_eval.unit_pixels(inf.positions[i].flatten(0, 1), stride)  # U×2 (x, y)
            w = inf.scores[i].flatten()
            keep = w.argsort(descending=True)[:nodes]
            d2 = (xx[None] - px[keep, 0, None, None]) ** 2 + (yy[None] - px[keep, 1, None, None]) ** 2
            heat = (w[keep, None, None] * torch.exp(-d2 / (2 * (stride / 2) ** 2))).sum(0)
            axes[r, j + 1].imshow(images[i].permute(1, 2, 0))
            axes[r, j + 1].imshow(heat / heat.max().clamp_min(1e-12), cmap="jet", alpha=0.5)
            axes[0, j + 1].set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].set_title("image (landmarks:\n" + ", ".join(landmark_names) + ")", fontsize=7)
    fig.tight_layout(pad=0.3)
    return fig


def instability_figure(studies: dict[str, dict], layers: list[str], paper: dict | None = None):
    """One panel per regime (``studies``: label → :func:`graph_eval.instability_study` result):
    nodes and raw filters per layer and on average with 95 % bootstrap intervals, the landmark
    floor and a unit that never moves as horizontal bands. ``paper`` entries with a value are
    listed under the panels (they come from other data and networks)."""
    fig, axes = plt.subplots(1, len(studies), figsize=(4.2 * len(studies), 3.3), squeeze=False, sharey=True)
    groups = [*layers, "mean"]
    x = np.arange(len(groups))
    for ax, (label, st) in zip(axes[0], studies.items()):
        for off, m in ((-0.2, "nodes"), (0.2, "raw_filters")):
            rows = [st[f"{m}@{g}"] for g in layers] + [st[m]]
            v = np.array([r["value"] for r in rows])
            err = np.array([[r["value"] - r["ci_low"], r["ci_high"] - r["value"]] for r in rows]).T
            ax.bar(x + off, v, 0.4, yerr=err, capsize=2.5, color=COLOURS[m], label=m.replace("_", " "))
        for key, colour, style, text in (("landmark_floor", "tab:green", "--", "unit on a landmark"),
                                         ("fixed_centre", "tab:red", ":", "unit that never moves")):  # fmt: skip
            r = st[key]
            ax.axhspan(r["ci_low"], r["ci_high"], color=colour, alpha=0.12, lw=0)
            ax.axhline(r["value"], color=colour, ls=style, lw=1.2, label=text)
        d = st["nodes-raw_filters"]
        ax.set_title(f"{label}\nnodes − raw {d['value']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}], "
                     f"p = {d['p']:.2g}", fontsize=8)  # fmt: skip
        ax.set_xticks(x, groups, fontsize=7)
    axes[0, 0].set_ylabel("location instability (lower = more stable)", fontsize=8)
    axes[0, -1].legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    note = _published_note(paper)
    if note:
        fig.suptitle(textwrap.fill(note, int(fig.get_figwidth() * 19)), fontsize=6.5, y=0.995, va="top", color="0.3")
    fig.tight_layout(pad=0.4)
    return fig


def node_figure(images: torch.Tensor, inferred: dict, strides: dict[str, float], layer: str, unit: int,
                nodes_per_filter: int, n: int = 6):  # fmt: skip
    """One node's ``n`` best test images with its inferred position (for the explorer)."""
    inf = inferred[layer]
    u = min(unit, inf.ranking.flatten(1).shape[1] - 1)
    top = inf.ranking.flatten(1)[:, u].topk(min(n, inf.ranking.shape[0])).indices
    px = graph_eval.unit_pixels(inf.positions.flatten(1, 2)[:, u], strides[layer])
    fig, axes = plt.subplots(1, len(top), figsize=(1.7 * len(top), 2))
    for ax, i in zip(np.atleast_1d(axes), top.tolist()):
        ax.imshow(images[i].permute(1, 2, 0))
        ax.scatter([px[i, 0]], [px[i, 1]], marker="x", c="white", s=60)
        ax.axis("off")
    c, k = divmod(u, nodes_per_filter)
    fig.suptitle(f"{layer}: filter {c}, node {k}", fontsize=9)
    return fig
