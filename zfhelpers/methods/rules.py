"""The hook engine: one backward pass, three ReLU rules (ZF §2.1; Springenberg et al. 2015 §3.4).

==============  ==================================================  =========================
rule            backward signal through a rectifier                 used by
==============  ==================================================  =========================
``gradient``    ``R_l = 1[f_l > 0] · R_{l+1}``                       saliency (Simonyan 2014)
``deconvnet``   ``R_l = max(R_{l+1}, 0)`` (forward mask ignored)     Zeiler & Fergus 2014
``guided``      ``R_l = 1[f_l > 0] · max(R_{l+1}, 0)``               Springenberg et al. 2015
==============  ==================================================  =========================

Max-pool switches and transposed filters come from autograd: max-pool's backward routes the
signal to the recorded argmax (ZF's "unpooling with switches"), a convolution's input-gradient is
the transposed convolution with the same weights and no bias (ZF's "filtering"). Where 3×3/2 pools
overlap, several windows can share an argmax; autograd **sums** what lands there (the mirror in
:mod:`zfhelpers.methods.mirror` follows the same rule). Local response normalisation is skipped on the
way down by default for ``deconvnet`` (ZF §2.1: "we do not use any contrast normalization").

ReLU6 (MobileNetV2) is handled with the mask ``0 < f < 6``. In-place ReLUs are switched to
out-of-place while the rules are active and restored afterwards, even after an exception.
Rectifiers called functionally (``F.relu`` inside a ``forward``) cannot be hooked; they are
counted and reported with an :class:`UnhookedRectifierWarning` (or an error with ``strict=True``).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .. import checks

RULES = ("gradient", "deconvnet", "guided")


class UnhookedRectifierWarning(UserWarning):
    """A functional ReLU ran during the pass and kept its ordinary gradient."""


def check_rule(rule: str) -> str:
    return checks.choice(rule, RULES, name="rule")


class _Rectifier(torch.autograd.Function):
    """clamp(x, 0, upper) forward; the chosen rule backward. vmap-able for batched backward."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, rule, upper):
        return x.clamp(0, upper) if upper is not None else x.clamp_min(0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, rule, upper = inputs
        ctx.rule = rule
        ctx.save_for_backward(x)
        ctx.upper = upper

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.rule == "deconvnet":
            return grad.clamp_min(0), None, None
        mask = (x > 0) if ctx.upper is None else (x > 0) & (x < ctx.upper)
        if ctx.rule == "gradient":
            return grad * mask, None, None
        return grad.clamp_min(0) * mask, None, None


class _PassThrough(torch.autograd.Function):
    """Forward: the module's output. Backward: the signal unchanged (used to skip LRN)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, y):
        return y.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad, None


_FUNCTIONAL_RECTIFIERS = {
    torch.relu: "torch.relu",
    torch.relu_: "torch.relu_",
    F.relu: "F.relu",
    F.relu_: "F.relu_",
    F.relu6: "F.relu6",
    F.hardtanh: "F.hardtanh",
    torch.Tensor.relu: "Tensor.relu",
    torch.Tensor.relu_: "Tensor.relu_",
}


class _RectifierSpy(TorchFunctionMode):
    """Counts rectifier calls made outside the hooked modules."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.unhooked: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = _FUNCTIONAL_RECTIFIERS.get(func)
        if name is not None and self.depth == 0:
            self.unhooked[name] = self.unhooked.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def _upper(module: nn.Module) -> float | None:
    return None if isinstance(module, nn.ReLU) else float(module.max_val)


class BackpropRules:
    """Context manager that swaps the backward rule of every ReLU/ReLU6 module of ``model``.

    ``with BackpropRules(model, "guided") as rules: ...`` — inside, any autograd backward through
    ``model`` uses the rule. Hooks, ``inplace`` flags and the function mode are restored on exit.
    ``rules.unhooked`` lists functional rectifiers seen during the body."""

    def __init__(self, model: nn.Module, rule: str, *, skip_lrn: bool | None = None, strict: bool = False):
        self.model = model
        self.rule = check_rule(rule)
        self.skip_lrn = (rule == "deconvnet") if skip_lrn is None else skip_lrn
        self.strict = strict
        self.unhooked: dict[str, int] = {}
        self._handles: list = []
        self._inplace: list[tuple[nn.Module, bool]] = []
        self._spy: _RectifierSpy | None = None

    def __enter__(self) -> BackpropRules:
        try:
            self._spy = _RectifierSpy()
            for module in self.model.modules():
                if isinstance(module, nn.ReLU | nn.ReLU6):
                    self._hook_rectifier(module)
                elif isinstance(module, nn.LocalResponseNorm) and self.skip_lrn:
                    self._handles.append(module.register_forward_hook(lambda m, i, o: _PassThrough.apply(i[0], o)))
            self._spy.__enter__()
        except BaseException:
            self._restore()
            raise
        return self

    def _hook_rectifier(self, module: nn.Module) -> None:
        spy, rule, upper = self._spy, self.rule, _upper(module)
        self._inplace.append((module, module.inplace))
        # In-place would overwrite the input the rule's mask needs (and the caller's tensor).
        module.inplace = False

        def pre(_m, _inputs):
            spy.depth += 1

        def post(_m, inputs, _output):
            spy.depth -= 1
            # Recompute from the untouched input so the module's own ReLU backward is bypassed.
            return _Rectifier.apply(inputs[0], rule, upper)

        self._handles.append(module.register_forward_pre_hook(pre))
        self._handles.append(module.register_forward_hook(post))

    def _restore(self) -> None:
        if self._spy is not None:
            try:
                self._spy.__exit__(None, None, None)
            except (RuntimeError, IndexError):  # mode was never entered
                pass
            self.unhooked = dict(self._spy.unhooked)
            self._spy = None
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for module, flag in self._inplace:
            module.inplace = flag
        self._inplace.clear()

    def __exit__(self, exc_type, exc, tb) -> None:
        self._restore()
        if self.unhooked and exc_type is None:
            msg = (f"rectifiers called functionally kept their plain gradient under rule {self.rule!r}: "
                   + ", ".join(f"{k}×{v}" for k, v in sorted(self.unhooked.items())))  # fmt: skip
            if self.strict:
                raise RuntimeError(msg)
            warnings.warn(msg, UnhookedRectifierWarning, stacklevel=2)
