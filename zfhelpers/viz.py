"""Figure builders shared by the notebooks. Each returns a matplotlib Figure and never saves it
(saving goes through :func:`zfhelpers.figures.save_figure`)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid


def _tile_grid(maps: torch.Tensor, ncols: int, symmetric: bool = False, pad: int = 1) -> np.ndarray:
    """N×H×W maps → one 2-D array, each tile scaled on its own (so weak channels stay visible).

    ``symmetric`` maps 0 to mid-grey (for signed weights); otherwise min→0 and max→1, as
    ``make_grid(normalize=True, scale_each=True)``."""
    maps = maps.detach().float().cpu()
    if symmetric:
        peak = maps.abs().flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
        tiles = (maps / (2 * peak) + 0.5)[:, None]
        grid = make_grid(tiles, nrow=ncols, padding=pad, pad_value=1.0)
    else:
        grid = make_grid(maps[:, None], nrow=ncols, padding=pad, normalize=True, scale_each=True,
                         pad_value=float("nan"))  # fmt: skip
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


def upsample_map(act_map: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of one H×W map to the image size, for overlays."""
    m = act_map.detach().float()[None, None]
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def overlay(ax, image: np.ndarray, act_map: torch.Tensor, *, alpha: float = 0.55, cmap: str = "jet"):
    """Image with a channel's map (upsampled, scaled to [0, 1]) on top; RGB throughout."""
    m = upsample_map(act_map, image.shape[:2])
    m = (m - m.min()) / max(float(m.max() - m.min()), 1e-12)
    ax.imshow(image)
    im = ax.imshow(m, cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    ax.axis("off")
    return im


def top_channels(acts: torch.Tensor, k: int) -> list[int]:
    """Channels of a C×H×W activation with the largest spatial mean (ties: lower index)."""
    score = acts.detach().float().flatten(1).mean(1)
    order = sorted(range(len(score)), key=lambda c: (-float(score[c]), c))
    return order[:k]


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
        for c, ch in enumerate(top_channels(acts, k)):
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
