"""Recording layer outputs with forward hooks that are always removed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


def unwrap(model) -> nn.Module:
    """The ``nn.Module`` of a :class:`zfhelpers.models.zoo.LoadedModel`, or the module itself."""
    return model.model if hasattr(model, "layers") and hasattr(model, "model") else model


def resolve_layer(model, layer: str) -> nn.Module:
    """A friendly layer name of a LoadedModel, or a module path of a plain module."""
    if hasattr(model, "layers") and hasattr(model, "model"):
        return model.module(layer)
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"unknown layer {layer!r}; valid module paths: {', '.join(names)}") from None


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """``net.eval()`` for the body; the previous train/eval state is restored afterwards."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


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


class _AllSeen(Exception):
    pass


def forward_until(net: nn.Module, modules: dict[str, nn.Module], x: torch.Tensor,
                  transform: Callable[[torch.Tensor], object] | None = None) -> dict[str, object]:  # fmt: skip
    """Run ``net(x)`` only as far as the deepest of ``modules`` and return ``{name: output}``
    (graph attached), or ``transform(output)`` taken inside the hook (e.g. a reduction, so that no
    map is kept). Hooks are removed even on errors; unreached modules raise ValueError."""
    store: dict[str, object] = {}

    def hook_for(name):
        def hook(_m, _i, output):
            store[name] = output if transform is None else transform(output)
            if len(store) == len(modules):
                raise _AllSeen  # nothing above the deepest requested module is needed

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in modules.items()]
    try:
        net(x)
    except _AllSeen:
        pass
    finally:
        for h in handles:
            h.remove()
    missing = set(modules) - set(store)
    if missing:
        raise ValueError(f"layers {sorted(missing)} were not reached in the forward pass")
    return store


def layer_outputs(model, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Outputs of ``layers`` (friendly names of a LoadedModel, or module paths), graph attached,
    from a forward pass that stops at the deepest of them."""
    return forward_until(unwrap(model), {name: resolve_layer(model, name) for name in layers}, x)


def record_activations(loaded, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Run ``loaded.model`` on ``x`` once and return the outputs of the named layers.

    ``loaded`` is a :class:`zfhelpers.models.zoo.LoadedModel`; the forward pass runs under
    ``torch.inference_mode``."""
    modules = {layer: loaded.module(layer) for layer in layers}
    with recording(loaded.model, modules) as store, torch.inference_mode():
        loaded.model(x)
    return {layer: store[layer] for layer in layers}


def output_and_input_vectors(loaded, x: torch.Tensor, output_of: str, input_of: str):
    """(flattened output of layer ``output_of``, flattened *input* of layer ``input_of``, logits)
    from one forward pass. The input of the last linear layer is the penultimate representation
    (ZF's "layer 7": AlexNet's fc7 output enters fc8; MobileNetV2's pooled vector enters fc)."""
    store: dict = {}
    h1 = resolve_layer(loaded, output_of).register_forward_hook(lambda m, i, o: store.update(out=o.flatten(1)))
    h2 = resolve_layer(loaded, input_of).register_forward_hook(lambda m, i, o: store.update(inp=i[0].flatten(1)))
    try:
        with torch.inference_mode():
            logits = unwrap(loaded)(x)
    finally:
        h1.remove()
        h2.remove()
    return store["out"], store["inp"], logits
