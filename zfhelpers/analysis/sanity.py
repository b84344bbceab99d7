"""Model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS
2018, §3.1 cascading randomisation).

Re-initialise the learnable layers from the top down, one more at each step, recompute a method's
map, and report how similar it stays to the map of the trained model. A method whose map barely
changes while the weights are destroyed is explaining the image (edges), not the model."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..models.randomize import reinitialize
from ..models.zoo import LoadedModel, adapt


@dataclass
class RandomizationStep:
    randomized_up_to: str  # the lowest layer re-initialised so far ("none" for the original)
    spearman: float  # rank correlation of |map| with the original |map|, averaged over images
    ssim: float  # SSIM of the [0, 1]-normalised |maps|, averaged over images
    maps: torch.Tensor  # N×H×W heat maps (channel-summed |attribution|)


def heat(attribution: torch.Tensor) -> torch.Tensor:
    """N×3×H×W attribution → N×H×W map (|·| summed over colour), the usual saliency view."""
    return attribution.detach().abs().sum(1)


def _normalize(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def similarity(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(Spearman rank correlation, SSIM) between two N×H×W maps, averaged over N."""
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    rhos, ssims = [], []
    for x, y in zip(a.detach().cpu().numpy(), b.detach().cpu().numpy()):
        if x.std() == 0 or y.std() == 0:  # a constant map has no ranking: count as uncorrelated
            rhos.append(0.0)
        else:
            rhos.append(float(spearmanr(x.ravel(), y.ravel()).statistic))
        ssims.append(float(structural_similarity(_normalize(x), _normalize(y), data_range=1.0)))
    return float(np.mean(rhos)), float(np.mean(ssims))


def cascading_randomization(
    model,
    method: Callable[[LoadedModel], torch.Tensor],
    *,
    layers: Sequence[str] | None = None,
    seed: int = 0,
) -> list[RandomizationStep]:
    """Run ``method(model) -> N×C×H×W`` (an attribution) on a copy of the trained model, then after
    re-initialising ``layers`` (friendly names, top-down; default :func:`learnable_layers`)
    cumulatively. ``method`` receives a :class:`LoadedModel` each time, so it can name layers as
    usual. The caller's model is never modified."""
    lm = adapt(model)
    layers = learnable_layers(lm) if layers is None else [lm.check_layer(name) for name in layers]
    work = copy.deepcopy(lm)  # a private copy; the caller's model is never touched
    reference = heat(method(work))
    steps = [RandomizationStep("none", 1.0, 1.0, reference)]
    for i, name in enumerate(layers):
        reinitialize(work.module(name), seed + i)
        maps = heat(method(work))
        rho, ssim = similarity(reference, maps)
        steps.append(RandomizationStep(name, rho, ssim, maps))
    return steps


def learnable_layers(model) -> list[str]:
    """A model's layers that own weights, top-down — the order in which cascading randomisation
    destroys them."""
    lm = adapt(model)
    return [name for name, path in reversed(lm.layers.items())
            if any(True for _ in lm.model.get_submodule(path).parameters(recurse=True))]  # fmt: skip
