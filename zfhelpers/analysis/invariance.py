"""Invariance of features to transformations (ZF §4.2, Fig. 5).

For each image and transformation amount: the Euclidean distance between the feature vectors of
the original and the transformed image at a low and a high layer, and p(true class). ZF leave the
step sizes, the fill of uncovered pixels and any distance normalisation unstated; here transforms
act on the normalised tensor with bilinear resampling and fill 0 (the dataset mean), and the
distances are raw (the notebook also reports them relative to the largest)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.capture import OUTPUT, capture_detached

#: The paper's ranges as recalled in papers.md §1.3 ([R], unverified against the PDF).
PAPER_RANGES = {
    "translate": np.linspace(-60, 60, 13),  # vertical shift, pixels
    "scale": np.linspace(1.0, 1.8, 9),  # zoom factor
    "rotate": np.linspace(0, 350, 36),  # degrees
}
KINDS = tuple(PAPER_RANGES)


def transform(x: torch.Tensor, kind: str, amount: float, fill: float = 0.0) -> torch.Tensor:
    """Vertical translation (pixels), scale (zoom about the centre) or rotation (degrees)."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    args = {"angle": 0.0, "translate": [0, 0], "scale": 1.0, "shear": [0.0, 0.0]}
    if kind == "translate":
        args["translate"] = [0, int(round(amount))]
    elif kind == "scale":
        args["scale"] = float(amount)
    elif kind == "rotate":
        args["angle"] = float(amount)
    else:
        raise ValueError(f"unknown transformation {kind!r}; valid: {', '.join(KINDS)}")
    return TF.affine(x, **args, interpolation=InterpolationMode.BILINEAR, fill=fill)


@dataclass
class InvarianceCurves:
    kind: str
    amounts: np.ndarray
    d_low: np.ndarray  # N×T
    d_high: np.ndarray  # N×T
    p_true: np.ndarray  # N×T
    low_layer: str
    high_layer: str


def _features(loaded, x: torch.Tensor, low: str, high: str):
    out = capture_detached(loaded, x, [low, high, OUTPUT])
    return out[low].flatten(1), out[high].flatten(1), out[OUTPUT].softmax(1)


def invariance_curves(loaded, x: torch.Tensor, labels, kind: str, amounts, *, low: str, high: str,
                      fill: float = 0.0) -> InvarianceCurves:  # fmt: skip
    """Distances and p(label) for every image in ``x`` (N×3×H×W) and amount.

    ``low`` and ``high`` are layers whose outputs are compared (ZF's layer 1 and layer 7: the
    model's ``layer1`` and ``layer7`` roles, e.g. MobileNetV2's ``stem`` and ``pooled``)."""
    labels = torch.as_tensor(labels)
    base_low, base_high, _ = _features(loaded, x, low, high)
    d_low, d_high, p = [], [], []
    for a in amounts:
        f_low, f_high, probs = _features(loaded, transform(x, kind, a, fill), low, high)
        d_low.append((f_low - base_low).norm(dim=1))
        d_high.append((f_high - base_high).norm(dim=1))
        p.append(probs[torch.arange(len(labels)), labels])
    stack = lambda v: torch.stack(v, 1).numpy()  # noqa: E731
    return InvarianceCurves(kind, np.asarray(amounts, float), stack(d_low), stack(d_high), stack(p), low, high)


def linearity_r2(amounts: np.ndarray, d: np.ndarray) -> float:
    """R² of the best straight line through (|amount − identity|, distance): ZF's "quasi-linear"."""
    identity = 1.0 if np.isclose(amounts, 1.0).any() and amounts.min() >= 1.0 else 0.0
    t = np.abs(amounts - identity)
    slope, intercept = np.polyfit(t, d, 1)
    resid = d - (slope * t + intercept)
    total = ((d - d.mean()) ** 2).sum()
    return float(1 - (resid**2).sum() / total) if total > 0 else 1.0


def first_step_fraction(amounts: np.ndarray, d: np.ndarray) -> float:
    """Distance at the smallest non-identity step as a fraction of the largest distance:
    near 1 means "changes dramatically already for small transformations"."""
    identity = 1.0 if amounts.min() >= 1.0 else 0.0
    order = np.argsort(np.abs(amounts - identity))
    nonzero = [i for i in order if not np.isclose(amounts[i], identity)]
    return float(d[nonzero[0]] / max(d.max(), 1e-12))
