"""Figures of notebook 07 (ZF §4.2, Fig. 7): one row per image with panels (a)–(e), and an
explorer over occluder size, stride and image."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

from ..analysis.occlusion_effects import OcclusionRow, occlusion_rows
from ..data.display import projection_rgb

RULE_NAMES = {"guided": "guided backprop", "deconvnet": "deconvnet", "gradient": "gradient"}
OTHER = (0.82, 0.82, 0.82)  # panel (e): classes beyond the most frequent ones
MAX_CLASSES = 5


def _extent(res) -> tuple[float, float, float, float]:
    """Each map cell drawn around its occluder's centre, so the maps line up with the image."""
    (sy, sx), (ty, tx) = res.size, res.stride
    return (
        res.xs[0] + (sx - tx) / 2,
        res.xs[-1] + (sx + tx) / 2,
        res.ys[-1] + (sy + ty) / 2,
        res.ys[0] + (sy - ty) / 2,
    )


def _box(ax, box, **kw) -> None:
    y0, y1, x0, x1 = box
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, **{"ec": "white", "lw": 1.2, "ls": "--", **kw}))


def _frame(ax, shape) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(0, shape[1])
    ax.set_ylim(shape[0], 0)


def _label_map(res, categories) -> tuple[np.ndarray, list[str], list]:
    """Panel (e): rank of each position's top class among the most frequent ones (others grey)."""
    top = res.top_class.numpy()
    values, counts = np.unique(top, return_counts=True)
    order = [int(v) for v in values[np.argsort(-counts, kind="stable")]]
    order = [res.target] + [c for c in order if c != res.target]  # the target keeps the first colour
    shown = order[:MAX_CLASSES]
    ranks = np.full(top.shape, len(shown), float)
    for r, c in enumerate(shown):
        ranks[top == c] = r
    palette = [plt.get_cmap("tab10")(r) for r in range(len(shown))]
    names = [categories[c] for c in shown]
    if len(order) > len(shown):
        names.append(f"{len(order) - len(shown)} other classes")
        palette.append(OTHER)
    return ranks, names, palette


def _ratios(rows: Sequence[OcclusionRow]) -> list[float]:
    """Column widths: image-shaped panels as wide as the widest image, projections at their own
    aspect, colour-barred panels a little wider."""
    wide = max(r.sample.display.shape[1] / r.sample.display.shape[0] for r in rows)
    n_proj = max(len(r.projections) for r in rows)
    first = rows[0]
    proj = [p.shape[-1] / p.shape[-2] for p in first.projections.values()] + [1.0] * (n_proj - len(first.projections))
    return [wide, wide * 1.15, *proj, wide * 1.15, wide * 1.3]


def _panel_a(ax, row: OcclusionRow, loaded) -> None:
    res, s = row.result, row.sample
    example = s.display.copy()
    where = int(res.prob.argmin())  # the example occluder sits where it hurts p(target) most
    y0, x0 = res.ys[where // len(res.xs)], res.xs[where % len(res.xs)]
    grey = loaded.preprocess.denormalize(torch.full((3, 1, 1), res.fill)).permute(1, 2, 0).clamp(0, 1).numpy()
    example[y0 : y0 + res.size[0], x0 : x0 + res.size[1]] = grey
    ax.imshow(example)
    _box(ax, row.box)
    ax.set_title(f"(a) {row.name}: '{loaded.categories[res.target]}'\np = {res.base_prob:.2f} unoccluded\n"
                 "grey: where p drops most; dashed: the object", fontsize=8)  # fmt: skip
    _frame(ax, s.display.shape)


def _panel_b(ax, row: OcclusionRow, layer: str) -> None:
    res = row.result
    im = ax.imshow(res.feature_sum.numpy(), cmap="viridis", extent=_extent(res))
    ax.set_title(f"(b) total activation of {layer} map {res.channel}\n(strongest map; unoccluded "
                 f"{res.base_feature_sum:.0f})", fontsize=8)  # fmt: skip
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    _frame(ax, row.sample.display.shape)


def _panels_c(axes, row: OcclusionRow) -> None:
    rule = RULE_NAMES.get(row.rule, row.rule)
    for ax, (other, proj) in zip(axes, row.projections.items()):
        ax.imshow(projection_rgb(proj))
        ax.set_title(f"(c) {rule} projection of map {row.result.channel}'s\nstrongest unit on {other} (grey = 0)",
                     fontsize=8)  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(row.projections) :]:
        ax.axis("off")


def _panel_d(ax, row: OcclusionRow, loaded) -> None:
    res = row.result
    im = ax.imshow(res.prob.numpy(), cmap="magma", vmin=0, vmax=1, extent=_extent(res))
    _box(ax, row.box, ec="#36c")
    ax.set_title(f"(d) p('{loaded.categories[res.target]}') with the occluder\ncentred there "
                 f"(lowest {float(res.prob.min()):.2f})", fontsize=8)  # fmt: skip
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    _frame(ax, row.sample.display.shape)


def _panel_e(ax, row: OcclusionRow, loaded) -> None:
    res = row.result
    ranks, names, palette = _label_map(res, loaded.categories)
    ax.imshow(ranks, cmap=ListedColormap(palette), vmin=-0.5, vmax=len(palette) - 0.5, extent=_extent(res),
              interpolation="nearest")  # fmt: skip
    _box(ax, row.box, ec="black")
    switched = float((res.top_class != res.target).float().mean())
    ax.set_title(f"(e) most probable class\n(not '{loaded.categories[res.target]}' at {switched:.0%} of "
                 "positions)", fontsize=8)  # fmt: skip
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in palette]
    ax.legend(handles, names, fontsize=6.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    _frame(ax, row.sample.display.shape)


def draw_row(axes, row: OcclusionRow, loaded, *, layer: str) -> None:
    """Panels (a)–(e) of one image into 4 + (number of projections) axes."""
    ax_a, ax_b, *ax_c, ax_d, ax_e = axes
    _panel_a(ax_a, row, loaded)
    _panel_b(ax_b, row, layer)
    _panels_c(ax_c, row)
    _panel_d(ax_d, row, loaded)
    _panel_e(ax_e, row, loaded)


def label_switch_figure(row: OcclusionRow, loaded, *, note: str = ""):
    """ZF's point in one row: the image with the object's box, p(target) and the most probable
    class as functions of the occluder's position — covering the object hands the label to
    another class. ``note`` (e.g. the measured claim) goes under the title."""
    aspect = row.sample.display.shape[1] / row.sample.display.shape[0]
    fig, axes = plt.subplots(1, 3, figsize=(3 * 1.9 * aspect + 2.4, 3.0),
                             gridspec_kw={"width_ratios": [1, 1.1, 1.3]})  # fmt: skip
    _panel_a(axes[0], row, loaded)
    _panel_d(axes[1], row, loaded)
    _panel_e(axes[2], row, loaded)
    res = row.result
    fig.suptitle(f"Label switch (ZF Fig. 7's point), {loaded.name}: grey square {res.size[0]}×{res.size[1]} px, "
                 f"stride {res.stride[0]}" + (f"\n{note}" if note else ""), fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig


def occlusion_figure(rows: Sequence[OcclusionRow], loaded, *, layer: str, title: str = ""):
    """ZF Fig. 7: one row per image — (a) image with an example occluder and the object's box,
    (b) total activation of the strongest ``layer`` map, (c) that map's strongest unit projected on
    this image (and on another), (d) p(true class) and (e) the most probable class, both as
    functions of the occluder's position."""
    ratios = _ratios(rows)
    height = 3.1 if ratios[0] <= 1 else 2.6
    fig = plt.figure(figsize=(2.55 * sum(ratios) + 1.2, height * len(rows)))
    gs = fig.add_gridspec(len(rows), len(ratios), width_ratios=ratios)
    for r, row in enumerate(rows):
        draw_row([fig.add_subplot(gs[r, j]) for j in range(len(ratios))], row, loaded, layer=layer)
    res = rows[0].result
    fig.suptitle(f"{title or 'Occlusion sensitivity (ZF Fig. 7)'}, {loaded.name}: grey square "
                 f"{res.size[0]}×{res.size[1]} px, stride {res.stride[0]}, fill {res.fill:g} "
                 "(normalised; 0 = dataset mean)", fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.98 if len(rows) > 1 else 0.93))
    return fig


def occlusion_explorer(loaded, names: Sequence[str], *, size: int, stride: int, fill: float, layer: str):
    """Occluder size, stride and image: one row of the figure per move."""
    import ipywidgets

    from .widgets import controls_explorer

    def render(size_: int, stride_: int, image: str):
        row = occlusion_rows(loaded, [image], size=size_, stride=min(stride_, size_), fill=fill, layer=layer)[0]
        return occlusion_figure([row], loaded, layer=layer)

    return controls_explorer(render, {
        "size_": ipywidgets.IntSlider(value=size, min=16, max=112, step=8, description="size",
                                      continuous_update=False),
        "stride_": ipywidgets.IntSlider(value=stride, min=4, max=56, step=4, description="stride",
                                        continuous_update=False),
        "image": ipywidgets.Dropdown(options=list(names), value=names[0], description="image")})  # fmt: skip
