"""Re-initialised copies of a model: the baselines of Adebayo et al. 2018 ("Sanity Checks for
Saliency Maps", §3.1) — what a map looks like when the weights can know nothing."""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from .zoo import LoadedModel, adapt


def reinitialize(module: nn.Module, seed: int) -> None:
    """Re-draw every parameter of ``module`` (in place) with each layer's default initialiser;
    batch-norm running statistics are reset too (they are weights learned from data)."""
    torch.manual_seed(seed)
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
            m.reset_running_stats()


def randomized_copy(model, seed: int = 0, *, layers: list[str] | None = None) -> LoadedModel:
    """A deep copy of ``model`` with ``layers`` (default: all) re-initialised; the caller's model is
    never modified. The copy's label says it is random."""
    lm = adapt(model)
    net = copy.deepcopy(lm.model)
    targets = [net] if layers is None else [net.get_submodule(lm.layers[lm.check_layer(n)]) for n in layers]
    for i, module in enumerate(targets):
        reinitialize(module, seed + i)
    net.eval()
    what = "all weights" if layers is None else f"{', '.join(layers)}"
    spec = replace(lm.spec, summary=f"{lm.spec.summary}; {what} RANDOMLY RE-INITIALISED (seed {seed})")
    return LoadedModel(lm.name + "_random", net, dict(lm.layers), lm.preprocess, lm.categories,
                       dict(lm.provenance, randomized=what, seed=seed), spec)  # fmt: skip
