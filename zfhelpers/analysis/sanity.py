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
from torch import nn


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


def _reinit(module: nn.Module, generator_seed: int) -> None:
    torch.manual_seed(generator_seed)
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if isinstance(m, nn.BatchNorm2d):  # running statistics are weights too
            m.reset_running_stats()


def cascading_randomization(
    model: nn.Module,
    layers: Sequence[tuple[str, str]],
    method: Callable[[nn.Module], torch.Tensor],
    *,
    seed: int = 0,
) -> list[RandomizationStep]:
    """Run ``method(model_copy) -> N×3×H×W`` on the trained copy, then after re-initialising
    ``layers`` (``(label, module_path)`` from the top down) cumulatively. The caller's model is
    never modified."""
    net = copy.deepcopy(model).eval()
    reference = heat(method(net))
    steps = [RandomizationStep("none", 1.0, 1.0, reference)]
    for i, (label, path) in enumerate(layers):
        _reinit(net.get_submodule(path), seed + i)
        net.eval()
        maps = heat(method(net))
        rho, ssim = similarity(reference, maps)
        steps.append(RandomizationStep(label, rho, ssim, maps))
    return steps


def learnable_layers(loaded) -> list[tuple[str, str]]:
    """``(friendly name, module path)`` of a zoo model's layers that own weights, top-down —
    the order in which cascading randomisation destroys them."""
    out = []
    for name, path in loaded.layers.items():
        module = loaded.model.get_submodule(path)
        if any(True for _ in module.parameters(recurse=True)):
            out.append((name, path))
    return out[::-1]
