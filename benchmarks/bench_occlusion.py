"""Occlusion sensitivity (ZF Fig. 7) vs Captum ``Occlusion`` on the same model, image, window,
stride and fill.

* probability map alone: zfhelpers vs Captum with its best ``perturbations_per_eval``;
* panels b + d + e: zfhelpers' single pass vs the Captum calls needed — one for the probability
  map and one for the summed feature map. Captum has no way to return panel (e), the most probable
  class per position (its attributions are per-pixel averages of one scalar), so the ratio for
  "all panels" counts only the two calls it can make.

Times are the best of 3 runs. Both sides' maps are compared (in Captum's per-pixel form) before times are printed.

    python benchmarks/bench_occlusion.py [--size 48] [--stride 16] [--image chelsea]
"""

from __future__ import annotations

import argparse

import torch
from captum.attr import Occlusion
from common import machine, timed

import zfhelpers
from zfhelpers.methods.occlusion import occlusion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--image", default="chelsea")
    parser.add_argument("--layer", default="head")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    lm = zfhelpers.load_model("mobilenet_v2")
    x = zfhelpers.prepare(args.image, lm.preprocess).tensor
    h, w = x.shape[-2:]

    occlusion(lm, x, size=args.size, stride=args.stride, batch_size=args.batch_size)  # warm-up
    t_prob, res = timed(lambda: occlusion(lm, x, size=args.size, stride=args.stride, batch_size=args.batch_size),
                        repeat=3)
    t_all, res_all = timed(lambda: occlusion(lm, x, size=args.size, stride=args.stride, layer=args.layer,
                                             batch_size=args.batch_size), repeat=3)  # fmt: skip
    target, channel = res.target, res_all.channel
    module = lm.module(args.layer)

    def probs(inp):
        with torch.inference_mode():
            return lm.model(inp).softmax(1)

    def feature_sum(inp):
        out = {}
        handle = module.register_forward_hook(lambda m, i, o: out.update(a=o))
        try:
            with torch.inference_mode():
                lm.model(inp)
        finally:
            handle.remove()
        return out["a"][:, channel].flatten(1).sum(1)

    kw = dict(sliding_window_shapes=(3, args.size, args.size), strides=(3, args.stride, args.stride), baselines=0.0)
    best = None
    for ppe in (8, 16, 32, 64):
        t, attr = timed(lambda ppe=ppe: Occlusion(probs).attribute(x, target=target, perturbations_per_eval=ppe, **kw),
                        repeat=3)
        print(f"  captum probability map, perturbations_per_eval={ppe:3d}: {t:.2f} s")
        if best is None or t < best[0]:
            best = (t, ppe, attr)
    t_peer_prob, ppe, attr = best
    t_peer_feat, attr_feat = timed(lambda: Occlusion(feature_sum).attribute(x, perturbations_per_eval=ppe, **kw),
                                   repeat=3)

    err_p = float((res.to_pixels(res.base_prob - res.prob, h, w) - attr[0, 0]).abs().max())
    err_f = float(((res_all.to_pixels(res_all.base_feature_sum - res_all.feature_sum, h, w) - attr_feat[0, 0]).abs()
                   / attr_feat.abs().max()).max())  # fmt: skip
    assert err_p < 1e-5 and err_f < 1e-5, (err_p, err_f)
    n = len(res.ys) * len(res.xs)
    print(f"# occlusion, mobilenet_v2, {args.image} 224px, window {args.size}, stride {args.stride} ({n} positions), "
          f"fill 0 (mean); {machine()}")  # fmt: skip
    print(f"probability map:      zfhelpers {t_prob:6.2f} s   captum (ppe={ppe}) {t_peer_prob:6.2f} s   "
          f"ratio {t_peer_prob / t_prob:4.2f}x   max diff {err_p:.1e}")  # fmt: skip
    print(f"panels b + d (+ e):   zfhelpers {t_all:6.2f} s   captum 2 calls {t_peer_prob + t_peer_feat:6.2f} s   "
          f"ratio {(t_peer_prob + t_peer_feat) / t_all:4.2f}x   max rel. diff {err_f:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
