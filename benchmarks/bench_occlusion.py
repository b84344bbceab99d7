"""Occlusion sensitivity (ZF Fig. 7): zfhelpers' incremental pass vs Captum ``Occlusion`` and vs
the limit of the plain approach, one full forward per occluder position (batched).

Same image (chelsea, 224 px), window, stride and fill (0 = the mean) on every side:

* MobileNetV2, window 48, stride 8 (529 positions): (d) the probability map alone vs Captum with
  its best ``perturbations_per_eval``; panels b + d + e from one pass vs the two Captum calls it
  takes (one per scalar; Captum cannot return (e), the most probable class per position).
* VGG16-HED (a conv stack without classifier), window 48, stride 8: (b) the summed activation of
  one ``relu5_3`` map — Captum and the plain forwards run the stack only up to ``relu5_3``.

Every map is checked before times are printed: ours against the plain batched path (grid) and
against Captum (its per-pixel form). Times are the best of ``--repeat`` runs; Captum's
``perturbations_per_eval`` is chosen on one run each, then timed like ours; the plain forwards'
batch size likewise (8 or 32). ``--quick``: one repeat, ``perturbations_per_eval`` 16 or 64, plain
batches of 8, fewer positions (MobileNetV2 at stride 16: 144; VGG16-HED at stride 32: 49) — every
side's time grows with the number of positions alike.

    python benchmarks/bench_occlusion.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse

import torch
from captum.attr import Occlusion
from common import machine, result, timed

import zfhelpers
from zfhelpers.occlusion import occluded_batch, occlusion


def plain_forwards(forward, reduce, x, res, batch_size: int):
    """The limit: bare batched forwards of the occluded images (built beforehand, channels-last);
    ``reduce`` keeps a few numbers per image so that the maps can be compared."""
    cells = [(y, x0) for y in res.ys for x0 in res.xs]
    batches = [occluded_batch(x, cells[i : i + batch_size], res.size, res.fill).contiguous(
        memory_format=torch.channels_last) for i in range(0, len(cells), batch_size)]  # fmt: skip

    def run():
        with torch.inference_mode():
            return torch.cat([reduce(forward(b)) for b in batches])

    return run


def best_limit(net, forward, reduce, x, res, batch_sizes, repeat: int):
    """Fastest batch size for the bare forwards, parameters channels-last as in the plain path:
    (seconds, batch size, reduced outputs)."""
    formats = {p: p.data for p in net.parameters()}
    net.to(memory_format=torch.channels_last)
    try:
        runs = {bs: timed(plain_forwards(forward, reduce, x, res, bs), repeat=repeat) for bs in batch_sizes}
    finally:
        for p, data in formats.items():
            p.data = data
    bs = min(runs, key=lambda b: runs[b][0])
    return runs[bs][0], bs, runs[bs][1]


def best_captum(fn, x, res, target, ppes, repeat: int):
    """Captum's time with its fastest ``perturbations_per_eval`` (each tried once, the best one
    re-timed up to ``repeat`` runs in all): (seconds, ppe, per-pixel map)."""
    kw = dict(sliding_window_shapes=(3, *res.size), strides=(3, *res.stride), baselines=res.fill, target=target)
    sweep = {p: timed(lambda p=p: Occlusion(fn).attribute(x, perturbations_per_eval=p, **kw)) for p in ppes}
    ppe = min(sweep, key=lambda p: sweep[p][0])
    t, attr = sweep[ppe]
    if repeat > 1:
        t = min(t, timed(lambda: Occlusion(fn).attribute(x, perturbations_per_eval=ppe, **kw), repeat=repeat - 1)[0])
    return t, ppe, attr[0, 0]


def check(ours, reference, what: str, relative: bool = False) -> float:
    err = (ours - reference).abs().max() / (reference.abs().max() if relative else 1.0)
    assert float(err) < 1e-5, f"{what}: maps differ by {float(err):.1e}"
    return float(err)


def mobilenet(args) -> None:
    lm = zfhelpers.load_model("mobilenet_v2")
    x = zfhelpers.prepare(args.image, lm.preprocess).tensor
    h, w = x.shape[-2:]
    kw = dict(size=args.size, stride=args.stride)
    occlusion(lm, x, size=h // 2, stride=h // 2)  # warm-up
    t_ours, res = timed(lambda: occlusion(lm, x, **kw), repeat=args.repeat)
    t_all, res_all = timed(lambda: occlusion(lm, x, layer=args.layer, **kw), repeat=args.repeat)
    n = len(res.ys) * len(res.xs)
    print(f"# MobileNetV2, {args.image} {h}px, window {args.size}, stride {args.stride} ({n} positions), fill 0; "
          f"{machine()}", flush=True)  # fmt: skip

    def p_and_class(out):
        p = out.softmax(1)
        return torch.stack([p[:, res.target], p.argmax(1).to(p.dtype)], 1)

    t_limit, bs, plain = best_limit(lm.model, lm.model, p_and_class, x, res, args.batch_sizes, args.repeat)
    err_plain = check(res_all.prob, plain[:, 0].view_as(res.prob), "incremental vs plain forwards p(target)")
    assert torch.equal(res_all.top_class, plain[:, 1].long().view_as(res.prob)), "most probable classes differ"
    channel, module = res_all.channel, lm.module(args.layer)
    with torch.inference_mode():
        t_peer, ppe, attr = best_captum(lambda inp: lm.model(inp).softmax(1), x, res, res.target, args.ppes,
                                        args.repeat)  # fmt: skip
        t_feat, _, attr_f = best_captum(lambda inp: hooked_sums(lm.model, module, inp, channel), x, res, None,
                                        [ppe], args.repeat)  # fmt: skip
    err_p = check(res.to_pixels(res.base_prob - res.prob, h, w), attr, "zfhelpers vs Captum p(target)")
    err_f = check(res_all.to_pixels(res_all.base_feature_sum - res_all.feature_sum, h, w), attr_f,
                  "zfhelpers vs Captum feature sums", relative=True)  # fmt: skip
    print(f"probability map: zfhelpers {t_ours:6.2f} s   captum (ppe={ppe}) {t_peer:6.2f} s   plain forwards "
          f"(batch {bs}) {t_limit:6.2f} s   max diff {err_p:.1e} (captum), {err_plain:.1e} (plain)")  # fmt: skip
    print(f"panels b+d+e:    zfhelpers {t_all:6.2f} s   captum 2 calls (b, d) {t_peer + t_feat:6.2f} s   "
          f"max rel. diff (b) {err_f:.1e}")  # fmt: skip
    result("occlusion_mobilenet_v2_prob_vs_captum", t_peer / t_ours, 3)
    result("occlusion_mobilenet_v2_panels_bde_vs_captum", (t_peer + t_feat) / t_all, 3)
    result("occlusion_mobilenet_v2_prob_vs_plain_forwards", t_limit / t_ours, 1)


def hooked_sums(net, module, inp, channel):
    """Σ over space of one map of ``module``'s output, from a forward hook (Captum's forward function)."""
    out = {}
    handle = module.register_forward_hook(lambda m, i, o: out.update(a=o[:, channel].flatten(1).sum(1)))
    try:
        net(inp)
    finally:
        handle.remove()
    return out["a"]


def vgg16_hed(args) -> None:
    lm = zfhelpers.load_model("vgg16_hed")
    x = zfhelpers.prepare(args.image, lm.preprocess).tensor
    h, w = x.shape[-2:]
    stride = args.vgg_stride
    kw = dict(size=args.size, stride=stride, layer="relu5_3")
    # Captum and the plain forwards run only what panel (b) needs: the stack up to relu5_3
    trunk = lm.model.features[: int(lm.layers["relu5_3"].rpartition(".")[2]) + 1]
    occlusion(lm, x, size=h // 2, stride=h // 2, layer="relu5_3")  # warm-up
    t_ours, res = timed(lambda: occlusion(lm, x, **kw), repeat=args.repeat)
    channel, n = res.channel, len(res.ys) * len(res.xs)
    print(f"# VGG16-HED, {args.image} {h}px, relu5_3 map {channel} summed, window {args.size}, stride {stride} "
          f"({n} positions), fill 0; {machine()}", flush=True)  # fmt: skip

    def feature_sum(inp):
        return trunk(inp)[:, channel].flatten(1).sum(1)

    t_limit, bs, plain = best_limit(lm.model, feature_sum, lambda s: s, x, res, args.batch_sizes, args.repeat)
    err_plain = check(res.feature_sum, plain.view_as(res.feature_sum), "incremental vs plain forwards", True)
    with torch.inference_mode():
        t_peer, ppe, attr = best_captum(feature_sum, x, res, None, args.ppes, args.repeat)
    err = check(res.to_pixels(res.base_feature_sum - res.feature_sum, h, w), attr, "zfhelpers vs Captum (b)",
                relative=True)  # fmt: skip
    print(f"panel (b):       zfhelpers {t_ours:6.2f} s   captum (ppe={ppe}) {t_peer:6.2f} s   plain forwards "
          f"(batch {bs}) {t_limit:6.2f} s   max rel. diff {err:.1e} (captum), {err_plain:.1e} (plain)")  # fmt: skip
    result("occlusion_vgg16_hed_relu5_3_vs_captum", t_peer / t_ours, 3)
    result("occlusion_vgg16_hed_relu5_3_vs_plain_forwards", t_limit / t_ours, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer settings tried, strides 16 and 32")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--vgg-stride", type=int, default=8)
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
