"""Exercises of notebooks 01, 02 and 09: recording a layer, showing filters, the deconvnet's
unpooling and the backward rules written by hand, and the sanity check's similarity."""

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


# --------------------------------------------------------------------------- 01: a forward hook, filters as RGB
@exercise("01.forward_hook", notebook="01_feature_maps_and_filters", title="Record a layer's output with a hook")
def check_forward_hook(student) -> CheckResult:
    """``student(model, module, x)`` runs ``model(x)`` and returns what ``module`` (a submodule)
    produced, using ``module.register_forward_hook``; the hook must be gone afterwards."""
    from ..models.capture import capture_detached

    net, x = _tiny_vgg(), torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    module = net[3]
    ref = capture_detached(net, x, ["3"])["3"]
    got = student(net, module, x)
    if module._forward_hooks:
        module._forward_hooks.clear()
        return CheckResult(False, "the hook is still registered: keep the handle and call handle.remove()")
    if not isinstance(got, torch.Tensor) or got.shape != ref.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return CheckResult(False, f"got {shape}, expected the layer's output of shape {tuple(ref.shape)} — "
                                  "return what the hook saw, not the model's final output")  # fmt: skip
    if not torch.allclose(got.detach(), ref, atol=1e-6):
        return CheckResult(False, "right shape, wrong values: store the hook's `output` argument")
    return CheckResult(True, "your hook records the layer's output, as zfhelpers.capture_detached does")


def _final_output(model, module, x):
    return model(x)  # the typical mistake: the network's output, not the layer's


@solution("01.forward_hook", mistake=_final_output)
def record_with_hook(model, module, x):
    seen = {}
    handle = module.register_forward_hook(lambda _m, _inputs, output: seen.update(out=output.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()  # a forgotten hook would fire on every later forward pass
    return seen["out"]


@exercise("01.filter_rgb", notebook="01_feature_maps_and_filters", title="First-layer filters as RGB tiles, grey = 0")
def check_filter_rgb(student) -> CheckResult:
    """``student(weight)`` turns O×3×k×k first-layer filters into O×k×k×3 images in [0, 1] where a
    zero weight is mid-grey and each filter saturates at its own largest magnitude (ZF Fig. 6)."""
    w = torch.randn(5, 3, 3, 3, generator=torch.Generator().manual_seed(5)) + 0.3
    peak = w.abs().flatten(1).amax(1).view(-1, 1, 1, 1)
    ref = (w / (2 * peak) + 0.5).permute(0, 2, 3, 1)
    got = torch.as_tensor(student(w.clone()))
    if got.shape != ref.shape:
        return CheckResult(False, f"got shape {tuple(got.shape)}, expected {tuple(ref.shape)} (filters × k × k × RGB)")
    if torch.allclose(got.float(), ref, atol=1e-5):
        return CheckResult(True, "grey is zero and each filter is scaled to its own peak, as in plots.plot_rgb_filters")
    if got.float().amin() < 0 or got.float().amax() > 1:
        return CheckResult(False, "values must lie in [0, 1]")
    return CheckResult(False, "a zero weight must map to 0.5 (grey): scale by the largest |weight| of each filter, "
                              "symmetrically around zero, not by its min and max")  # fmt: skip


def _min_max_rgb(weight):
    # the typical mistake: min-max scaling, which moves zero away from grey
    lo = weight.flatten(1).amin(1).view(-1, 1, 1, 1)
    hi = weight.flatten(1).amax(1).view(-1, 1, 1, 1)
    return ((weight - lo) / (hi - lo)).permute(0, 2, 3, 1)


@solution("01.filter_rgb", mistake=_min_max_rgb)
def filter_rgb(weight):
    peak = weight.abs().flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (weight / (2 * peak) + 0.5).permute(0, 2, 3, 1)


# --------------------------------------------------------------------------- 02: the deconvnet ReLU
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


# --------------------------------------------------------------------------- 02: unpooling with switches
def _tiny_vgg_input() -> torch.Tensor:
    return torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))


@exercise("02.unpool_switches", notebook="02_deconvnet", title="Unpooling with the forward switches")
def check_unpool(student) -> CheckResult:
    """``student(signal, switches, size)`` puts each pooled value back where the forward max came
    from (``switches``: the flat argmax indices of ``F.max_pool2d(..., return_indices=True)``, size:
    the map's (H, W) before pooling). Plugged into the explicit mirror, the projection of one unit
    must equal the mirror's own (ZF §2.1: "unpooling … using these switch settings")."""
    from ..methods.mirror import mirror_project

    net, x = _tiny_vgg(), _tiny_vgg_input()
    with torch.no_grad():
        top = net(x)[0, 3]
    position = divmod(int(top.argmax()), top.shape[1])  # a live unit: its projection is not all zeros
    ref = mirror_project(net, x, 7, 3, position).image
    got = mirror_project(net, x, 7, 3, position, unpool=student).image
    if got.shape == ref.shape and torch.allclose(got, ref, atol=1e-6, rtol=1e-5):
        return CheckResult(True, "your unpooling reproduces the mirror's projection (ZF §2.1)")
    if got.shape != ref.shape:
        return CheckResult(False, f"the projection has shape {tuple(got.shape)}, expected {tuple(ref.shape)}: "
                                  "return a map of the size before pooling")  # fmt: skip
    return CheckResult(False, "not the mirror's projection — each pooled value goes to exactly one position, the "
                              "one its switch recorded; every other position of the window stays zero")  # fmt: skip


def _spread_unpool(signal, switches, size):
    # the typical mistake: upsample (copy the value over the whole window), ignoring the switches
    return torch.nn.functional.interpolate(signal, size=tuple(size), mode="nearest")


@solution("02.unpool_switches", mistake=_spread_unpool)
def unpool_switches(signal, switches, size):
    # 2×2 pools do not overlap, so max_unpool2d's "one value per position" loses nothing here
    return torch.nn.functional.max_unpool2d(signal, switches, kernel_size=2, output_size=tuple(size))


# --------------------------------------------------------------------------- 09: guided backprop, rank correlation
@exercise("09.guided_relu", notebook="09_guided_backprop", title="Guided backpropagation's ReLU as a backward hook")
def check_guided_relu(student) -> CheckResult:
    """``student(module, grad_input, grad_output)`` is a full backward hook for ``nn.ReLU``; with it on
    every ReLU, the gradient of one unit must equal the package's guided projection (Springenberg et
    al. 2015 §3.4)."""
    from ..methods.projection import unit_projection

    net, x = _tiny_vgg(), torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    got = _projection_with_hook(student, net, x, channel=3)[0]
    maps = {rule: unit_projection(net, x, layer="7", channels=3, rule=rule).maps[0, 0]
            for rule in ("guided", "deconvnet", "gradient")}  # fmt: skip
    if torch.allclose(got, maps["guided"], atol=1e-6, rtol=1e-5):
        return CheckResult(True, "your hook reproduces guided backpropagation (Springenberg et al. §3.4)")
    hints = {
        "deconvnet": "this is the deconvnet: guided backprop also keeps the forward mask (grad_input already has it)",
        "gradient": "this is the plain gradient: guided backprop also drops the negative signal coming down",
    }
    other = "the projection differs; keep what was positive going up *and* what is positive coming down"
    hint = next((h for rule, h in hints.items() if torch.allclose(got, maps[rule], atol=1e-6, rtol=1e-5)), other)
    return CheckResult(False, f"not guided backprop — {hint}")


@solution("09.guided_relu", mistake=deconvnet_relu_hook)
def guided_relu_hook(module, grad_input, grad_output):
    # grad_input = 1[f > 0] · grad_output already carries the forward mask; rectify it as well
    return (grad_input[0].clamp(min=0),)


@exercise("09.rank_correlation", notebook="09_guided_backprop", title="The sanity check's similarity: rank correlation")
def check_rank_correlation(student) -> CheckResult:
    """``student(a, b)`` returns Spearman's rank correlation of two H×W maps (torch tensors) as a
    float; it must match the package's (Adebayo et al. 2018 §3.1 compare |maps| this way)."""
    from ..analysis.sanity import similarity

    g = torch.Generator().manual_seed(3)
    a = torch.rand(24, 24, generator=g).pow(4)
    b = (a + 0.3 * torch.rand(24, 24, generator=g)).exp()  # monotone in a but for the noise: ranks ≠ values
    ref = similarity(a[None], b[None])[0]
    got = float(student(a, b))
    if abs(got - ref) < 1e-4:
        return CheckResult(True, f"ρ = {got:.4f}, as the package computes it")
    pearson = float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])
    if abs(got - pearson) < 1e-4:
        return CheckResult(False, f"ρ = {got:.4f} is Pearson's correlation of the values; Spearman's uses their ranks")
    return CheckResult(False, f"ρ = {got:.4f}, expected {ref:.4f}: rank each map's values, then correlate the ranks")


def _pearson(a, b):
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


@solution("09.rank_correlation", mistake=_pearson)
def rank_correlation(a, b):
    # ranks: the position of each value in the sorted order (no ties in continuous maps)
    ra, rb = a.flatten().argsort().argsort().double(), b.flatten().argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])
