"""Feature map inversion: (1) a layer's FMIs on two photos as one batch vs one image at a time,
(2) PMCI and Gatys for one painting as one batch vs two style_transfer calls, (3) the modern recipe
vs the authors' SGD: time to the same relative code error.

Same model (VGG16-HED conv stack with average pools), same images, same seeds, one run; results are
checked equal before the times are compared.

    python benchmarks/bench_inversion.py [--quick] [--size 48] [--layer relu3_2] [--filters 5] [--steps 10]

``--quick``: 3 filters x 5 steps, no recipe comparison (it has no goal).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine, result

import zfhelpers
from zfhelpers.inversion import codes, fmi, style
from zfhelpers.inversion.optimize import RECIPES, capture_codes, invert
from zfhelpers.inversion.param import uniform_init
from zfhelpers.paths import data_dir


def bench_fmi(lm, x, layer: str, filters: int, rec) -> None:
    t = time.perf_counter()
    study = fmi.fmi_layer(lm, x, layer=layer, channels=list(range(filters)), recipe=rec, progress=False)
    t_batch = time.perf_counter() - t
    code = capture_codes(lm, x, [layer])[layer]
    n = x.shape[0] * (1 + filters)
    x0 = uniform_init((n, 3, *x.shape[-2:]), torch.Generator().manual_seed(0), rec.init_scale)
    t = time.perf_counter()
    diff, i = 0.0, 0
    for img in range(x.shape[0]):
        targets = [code[img : img + 1]] + [codes.feature_map(code[img : img + 1], k) for k in range(filters)]
        for j, target in enumerate(targets):
            one = invert(lm, {layer: target}, rec, x0=x0[i : i + 1], progress=False)
            diff = max(diff, abs(float(one.error[0] - study.error[img, j])))
            i += 1
    t_single = time.perf_counter() - t
    print(
        f"FMI {layer}: {x.shape[0]} photos x (plain + {filters} filters), {rec.max_steps} steps: one batch "
        f"{t_batch:.1f} s, one at a time {t_single:.1f} s -> {t_single / t_batch:.2f}x (goal >= 3x); "
        f"max |difference of rel. code error| {diff:.1e}"
    )
    result("inversion_batch_vs_one_at_a_time", t_single / t_batch, 3)


def bench_styles(lm, content, painting, rec) -> None:
    kw = dict(layers=style.STYLE_LAYERS, recipe=rec, progress=False)
    t = time.perf_counter()
    both = style.compare_styles(lm, content, {"p": painting}, **kw)
    t_batch = time.perf_counter() - t
    t = time.perf_counter()
    diff = 0.0
    for m in ("gatys", "pmci"):
        one = style.style_transfer(lm, content, painting, m, style_layers=kw["layers"], recipe=rec, progress=False)
        diff = max(diff, float((one.display[0] - both.display["p", m]).abs().max()))
    t_single = time.perf_counter() - t
    print(
        f"PMCI + Gatys, {rec.max_steps} steps: one batch {t_batch:.1f} s, two calls {t_single:.1f} s -> "
        f"{t_single / t_batch:.2f}x; max |pixel difference| {diff:.1e}"
    )


def bench_recipes(lm, x, layers) -> None:
    x0 = uniform_init((1, 3, *x.shape[-2:]), torch.Generator().manual_seed(0), 0.1)
    for layer in layers:
        target = {layer: capture_codes(lm, x, [layer])[layer]}
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
        print(
            f"{layer}: authors {int(ra.steps[0])} steps {ta:.1f} s -> rel. error {goal:.3f}; modern "
            f"{int(rm.steps[0])} steps {tm:.1f} s -> {float(rm.error[0]):.3f}; {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--layer", default="relu3_2")
    parser.add_argument("--filters", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--recipe-layers", nargs="*", default=["relu1_2", "relu3_2"])
    parser.add_argument("--quick", action="store_true", help="3 filters x 5 steps, no recipe comparison")
    args = parser.parse_args()
    if args.quick:
        args.filters, args.steps, args.recipe_layers = 3, 5, []
    torch.manual_seed(0)
    lm = zfhelpers.load_model("vgg16_hed").avg_pooled()
    pre = lm.preprocess.resized(args.size)
    x = torch.cat([zfhelpers.prepare(name, pre).tensor for name in ("chelsea", "coffee")])
    painting = zfhelpers.prepare(data_dir() / "paintings" / "starry_night.jpg", pre).tensor
    print(f"# VGG16-HED (avg pools), chelsea + coffee {args.size}px; {machine()}")
    rec = RECIPES["modern"].with_(max_steps=args.steps, jitter=0)
    invert(
        lm,
        {args.layer: capture_codes(lm, x[:1], [args.layer])[args.layer]},
        rec.with_(max_steps=2),
        x0=x[:1] * 0,
        progress=False,
    )  # warm-up
    bench_fmi(lm, x, args.layer, args.filters, rec)
    bench_styles(lm, x[:1], painting, rec)
    bench_recipes(lm, x[:1], args.recipe_layers)


if __name__ == "__main__":
    main()
