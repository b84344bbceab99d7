"""Images for display, no plotting: projections as RGB, receptive-field crops, composites and
upsampled maps (numpy / torch only, so compute modules may use them)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def upsample_map(act_map: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of one H×W map to the image size, for overlays."""
    m = act_map.detach().float()[None, None]
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def projection_rgb(projection: torch.Tensor, *, percentile: float = 99.5) -> np.ndarray:
    """3×H×W signed projection → H×W×3 in [0, 1]: grey is zero, as in ZF's figures.

    Scaled symmetrically by a high percentile of |values| (not the max), so one hot pixel does
    not wash out the rest."""
    p = projection.detach().float().cpu()
    nz = p.abs()[p.abs() > 0]
    peak = float(torch.quantile(nz, percentile / 100)) if nz.numel() else 1.0
    return (p / (2 * max(peak, 1e-12)) + 0.5).clamp(0, 1).permute(1, 2, 0).numpy()


def support_box(projection: torch.Tensor, pad: int = 4, min_size: int = 24) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) around the non-zero support of a projection: the part of the image
    the unit actually sees (always inside its theoretical receptive field)."""
    mask = projection.detach().abs().sum(0) > 0
    h, w = mask.shape
    if not mask.any():
        return 0, h, 0, w
    ys, xs = mask.nonzero(as_tuple=True)
    y0, y1, x0, x1 = int(ys.min()) - pad, int(ys.max()) + 1 + pad, int(xs.min()) - pad, int(xs.max()) + 1 + pad
    for lo, hi in ((0, 1), (2, 3)):  # grow tiny boxes to min_size, clip to the image
        box = [y0, y1, x0, x1]
        grow = max(0, min_size - (box[hi] - box[lo]))
        box[lo], box[hi] = box[lo] - grow // 2, box[hi] + grow - grow // 2
        y0, y1, x0, x1 = box
    return max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)


def crop(image: np.ndarray, box: tuple[int, int, int, int], fill: float = 0.5) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` for a box that may extend past the image; outside is ``fill``."""
    y0, y1, x0, x1 = box
    h, w = image.shape[:2]
    out = np.full((y1 - y0, x1 - x0, *image.shape[2:]), fill, dtype=np.float32)
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two H×W×3 images of the same height next to each other (a two-object test picture)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"heights differ: {a.shape[0]} vs {b.shape[0]}")
    return np.concatenate([a, b], axis=1)
