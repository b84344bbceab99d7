"""Figure builders shared by the notebooks. Each returns a matplotlib Figure and never saves it
(saving goes through :func:`zfhelpers.notebook.save.save_figure`)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from ..data.display import projection_rgb, support_box, upsample_map
from ..methods.targets import strongest_channels


def _tile_grid(maps: torch.Tensor, ncols: int, pad: int = 1) -> np.ndarray:
    """N×H×W maps → one 2-D array, each tile scaled to its own min..max (so weak channels stay
    visible), as ``make_grid(normalize=True, scale_each=True)``; padding is NaN (drawn white)."""
    grid = make_grid(maps.detach().float().cpu()[:, None], nrow=ncols, padding=pad, normalize=True,
                     scale_each=True, pad_value=float("nan"))  # fmt: skip
    return grid[0].numpy()


def plot_feature_maps(acts: torch.Tensor, *, channels=None, ncols: int = 8, title: str = "",
                      cmap: str = "viridis", ax=None):  # fmt: skip
    """Grid of one layer's feature maps (C×H×W), each channel normalised to its own range."""
    channels = list(range(acts.shape[0])) if channels is None else list(channels)
    grid = _tile_grid(acts[channels], ncols)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 8 * grid.shape[0] / grid.shape[1]))
    cm = plt.get_cmap(cmap).copy()
    cm.set_bad("white")
    ax.imshow(np.ma.masked_invalid(grid), cmap=cm, interpolation="nearest")
    ax.set_title(title or f"{len(channels)} feature maps (each scaled to its own min..max)", fontsize=9)
    ax.axis("off")
    return fig


def plot_rgb_filters(weight: torch.Tensor, *, ncols: int = 16, title: str = "", ax=None):
    """First-layer filters (O×3×k×k) as RGB tiles, each scaled symmetrically about zero so that
    grey means 0 and colour saturates at the filter's own largest magnitude."""
    if weight.shape[1] != 3:
        raise ValueError(f"RGB filters need 3 input channels, got {weight.shape[1]}")
    w = weight.detach().float().cpu()
    peak = w.abs().flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    grid = make_grid(w / (2 * peak) + 0.5, nrow=ncols, padding=1, pad_value=1.0)
    nrows = math.ceil(w.shape[0] / ncols)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(ncols * 0.5, nrows * 0.5 + 0.4))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(title or f"{w.shape[0]} first-layer filters, {w.shape[2]}×{w.shape[3]} RGB", fontsize=9)
    ax.axis("off")
    return fig


def plot_filter_slices(weight: torch.Tensor, *, n_out: int = 8, n_in: int = 16, title: str = "", ax=None):
    """A deeper layer's filters: rows = output channels, columns = input channels (k×k slices),
    diverging colours, each row scaled to its filter's largest magnitude."""
    w = weight.detach().float().cpu()
    if w.shape[1] == 1:  # depthwise: one k×k filter per channel, laid out as a plain grid
        cols = min(16, w.shape[0])
        w = w[: n_out * cols]
        w = F.pad(w, (0, 0, 0, 0, 0, 0, 0, (-w.shape[0]) % cols), value=float("nan"))
        w = w.reshape(-1, cols, *w.shape[2:])
    else:
        w = w[:n_out, :n_in]
    o, i, kh, kw = w.shape
    if weight.shape[1] == 1:
        peak = w.abs().nan_to_num(0).flatten(2).amax(2).clamp_min(1e-12)[..., None, None]
    else:
        peak = w.abs().flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    tiles = (w / peak).reshape(o * i, 1, kh, kw)
    grid = make_grid(tiles, nrow=i, padding=1, pad_value=float("nan"))[0].numpy()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(i * 0.45, o * 0.45 + 0.5))
    cm = plt.get_cmap("RdBu_r").copy()
    cm.set_bad("white")
    ax.imshow(np.ma.masked_invalid(grid), cmap=cm, vmin=-1, vmax=1, interpolation="nearest")
    default = (f"{weight.shape[0]} depthwise {kh}×{kw} filters" if weight.shape[1] == 1
               else f"filters {o}×{i} of {weight.shape[0]}×{weight.shape[1]} ({kh}×{kw})")  # fmt: skip
    ax.set_title(title or default, fontsize=9)
    ax.axis("off")
    return fig


def overlay(ax, image: np.ndarray, act_map: torch.Tensor, *, alpha: float = 0.55, cmap: str = "jet"):
    """Image with a channel's map (upsampled, scaled to [0, 1]) on top; RGB throughout."""
    m = upsample_map(act_map, image.shape[:2])
    m = (m - m.min()) / max(float(m.max() - m.min()), 1e-12)
    ax.imshow(image)
    im = ax.imshow(m, cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    ax.axis("off")
    return im


def plot_top_channels(image: np.ndarray, acts_by_layer: dict[str, torch.Tensor], k: int = 6):
    """Rows = layers (low → high), columns = the k channels with the largest mean activation,
    each overlaid on the image."""
    layers = list(acts_by_layer)
    fig, axes = plt.subplots(len(layers), k + 1, figsize=(1.7 * (k + 1), 1.75 * len(layers)), squeeze=False)
    for r, layer in enumerate(layers):
        acts = acts_by_layer[layer]
        axes[r, 0].imshow(image)
        axes[r, 0].set_title(f"{layer}  {tuple(acts.shape)}", fontsize=8)
        axes[r, 0].axis("off")
        for c, ch in enumerate(strongest_channels(acts, k)):
            overlay(axes[r, c + 1], image, acts[ch])
            axes[r, c + 1].set_title(f"ch {ch}  mean {float(acts[ch].mean()):.2f}", fontsize=7)
    fig.suptitle("Top channels per layer (largest mean activation), map overlaid on the input", fontsize=10)
    fig.tight_layout()
    return fig


def plot_channel(image: np.ndarray, act_map: torch.Tensor, *, layer: str, channel: int):
    """One channel: the input, the raw map with its colour bar, and the overlay."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    axes[0].imshow(image)
    axes[0].set_title("input", fontsize=9)
    axes[0].axis("off")
    im = axes[1].imshow(act_map.detach().float().numpy(), cmap="viridis", interpolation="nearest")
    axes[1].set_title(f"{layer} channel {channel}  ({act_map.shape[0]}×{act_map.shape[1]})", fontsize=9)
    axes[1].axis("off")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    overlay(axes[2], image, act_map)
    axes[2].set_title("overlay (map rescaled to 0..1)", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- projections
def plot_layer_projections(image: np.ndarray, rows: list[dict], *, title: str = ""):
    """ZF-style panel for one image: per row (a layer), per channel the feature map with its
    strongest unit marked, the unit's projection and the image patch it covers.

    ``rows``: ``{"layer", "acts" (C×h×w), "projection" (Projection for N=1)}``."""
    ncols = max(len(r["projection"].channels) for r in rows)
    fig, axes = plt.subplots(len(rows), 3 * ncols, figsize=(1.25 * 3 * ncols, 1.45 * len(rows)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, row in enumerate(rows):
        proj = row["projection"]
        for k, ch in enumerate(proj.channels):
            fmap = row["acts"][ch]
            y, x = proj.positions[k, 0].tolist()
            a0, a1, a2 = axes[r, 3 * k : 3 * k + 3]
            a0.imshow(fmap.numpy(), cmap="viridis", interpolation="nearest")
            a0.plot([x], [y], marker="s", mfc="none", mec="red", ms=5)
            a0.set_title(f"{row['layer']} ch{ch}", fontsize=6.5)
            y0, y1, x0, x1 = support_box(proj.maps[k, 0])
            a1.imshow(projection_rgb(proj.maps[k, 0])[y0:y1, x0:x1], interpolation="nearest")
            a1.set_title(f"projection ({y1 - y0}×{x1 - x0})", fontsize=6.5)
            a2.imshow(image[y0:y1, x0:x1], interpolation="nearest")
            a2.set_title("patch", fontsize=6.5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_deconv_path(image: np.ndarray, trace, *, layer_names: dict[int, str] | None = None, max_panels: int = 10):
    """ZF Fig. 1 on a real photo: the signal of one unit on its way down the mirror deconvnet.

    Each panel is the L2 norm over channels of the signal after an unpool / rectify / filter
    step (shown at the resolution of that stage); the last panel is the RGB projection."""
    names = layer_names or {}
    stages = [(n, s) for n, s in trace.stages if "skip" not in n]
    keep = [stages[0]] + [st for st in stages[1:-1] if "unpool" in st[0] or "filter" in st[0]]
    if len(keep) > max_panels - 2:
        step = int(math.ceil(len(keep) / (max_panels - 2)))
        keep = keep[::step]
    panels = len(keep) + 2
    fig, axes = plt.subplots(1, panels, figsize=(1.9 * panels, 2.4))
    axes[0].imshow(image)
    y0, y1, x0, x1 = support_box(trace.image[0])
    axes[0].add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="red", lw=1.2))
    axes[0].set_title("input + support", fontsize=7.5)
    big_h, big_w = trace.image.shape[-2:]
    for ax, (name, signal) in zip(axes[1:-1], keep):
        idx, _, step = name.partition(": ")
        norm = signal[0].norm(dim=0).numpy()
        sy, sx = norm.shape[0] / big_h, norm.shape[1] / big_w  # zoom to the support at this scale
        cy0, cy1 = int(y0 * sy), max(int(math.ceil(y1 * sy)), int(y0 * sy) + 3)
        cx0, cx1 = int(x0 * sx), max(int(math.ceil(x1 * sx)), int(x0 * sx) + 3)
        ax.imshow(norm[cy0:cy1, cx0:cx1], cmap="magma", interpolation="nearest")
        label = names.get(int(idx), f"module {idx}")
        ax.set_title(f"{step} {label}\n{tuple(signal.shape[1:])}", fontsize=6.5)
    axes[-1].imshow(projection_rgb(trace.image[0])[y0:y1, x0:x1], interpolation="nearest")
    axes[-1].set_title("pixels (RGB)", fontsize=7.5)
    for ax in axes:
        ax.axis("off")
    fig.suptitle("Deconvnet path of one activation: unpool (switches) → rectify → filter (transposed), "
                 "norm over channels at each stage, zoomed to the red box", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig


def plot_heat_overlay(ax, image: np.ndarray, heat: np.ndarray | torch.Tensor, *, alpha: float = 0.5,
                      cmap: str = "jet", colorbar: bool = True):  # fmt: skip
    """RGB image with a [0, 1] heat map on top (and its colour bar)."""
    heat = heat.detach().cpu().numpy() if isinstance(heat, torch.Tensor) else heat
    ax.imshow(image)
    im = ax.imshow(heat, cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    ax.axis("off")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    return im


def tile_block(crops: np.ndarray, nrow: int = 3) -> np.ndarray:
    """k×h×w×3 crops → one (nrow × ⌈k/nrow⌉) tile image with thin white gaps."""
    t = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
    pad = max(1, crops.shape[1] // 24)
    return make_grid(t, nrow=nrow, padding=pad, pad_value=1.0).permute(1, 2, 0).numpy()


def plot_top9(rows: list, *, title: str = "", max_channels: int | None = None):
    """ZF Fig. 2: one row per layer; per channel a 3×3 block of projections beside a 3×3 block of
    the matching receptive-field patches (``rows``: :class:`zfhelpers.analysis.top9.TopProjections`)."""
    ncols = max(len(r.channels) for r in rows) if max_channels is None else max_channels
    fig, axes = plt.subplots(len(rows), 2 * ncols, figsize=(2.0 * ncols * 2, 2.15 * len(rows)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, tp in enumerate(rows):
        size = tp.projections.shape[2]
        for i, ch in enumerate(tp.channels[:ncols]):
            a_proj, a_patch = axes[r, 2 * i], axes[r, 2 * i + 1]
            a_proj.imshow(tile_block(tp.projections[i]), interpolation="nearest" if size < 40 else "antialiased")
            a_patch.imshow(tile_block(tp.patches[i]), interpolation="nearest" if size < 40 else "antialiased")
            a_proj.set_title(f"{tp.layer} ch{ch}", fontsize=8, loc="left")
        axes[r, 0].text(-0.08, 0.5, f"{tp.layer}\nRF {size}px", transform=axes[r, 0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=9)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
