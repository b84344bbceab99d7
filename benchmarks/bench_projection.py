"""Batched ZF projections vs Captum's NeuronDeconvolution / NeuronGuidedBackprop.

Same model (the offline VGG16 conv stack), same inputs, same units (for each of C channels, the
strongest position in each of N images). Captum needs one call per channel (a callable neuron
selector picks each image's own argmax); zfhelpers does one truncated forward pass and then each
unit's backward pass inside its receptive field (``zfhelpers.methods.cone``), batched. The maps
are checked to agree before the times are printed.

    python benchmarks/bench_projection.py [--quick] [--channels 64] [--images 8] [--size 128] [--layers relu3_3 relu4_3]

``--quick``: 16 channels × 4 images at 128 px. Goals: relu4_3 at least 3× the peer (issue #16),
other layers at least as fast (1). The few-unit part (the explorer's case) has goal 2, timed both
as one cold call and as a slider move with the image's forward pass cached, round-robin with
Captum's call (a shared machine's drifting speed then slows both alike). Every case is also timed
against the limit the issue names, a plain forward pass + one plain backward pass per unit
(``_vs_forward_backward``, goal 1). A cold call must run the forward pass to the layer to find the
strongest unit before any backward pass, so Captum's time over that forward pass alone (PyTorch's
modules, the last convolution computing only the named channels), printed as the bound, caps what
a cold call can reach unless its forward pass is faster than PyTorch's (zfhelpers' pools over
tiles are; nothing else is). It is loose where the unit's receptive field covers the image
(relu5_3, 196 px on 160x200, ``--full`` only): there the unit's backward pass is a whole-image one
as the peer's, a cold call costs what the limit costs (1x), and only a slider move, which skips the
forward pass, can be faster (about 2x: Captum's forward + backward over our backward).
"""

from __future__ import annotations

import argparse
import copy

import torch
from common import machine, result, sample_batch, side_by_side, timed

import zfhelpers
from zfhelpers.methods.projection import Projector, unit_projection
from zfhelpers.methods.receptive import stack_for_layer
from zfhelpers.models.capture import capture, capture_detached


def captum_maps(model, module, x, channels, positions, rule):
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    cls = NeuronDeconvolution if rule == "deconvnet" else NeuronGuidedBackprop
    method = cls(model, module)
    n = torch.arange(x.shape[0])
    maps = []
    for k, c in enumerate(channels):
        ys, xs = positions[k, :, 0], positions[k, :, 1]
        maps.append(method.attribute(x, neuron_selector=lambda out, c=c, ys=ys, xs=xs: out[n, c, ys, xs]))
    return torch.stack(maps)


def forward_backward(lm, x, layer, channels, positions):
    """The limit the issue names: one plain forward pass (graph kept) and one plain backward pass
    per unit — per channel, seeding that channel's unit in every image at once."""
    xg = x.detach().clone().requires_grad_(True)
    acts = capture(lm, xg, [layer])[layer]
    n = torch.arange(x.shape[0])
    grads = []
    for k, c in enumerate(channels):
        unit = acts[n, c, positions[k, :, 0], positions[k, :, 1]].sum()
        grads.append(torch.autograd.grad(unit, xg, retain_graph=k < len(channels) - 1)[0])
    return torch.stack(grads)


def forward_alone(lm, x, layer, channels) -> torch.Tensor:
    """What every exact cold call must run before any backward pass, to find each channel's
    strongest unit: the plain forward pass to ``layer``, its last convolution computing only
    ``channels`` (the maps of the other channels are not needed)."""
    stack = stack_for_layer(lm, layer)
    last = max(i for i, m in enumerate(stack) if isinstance(m, torch.nn.Conv2d))
    conv = stack[last]
    with torch.no_grad():
        h = x
        for m in stack[:last]:
            h = m(h.clone() if h is x else h)
        bias = None if conv.bias is None else conv.bias[channels]
        h = torch.nn.functional.conv2d(h, conv.weight[channels], bias, conv.stride, conv.padding, conv.dilation)
        for m in stack[last + 1 :]:
            h = m(h)
    return h


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--layers", nargs="+", default=["relu3_3", "relu4_3"])
    parser.add_argument("--batch-size", type=int, default=16, help="channels per vmapped backward")
    parser.add_argument("--quick", action="store_true", help="16 channels x 4 images at 128 px")
    args = parser.parse_args()
    if args.quick:
        args.channels, args.images, args.size = 16, 4, 128
    torch.manual_seed(0)

    lm = zfhelpers.load_model("vgg16_hed")
    x = sample_batch(lm.preprocess, args.images, args.size)
    channels = list(range(args.channels))
    # Captum's module hooks need out-of-place ReLUs; give it its own copy.
    peer = copy.deepcopy(lm.model)
    for m in peer.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False

    print(f"# {args.channels} channels x {args.images} images, {args.size}px, vgg16_hed; {machine()}")
    print(f"{'layer':8} {'rule':10} {'zfhelpers s':>12} {'captum s':>10} {'ratio':>7}  max rel. diff")
    for layer in args.layers:
        for rule in ("deconvnet", "guided"):
            compare(lm, peer, x, layer, rule, channels, args.batch_size)
    few_units(lm, peer, args.quick)


def few_units(lm, peer, quick: bool) -> None:
    """The explorer's case: one photo-sized image, one or two units per call (ZF Fig. 1 style)."""
    x = sample_batch(lm.preprocess, 1, 160)
    x = torch.nn.functional.interpolate(x, size=(160, 200), mode="bilinear", align_corners=False)
    layers = ["relu3_3", "relu4_3"] if quick else ["relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    print("# few units: 1 image 160x200, vgg16_hed; goal 2x Captum per call")
    print(f"{'layer':8} {'units':>5} {'rule':10} {'zfhelpers s':>12} {'captum s':>10} {'ratio':>7}  max rel. diff")
    for layer in layers:
        for k in (1, 2):
            for rule in ("deconvnet", "guided"):
                compare_few(lm, peer, x, layer, list(range(3, 3 + k)), rule)


def compare_few(lm, peer, x, layer, chans, rule) -> None:
    module = peer.get_submodule(lm.layers[layer])
    ours = unit_projection(lm, x, layer=layer, channels=chans, rule=rule)  # warm-up, and the units
    # A slider move in the explorer (zfhelpers.notebook.projection_explorers): the forward pass of
    # this image and layer is cached, so a move costs the backward passes of the new units only.
    projector = Projector(lm, x, layer=layer, rule=rule)
    calls = {
        "cold": lambda: unit_projection(lm, x, layer=layer, channels=chans, rule=rule),
        "captum": lambda: captum_maps(peer, module, x, chans, ours.positions, rule),
        "limit": lambda: forward_backward(lm, x, layer, chans, ours.positions),
        "move": lambda: projector.units(chans),
        "forward": lambda: forward_alone(lm, x, layer, chans),
    }
    for call in calls.values():
        call()
    reference = capture_detached(lm, x, [layer])[layer][:, chans]
    assert torch.allclose(calls["forward"](), reference, rtol=1e-5, atol=1e-5), "forward_alone is not the forward pass"
    times = side_by_side(calls, repeat=5)
    (t_ours, ours), (t_peer, theirs) = times["cold"], times["captum"]
    scaled = ours.maps / ours.values.clamp_min(1e-12)[..., None, None, None]
    alive = ours.values > 0  # a unit at zero is skipped here; the deconvnet rule still sends Captum's back
    err = float(((scaled - theirs).abs().amax((2, 3, 4)) / theirs.abs().amax((2, 3, 4)).clamp_min(1e-12))[alive].max())
    assert err < 1e-4, f"maps disagree: {err}"
    k = len(chans)
    print(f"{layer:8} {k:5d} {rule:10} {t_ours:12.3f} {t_peer:10.3f} {t_peer / t_ours:6.1f}x  {err:.1e}  (bound: "
          f"Captum / PyTorch's forward pass alone = {t_peer / times['forward'][0]:.1f}x)", flush=True)  # fmt: skip
    result(f"projection_few_{layer}_{k}unit_{rule}_vs_captum", t_peer / t_ours, 2)
    t_limit = times["limit"][0]
    print(f"{layer:8} {k:5d} {rule:10} {t_ours:12.3f} {t_limit:10.3f} {t_limit / t_ours:6.1f}x  (limit: a plain "
          "forward + one plain backward per unit)", flush=True)  # fmt: skip
    result(f"projection_few_{layer}_{k}unit_{rule}_vs_forward_backward", t_limit / t_ours, 1)
    t_move, moved = times["move"]
    assert torch.equal(moved.positions, ours.positions), "cached projector picked other units"
    err_move = float((moved.maps - ours.maps).abs().max() / ours.maps.abs().max().clamp_min(1e-12))
    assert err_move < 1e-4, f"cached projector's maps disagree: {err_move}"
    print(f"{layer:8} {k:5d} {rule:10} {t_move:12.3f} {t_peer:10.3f} {t_peer / t_move:6.1f}x  {err_move:.1e}"
          "  (slider move, forward cached)", flush=True)  # fmt: skip
    result(f"projection_few_{layer}_{k}unit_{rule}_slider_move_vs_captum", t_peer / t_move, 2)


def compare(lm, peer, x, layer, rule, channels, batch_size) -> None:
    peer_module = peer.get_submodule(lm.layers[layer])
    unit_projection(lm, x[:1], layer=layer, channels=[0], rule=rule)  # warm-up
    t_ours, ours = timed(
        lambda: unit_projection(lm, x, layer=layer, channels=channels, rule=rule, batch_size=batch_size), repeat=2
    )
    t_peer, theirs = timed(lambda: captum_maps(peer, peer_module, x, channels, ours.positions, rule))
    # ZF seeds the backward pass with the activation's value, Captum with 1.
    scaled = ours.maps / ours.values.clamp_min(1e-12)[..., None, None, None]
    alive = ours.values > 0
    err = ((scaled - theirs).abs().amax((2, 3, 4)) / theirs.abs().amax((2, 3, 4)).clamp_min(1e-12))[alive]
    assert float(err.max()) < 1e-4, f"maps disagree: {float(err.max())}"
    print(f"{layer:8} {rule:10} {t_ours:12.2f} {t_peer:10.2f} {t_peer / t_ours:6.1f}x  {float(err.max()):.1e}",
          flush=True)  # fmt: skip
    result(f"projection_{layer}_{rule}_vs_captum", t_peer / t_ours, 3 if layer == "relu4_3" else 1)
    t_limit, _ = timed(lambda: forward_backward(lm, x, layer, channels, ours.positions))
    print(f"{layer:8} {rule:10} {t_ours:12.2f} {t_limit:10.2f} {t_limit / t_ours:6.1f}x  (limit: a plain forward "
          "+ one plain backward per unit)", flush=True)  # fmt: skip
    result(f"projection_{layer}_{rule}_vs_forward_backward", t_limit / t_ours, 1)


if __name__ == "__main__":
    main()
