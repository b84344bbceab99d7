"""Exercises of notebooks 01, 02 and 09: the backward rules written by hand."""

from __future__ import annotations

import torch
from torch import nn

from .registry import CheckResult, exercise, solution


def _tiny_vgg() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()).eval()  # fmt: skip


def _projection_with_hook(hook, net, x, channel: int) -> torch.Tensor:
    """Gradient of the strongest unit of ``channel`` at the last layer, with ``hook`` on every ReLU."""
    handles = [m.register_full_backward_hook(hook) for m in net if isinstance(m, nn.ReLU)]
    try:
        xg = x.clone().requires_grad_(True)
        out = net(xg)
        flat = out[0, channel].flatten().argmax()
        seed = torch.zeros_like(out)
        seed[0, channel].view(-1)[flat] = out[0, channel].view(-1)[flat].detach()
        (g,) = torch.autograd.grad(out, xg, seed)
    finally:
        for h in handles:
            h.remove()
    return g


@exercise("02.deconvnet_relu", notebook="02_deconvnet", title="ZF's deconvnet ReLU as a backward hook")
def check_deconvnet_relu(student) -> CheckResult:
    """``student(module, grad_input, grad_output)`` is a full backward hook for ``nn.ReLU``; with it on
    every ReLU, the gradient of one unit must equal the package's deconvnet projection (ZF §2.1)."""
    from ..methods.projection import unit_projection

    net, x = _tiny_vgg(), torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    got = _projection_with_hook(student, net, x, channel=3)
    ref = unit_projection(net, x, layer="7", channels=3, rule="deconvnet").maps[0, 0]
    if torch.allclose(got[0], ref, atol=1e-6, rtol=1e-5):
        return CheckResult(True, "your hook reproduces the deconvnet projection (ZF §2.1)")
    grad = unit_projection(net, x, layer="7", channels=3, rule="gradient").maps[0, 0]
    guided = unit_projection(net, x, layer="7", channels=3, rule="guided").maps[0, 0]
    if torch.allclose(got[0], grad, atol=1e-6, rtol=1e-5):
        hint = "this is the plain gradient: the signal is masked by where the forward input was positive"
    elif torch.allclose(got[0], guided, atol=1e-6, rtol=1e-5):
        hint = "this is guided backprop: you kept the forward mask *and* rectified the signal"
    else:
        hint = "the projection differs; the deconvnet rectifies the signal coming down, ignoring the forward pass"
    return CheckResult(False, f"not the deconvnet rule — {hint}")


@solution("02.deconvnet_relu", mistake=lambda module, grad_input, grad_output: grad_input)
def deconvnet_relu_hook(module, grad_input, grad_output):
    # ZF: "we pass the reconstructed signal through a relu": rectify what arrives from above
    return (grad_output[0].clamp(min=0),)
