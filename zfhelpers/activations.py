"""Recording layer outputs with forward hooks that are always removed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def recording(model: nn.Module, modules: dict[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Context manager: ``{name: output}`` filled by forward hooks during the ``with`` body.

    Outputs are cloned and detached because a following in-place ReLU would otherwise rewrite a
    recorded conv output (a classic source of "conv maps without negatives")."""
    store: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            store[name] = output.detach().clone()

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(hook_for(name)))
        yield store
    finally:
        for h in handles:
            h.remove()


def record_activations(loaded, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Run ``loaded.model`` on ``x`` once and return the outputs of the named layers.

    ``loaded`` is a :class:`zfhelpers.zoo.LoadedModel`; the forward pass runs under
    ``torch.inference_mode``."""
    modules = {layer: loaded.module(layer) for layer in layers}
    with recording(loaded.model, modules) as store, torch.inference_mode():
        loaded.model(x)
    return {layer: store[layer] for layer in layers}
