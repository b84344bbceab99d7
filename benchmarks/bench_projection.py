"""Batched ZF projections vs Captum's NeuronDeconvolution / NeuronGuidedBackprop.

Same model (the offline VGG16 conv stack), same inputs, same units (for each of C channels, the
strongest position in each of N images). Captum needs one call per channel (a callable neuron
selector picks each image's own argmax); zfhelpers does one truncated forward pass and then each
unit's backward pass inside its receptive field (``zfhelpers.methods.cone``), batched. The maps
are checked to agree before the times are printed.

    python benchmarks/bench_projection.py [--quick] [--channels 64] [--images 8] [--size 128] [--layers relu3_3 relu4_3]

``--quick``: 16 channels × 4 images at 128 px. Goals: relu4_3 at least 3× the peer (issue #16),
other layers at least as fast (1). The few-unit part (the explorer's case) has goal 2, timed both
as one cold call and as a slider move with the image's forward pass cached. Every case is also
timed against the limit the issue names, a plain forward pass + one plain backward pass per unit
(``_vs_forward_backward``, goal 1).
"""

from __future__ import annotations

import argparse
import copy

import torch
from common import machine, result, sample_batch, timed

import zfhelpers
from zfhelpers.methods.projection import Projector, unit_projection
from zfhelpers.models.capture import capture


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
    def ours_call():
        return unit_projection(lm, x, layer=layer, channels=chans, rule=rule)

    ours_call()  # warm-up
    t_ours, ours = timed(ours_call, repeat=3)
    module = peer.get_submodule(lm.layers[layer])
    t_peer, theirs = timed(lambda: captum_maps(peer, module, x, chans, ours.positions, rule), repeat=3)
    scaled = ours.maps / ours.values.clamp_min(1e-12)[..., None, None, None]
    alive = ours.values > 0  # a unit at zero is skipped here; the deconvnet rule still sends Captum's back
    err = float(((scaled - theirs).abs().amax((2, 3, 4)) / theirs.abs().amax((2, 3, 4)).clamp_min(1e-12))[alive].max())
    assert err < 1e-4, f"maps disagree: {err}"
    k = len(chans)
    print(f"{layer:8} {k:5d} {rule:10} {t_ours:12.3f} {t_peer:10.3f} {t_peer / t_ours:6.1f}x  {err:.1e}", flush=True)
    result(f"projection_few_{layer}_{k}unit_{rule}_vs_captum", t_peer / t_ours, 2)
    t_limit, _ = timed(lambda: forward_backward(lm, x, layer, chans, ours.positions), repeat=3)
    print(f"{layer:8} {k:5d} {rule:10} {t_ours:12.3f} {t_limit:10.3f} {t_limit / t_ours:6.1f}x  (limit: a plain "
          "forward + one plain backward per unit)", flush=True)  # fmt: skip
    result(f"projection_few_{layer}_{k}unit_{rule}_vs_forward_backward", t_limit / t_ours, 1)
    # A slider move in the explorer (zfhelpers.notebook.projection_explorers): the forward pass of
    # this image and layer is cached, so a move costs the backward passes of the new units only.
    projector = Projector(lm, x, layer=layer, rule=rule)
    t_move, moved = timed(lambda: projector.units(chans), repeat=3)
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
