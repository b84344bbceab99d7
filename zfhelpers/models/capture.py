"""Running a model: one eval context that restores every module's flag, and two ways to capture
layer outputs — :func:`capture` (graph attached, for gradients) and :func:`capture_detached`
(no autograd, for measurements). Both stop the forward pass at the deepest requested layer and
always remove their hooks; the pseudo-layer ``"output"`` asks for the model's return value (the
logits) and so for the whole pass."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .zoo import adapt


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """Every module in eval mode for the body; each module's own ``training`` flag is restored
    afterwards (a model in train mode with frozen batch-norm layers comes back exactly as it was)."""
    flags = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield net
    finally:
        for m, flag in flags:
            m.training = flag


class _AllSeen(Exception):
    pass


#: Pseudo-layer: the model's return value (logits), which needs the whole forward pass.
OUTPUT = "output"


def _run(net: nn.Module, modules: dict[str, nn.Module], x: torch.Tensor, keep: Callable, stop: bool) -> dict:
    store: dict[str, object] = {}
    want_output = OUTPUT in modules
    modules = {k: m for k, m in modules.items() if k != OUTPUT}
    stop = stop and not want_output

    def hook_for(name):
        def hook(_m, _i, output):
            store[name] = keep(output)
            if stop and len(store) == len(modules):
                raise _AllSeen  # nothing above the deepest requested layer is needed

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in modules.items()]
    try:
        out = net(x)
        if want_output:
            store[OUTPUT] = keep(out)
    except _AllSeen:
        pass
    finally:
        for h in handles:
            h.remove()
    missing = [name for name in modules if name not in store]
    if missing:
        raise ValueError(f"layers {missing} were not reached in the forward pass")
    return store


def _modules(lm, layers: Sequence[str]) -> dict[str, nn.Module]:
    if isinstance(layers, str):
        layers = [layers]
    if not layers:
        raise ValueError("no layers to capture; pass at least one layer name")
    return {name: (None if name == OUTPUT else lm.module(name)) for name in layers}


def capture(model, inputs: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """``{layer: output}`` with the autograd graph attached, in eval mode, from a forward pass that
    stops at the deepest of ``layers``. These are the tensors the pass itself used, so gradients
    with respect to them (Grad-CAM) flow; autograd refuses a backward through one that a later
    in-place op rewrote, so no wrong gradient can result."""
    lm = adapt(model)
    modules = _modules(lm, layers)
    with eval_mode(lm.model):
        return _run(lm.model, modules, inputs, lambda out: out, stop=True)


def capture_detached(model, inputs: torch.Tensor, layers: Sequence[str], *, reduce: Callable | None = None,
                     stop: bool = True) -> dict:  # fmt: skip
    """``{layer: output}`` without autograd (``torch.no_grad``; the results stay ordinary tensors
    that any later computation may use) and in eval mode, detached copies; or
    ``{layer: reduce(output)}`` computed inside the hook, so that no map is kept (dataset scans).
    ``stop=False`` runs the whole network (e.g. to record every layer's shape)."""
    lm = adapt(model)
    modules = _modules(lm, layers)
    keep = (lambda out: out.detach().clone()) if reduce is None else reduce
    with eval_mode(lm.model), torch.no_grad():
        return _run(lm.model, modules, inputs, keep, stop=stop)
