"""Explanatory-graph learning time per layer and its growth with the number of images (issue #8:
the offline default inside the `make figures` budget, linear growth in images).

The parts net on procedural critters, the notebook's four layers and densities, 20 EM iterations.

    python benchmarks/bench_graph.py [--quick] [--images 50 100 200] [--iterations 20]

``--quick``: 25 and 50 images, 5 iterations. The RESULT line is the per-image time at the fewest
images over that at the most (1 = linear growth; goal 0.8: within 25% of linear).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine, result

from zfhelpers.data import critters
from zfhelpers.graph import evaluate as graph_eval
from zfhelpers.graph import model as eg
from zfhelpers.models import trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="25 and 50 images, 5 iterations")
    args = parser.parse_args()
    if args.quick:
        args.images, args.iterations = [25, 50], 5
    torch.manual_seed(0)
    net = trained.load_twin("parts_vgg")
    layers = list(trained.GRAPH_LAYERS)
    densities = dict(zip(layers, (0.05, 0.05, 0.1, 0.1)))
    strides = {name: 112 / net.shape(name)[-1] for name in layers}
    x, _, _ = critters.make(max(args.images), positive_rate=1.0, seed=100)
    neg, _, _ = critters.make(200, positive_rate=0.0, seed=300)
    maps = graph_eval.normalised_maps(net, layers, x, neg, trained.critter_input)
    print(f"# explanatory graph, parts_vgg {layers}, {args.iterations} iterations; {machine()}")
    print(f"{'images':>7}" + "".join(f"{name:>10}" for name in reversed(layers)) + f"{'total':>10}{'s/image':>10}")
    base = per_image = None
    for n in args.images:
        sub = {name: m[:n] for name, m in maps.items()}
        times, upper = [], None
        gen = torch.Generator().manual_seed(0)
        for name in reversed(layers):
            params = eg.GraphParams(density=densities[name], iterations=args.iterations)
            layer = eg.init_layer(name, tuple(sub[name].shape[-2:]), sub[name].shape[1], strides[name], params, gen)
            t = time.perf_counter()
            upper = eg.learn_layer(sub[name], layer, params, upper, progress=False)
            times.append(time.perf_counter() - t)
        total = sum(times)
        per_image = total / n
        base = base or per_image
        print(f"{n:>7}" + "".join(f"{t:>9.1f}s" for t in times) + f"{total:>9.1f}s{total / n:>10.3f}"
              + f"   ({total / n / base:.2f}x the per-image time at {args.images[0]})")  # fmt: skip
    result("graph_linear_growth", base / per_image, 0.8)


if __name__ == "__main__":
    main()
