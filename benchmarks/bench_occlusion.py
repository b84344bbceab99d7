"""Occlusion sensitivity (ZF Fig. 7): zfhelpers' incremental pass vs Captum ``Occlusion`` and vs
the limit of the plain approach, one full forward per occluder position (batched).

Same image (chelsea, 224 px), window, stride and fill (0 = the mean) on every side:

* MobileNetV2, window 48, stride 8 (529 positions): (d) the probability map alone vs Captum with
  its best ``perturbations_per_eval``; panels b + d + e from one pass vs the two Captum calls it
  takes (one per scalar; Captum cannot return (e), the most probable class per position).
* VGG16-HED (a conv stack without classifier), window 48, stride 16 (144 positions; a VGG16
  forward costs 15 GFLOP, so stride 8 would take half an hour here): (b) the summed activation of
  one ``relu5_3`` map — Captum and the plain forwards run the stack only up to ``relu5_3``.

Every map is checked before anything is timed: ours against the plain forwards (grid) and against
Captum (its per-pixel form). Then all contenders run in turns, so that a change of load on this
shared machine hits them alike: every variant once (Captum's ``perturbations_per_eval`` 8/16/32/64,
the plain forwards' batch 8/32), then each side's fastest variant ``--repeat`` − 1 more times;
times are the best per side. ``--quick``: one repeat, ``perturbations_per_eval`` 16 or 64, plain
batches of 8, fewer positions (MobileNetV2 at stride 16: 144; VGG16-HED at stride 32: 49) — every
side's time grows with the number of positions alike.

    python benchmarks/bench_occlusion.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from captum.attr import Occlusion
from common import machine, result

import zfhelpers
from zfhelpers.methods.occlusion import occluded_batch, occlusion


def race(families: dict[str, dict], repeat: int) -> dict[str, tuple[float, object]]:
    """Time every variant of every side once, in turns, then each side's fastest variant
    ``repeat`` − 1 more times, again in turns: {side: (best seconds, its variant)}."""
    times: dict[str, dict] = {side: {} for side in families}
    for _ in range(repeat):
        for side, variants in families.items():
            keep = variants if not times[side] else {min(times[side], key=times[side].get): None}
            for key in keep:
                start = time.perf_counter()
                variants[key]()
                times[side][key] = min(times[side].get(key, float("inf")), time.perf_counter() - start)
    return {side: (min(t.values()), min(t, key=t.get)) for side, t in times.items()}


def plain_forwards(net, forward, x, res, batch_size: int):
    """The limit: bare batched forwards of the occluded images, built beforehand, channels-last
    like the plain path (the parameters are converted for the call, then restored)."""
    cells = [(y, x0) for y in res.ys for x0 in res.xs]
    batches = [occluded_batch(x, cells[i : i + batch_size], res.size, res.fill).contiguous(
        memory_format=torch.channels_last) for i in range(0, len(cells), batch_size)]  # fmt: skip

    def run():
        saved = {p: p.data for p in net.parameters()}
        net.to(memory_format=torch.channels_last)
        try:
            with torch.inference_mode():
                return torch.cat([forward(b) for b in batches])
        finally:
            for p, data in saved.items():
                p.data = data

    return run


def captum(fn, x, res, target, ppe: int):
    kw = dict(sliding_window_shapes=(3, *res.size), strides=(3, *res.stride), baselines=res.fill, target=target)

    def run():
        with torch.inference_mode():
            return Occlusion(fn).attribute(x, perturbations_per_eval=ppe, **kw)[0, 0]

    return run


def check(ours, reference, what: str, relative: bool = False) -> float:
    err = (ours - reference).abs().max() / (reference.abs().max() if relative else 1.0)
    assert float(err) < 1e-5, f"{what}: maps differ by {float(err):.1e}"
    return float(err)


def hooked_sums(net, module, inp, channel):
    """Σ over space of one map of ``module``'s output, from a forward hook (Captum's forward function)."""
    out = {}
    handle = module.register_forward_hook(lambda m, i, o: out.update(a=o[:, channel].flatten(1).sum(1)))
    try:
        net(inp)
    finally:
        handle.remove()
    return out["a"]


@contextmanager
def counting_convolutions():
    """Count the multiply-adds of every F.conv2d call inside the block (the incremental path's crops
    and its full-map fallback, and nn.Conv2d's plain forwards, all go through F.conv2d)."""
    count, conv2d = [0], F.conv2d

    def counted(inp, weight, *rest, **kw):
        out = conv2d(inp, weight, *rest, **kw)
        count[0] += out.numel() * weight[0].numel()
        return out

    F.conv2d = counted
    try:
        yield count
    finally:
        F.conv2d = conv2d


def mac_bound(lm, x, res, kw) -> float:
    """Convolution multiply-adds of one full forward per position over those of the incremental run:
    how much of the convolutions' arithmetic an exact incremental pass skips. Not a ceiling on the
    time ratio: the crops also skip memory traffic (full-map batch norm, ReLU6, 224 px activations)
    that the count leaves out, and how much that weighs depends on the CPU (see README.md)."""
    with counting_convolutions() as incremental:
        occlusion(lm, x, **kw)
    with counting_convolutions() as plain, torch.inference_mode():
        lm.model(x)
    return plain[0] * len(res.ys) * len(res.xs) / incremental[0]


def mobilenet(args) -> None:
    lm = zfhelpers.load_model("mobilenet_v2")
    x = zfhelpers.prepare(args.image, lm.preprocess).tensor
    h, w = x.shape[-2:]
    kw = dict(size=args.size, stride=args.stride)
    # maps first (also the warm-up): ours, the plain forwards, Captum
    res, res_all = occlusion(lm, x, **kw), occlusion(lm, x, layer=args.layer, **kw)
    channel, module, n = res_all.channel, lm.module(args.layer), len(res.ys) * len(res.xs)

    def p_and_class(inp):
        p = lm.model(inp).softmax(1)
        return torch.stack([p[:, res.target], p.argmax(1).to(p.dtype)], 1)

    def probs(inp):
        return lm.model(inp).softmax(1)

    def feature_sums(inp):
        return hooked_sums(lm.model, module, inp, channel)

    plain = plain_forwards(lm.model, p_and_class, x, res, 8)()
    check(res.prob, res_all.prob, "probability map alone vs with all panels")
    err_plain = check(res_all.prob, plain[:, 0].view_as(res.prob), "incremental vs plain forwards p(target)")
    assert torch.equal(res_all.top_class, plain[:, 1].long().view_as(res.prob)), "most probable classes differ"
    err_p = check(res.to_pixels(res.base_prob - res.prob, h, w), captum(probs, x, res, res.target, 16)(),
                  "zfhelpers vs Captum p(target)")  # fmt: skip
    err_f = check(res_all.to_pixels(res_all.base_feature_sum - res_all.feature_sum, h, w),
                  captum(feature_sums, x, res, None, 16)(), "zfhelpers vs Captum (b)", relative=True)  # fmt: skip
    t = race({"ours": {None: lambda: occlusion(lm, x, **kw)},
              "ours_all": {None: lambda: occlusion(lm, x, layer=args.layer, **kw)},
              "plain": {bs: plain_forwards(lm.model, p_and_class, x, res, bs) for bs in args.batch_sizes},
              "captum": {p: captum(probs, x, res, res.target, p) for p in args.ppes},
              "captum_b": {p: captum(feature_sums, x, res, None, p) for p in args.ppes}}, args.repeat)  # fmt: skip
    (t_ours, _), (t_all, _), (t_plain, bs), (t_peer, ppe), (t_feat, ppe_b) = t.values()
    print(f"# MobileNetV2, {args.image} {h}px, window {args.size}, stride {args.stride} ({n} positions), fill 0; "
          f"{machine()}")  # fmt: skip
    print(f"probability map: zfhelpers {t_ours:6.2f} s   captum (ppe={ppe}) {t_peer:6.2f} s   plain forwards "
          f"(batch {bs}) {t_plain:6.2f} s   max diff {err_p:.1e} (captum), {err_plain:.1e} (plain)")  # fmt: skip
    print(f"panels b+d+e:    zfhelpers {t_all:6.2f} s   captum 2 calls (b: ppe={ppe_b}, d) {t_peer + t_feat:6.2f} s   "
          f"max rel. diff (b) {err_f:.1e}")  # fmt: skip
    bound = mac_bound(lm, x, res, kw)
    print(
        f"# convolution multiply-adds, plain / incremental: {bound:.2f} (the arithmetic an exact incremental pass "
        f"skips); goal 3x Captum needs {3 * t_plain / t_peer:.2f}x the plain forwards"
    )
    result("occlusion_mobilenet_v2_prob_vs_captum", t_peer / t_ours, 3)
    result("occlusion_mobilenet_v2_panels_bde_vs_captum", (t_peer + t_feat) / t_all, 3)
    result("occlusion_mobilenet_v2_prob_vs_plain_forwards", t_plain / t_ours, 1)


def vgg16_hed(args) -> None:
    lm = zfhelpers.load_model("vgg16_hed")
    x = zfhelpers.prepare(args.image, lm.preprocess).tensor
    h, w = x.shape[-2:]
    kw = dict(size=args.size, stride=args.vgg_stride, layer="relu5_3")
    res = occlusion(lm, x, **kw)  # maps first (also the warm-up)
    channel, n = res.channel, len(res.ys) * len(res.xs)
    # Captum and the plain forwards run only what panel (b) needs: the stack up to relu5_3
    trunk = lm.model.features[: int(lm.layers["relu5_3"].rpartition(".")[2]) + 1]

    def feature_sum(inp):
        return trunk(inp)[:, channel].flatten(1).sum(1)

    plain = plain_forwards(lm.model, feature_sum, x, res, 8)()
    err_plain = check(res.feature_sum, plain.view_as(res.feature_sum), "incremental vs plain forwards", True)
    err = check(res.to_pixels(res.base_feature_sum - res.feature_sum, h, w), captum(feature_sum, x, res, None, 16)(),
                "zfhelpers vs Captum (b)", relative=True)  # fmt: skip
    t = race({"ours": {None: lambda: occlusion(lm, x, **kw)},
              "plain": {bs: plain_forwards(lm.model, feature_sum, x, res, bs) for bs in args.batch_sizes},
              "captum": {p: captum(feature_sum, x, res, None, p) for p in args.ppes}}, args.repeat)  # fmt: skip
    (t_ours, _), (t_plain, bs), (t_peer, ppe) = t.values()
    print(f"# VGG16-HED, {args.image} {h}px, relu5_3 map {channel} summed, window {args.size}, stride "
          f"{args.vgg_stride} ({n} positions), fill 0; {machine()}")  # fmt: skip
    print(f"panel (b):       zfhelpers {t_ours:6.2f} s   captum (ppe={ppe}) {t_peer:6.2f} s   plain forwards "
          f"(batch {bs}) {t_plain:6.2f} s   max rel. diff {err:.1e} (captum), {err_plain:.1e} (plain)")  # fmt: skip
    result("occlusion_vgg16_hed_relu5_3_vs_captum", t_peer / t_ours, 3)
    result("occlusion_vgg16_hed_relu5_3_vs_plain_forwards", t_plain / t_ours, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer settings tried, strides 16 and 32")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--vgg-stride", type=int, default=16)
    parser.add_argument("--image", default="chelsea")
    parser.add_argument("--layer", default="head", help="MobileNetV2 layer of panel (b)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "vgg16_hed"])
    args = parser.parse_args()
    args.ppes, args.batch_sizes = (8, 16, 32, 64), (8, 32)
    if args.quick:
        args.repeat, args.stride, args.vgg_stride, args.ppes, args.batch_sizes = 1, 16, 32, (16, 64), (8,)
    torch.manual_seed(0)
    for name in args.models:
        {"mobilenet_v2": mobilenet, "vgg16_hed": vgg16_hed}[name](args)


if __name__ == "__main__":
    main()
