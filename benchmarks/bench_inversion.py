"""Feature map inversion: (1) a layer's filters inverted as one batch vs one at a time (issue #7's
goal: ≥ 3×), (2) the modern recipe vs the authors' SGD: time to the same relative code error.

Same model (VGG16-HED conv stack with average pools), same image, same seeds, one run.

    python benchmarks/bench_inversion.py [--quick] [--size 64] [--layer relu3_2] [--filters 8] [--steps 20]

``--quick``: 4 filters x 10 steps, no recipe comparison (it has no goal).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine, result

import zfhelpers
from zfhelpers import inversion
from zfhelpers.inversion.optimize import RECIPES, invert
from zfhelpers.inversion.param import uniform_init
from zfhelpers.models.zoo import Preprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--layer", default="relu3_2")
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--recipe-layers", nargs="+", default=["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"])
    parser.add_argument("--quick", action="store_true", help="4 filters x 10 steps, no recipe comparison")
    args = parser.parse_args()
    if args.quick:
        args.filters, args.steps, args.recipe_layers = 4, 10, []
    torch.manual_seed(0)
    lm = zfhelpers.load_model("vgg16_hed").avg_pooled()
    pre = Preprocess(resize=args.size, crop=args.size, mean=lm.preprocess.mean, std=lm.preprocess.std)
    x = zfhelpers.prepare("chelsea", pre).tensor
    print(f"# VGG16-HED (avg pools), chelsea {args.size}px; {machine()}")

    # (1) batching
    with torch.no_grad():
        code = inversion.capture_codes(lm, x, [args.layer])[args.layer]
    ks = torch.arange(args.filters)
    targets = inversion.feature_map(code.expand(args.filters, -1, -1, -1), ks)
    rec = RECIPES["modern"].with_(max_steps=args.steps, jitter=0)
    x0 = uniform_init((args.filters, 3, args.size, args.size), torch.Generator().manual_seed(0), rec.init_scale)
    invert(lm, {args.layer: targets[:1]}, rec.with_(max_steps=2), x0=x0[:1], progress=False)  # warm-up
    t = time.perf_counter()
    batched = invert(lm, {args.layer: targets}, rec, x0=x0, progress=False)
    t_batch = time.perf_counter() - t
    t = time.perf_counter()
    singles = [invert(lm, {args.layer: targets[i : i + 1]}, rec, x0=x0[i : i + 1], progress=False)
               for i in range(args.filters)]  # fmt: skip
    t_single = time.perf_counter() - t
    # Adam divides by sqrt(v): pixels whose gradient is ~0 move by ±lr on float noise, so compare
    # the objective reached, not pixels.
    diff = max(abs(float(s.error[0] - batched.error[i])) for i, s in enumerate(singles))
    print(f"FMI {args.layer}, {args.filters} filters x {args.steps} steps: one batch {t_batch:.1f} s, one at a time "
          f"{t_single:.1f} s -> {t_single / t_batch:.2f}x (goal >= 3x); "
          f"max |difference of rel. code error| {diff:.1e}")  # fmt: skip
    result("inversion_batch_vs_one_at_a_time", t_single / t_batch, 3)

    # (2) recipes: plain inversion of each layer, time to the authors' final error
    x0 = uniform_init((1, 3, args.size, args.size), torch.Generator().manual_seed(0), 0.1)
    for layer in args.recipe_layers:
        with torch.no_grad():
            target = {layer: inversion.capture_codes(lm, x, [layer])[layer]}
        runs = {}
        for name in ("authors", "modern"):
            t = time.perf_counter()
            res = invert(lm, target, RECIPES[name], x0=x0, progress=False)
            runs[name] = (res, time.perf_counter() - t, torch.stack(res.history)[:, 0])
        (ra, ta, _), (rm, tm, hm) = runs["authors"], runs["modern"]
        goal = float(ra.error[0])
        reached = (hm <= goal).nonzero()
        if len(reached):
            step = int(reached[0]) + 1
            t_reach = tm * step / len(hm)
            verdict = f"modern reaches it at step {step} (~{t_reach:.1f} s): {ta / t_reach:.1f}x faster"
        else:
            verdict = f"modern never reaches it (its best: {float(hm.min()):.3f})"
        print(f"{layer}: authors {int(ra.steps[0])} steps {ta:.1f} s -> rel. error {goal:.3f}; modern "
              f"{int(rm.steps[0])} steps {tm:.1f} s -> {float(rm.error[0]):.3f}; {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
