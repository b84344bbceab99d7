"""Dataset top-9 scan throughput vs a plain forward pass over the same data (issue #4's limit: 1×).

The scan stops each forward at the scanned layer and keeps a running top-k per channel; a plain
forward runs the whole network and keeps nothing. Same model (the trained ZF twin's conv stack),
same images, one run. Also: all five rectified layers scanned in one pass (``scan_topk`` with a list).

    python benchmarks/bench_scan.py [--quick] [--images 2000] [--layer relu5]

``--quick``: 500 images, one repeat.
"""

from __future__ import annotations

import argparse

import torch
from common import machine, result, timed

from zfhelpers.analysis.scan import scan_topk
from zfhelpers.data import fashion
from zfhelpers.models import trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--layer", default="relu5")
    parser.add_argument("--quick", action="store_true", help="500 images, one repeat")
    args = parser.parse_args()
    repeat = 1 if args.quick else 2
    if args.quick:
        args.images = 500
    torch.manual_seed(0)
    lm = trained.load_twin("zf")
    model = lm.model
    images, _ = fashion.load("test")
    images = images[: args.images]

    def plain():
        with torch.inference_mode():
            for i in range(0, len(images), args.batch_size):
                model(fashion.to_model_input(images[i : i + args.batch_size]))

    plain()  # warm-up
    t_plain, _ = timed(plain, repeat=repeat)
    t_scan, res = timed(lambda: scan_topk(lm, images, layer=args.layer, k=9, batch_size=args.batch_size,
                                          prepare=fashion.to_model_input, progress=False), repeat=repeat)  # fmt: skip
    layers = ["relu1", "relu2", "relu3", "relu4", "relu5"]
    t_all, _ = timed(lambda: scan_topk(lm, images, layer=layers, k=9, batch_size=args.batch_size,
                                       prepare=fashion.to_model_input, progress=False), repeat=repeat)  # fmt: skip
    assert res.values.shape[1] == 9
    print(f"# top-9 scan of {args.layer}, ZF twin, {args.images} Fashion-MNIST images at 112 px; {machine()}")
    ratio = t_plain / t_scan
    print(f"plain forward {t_plain:.2f} s ({args.images / t_plain:.0f} img/s)   scan {t_scan:.2f} s "
          f"({args.images / t_scan:.0f} img/s)   throughput ratio {ratio:.2f}x (goal >= 0.8x)")  # fmt: skip
    print(f"all five layers in one pass {t_all:.2f} s: ratio {t_plain / t_all:.2f}x")
    result("scan_throughput_vs_plain_forward", ratio, 0.8)


if __name__ == "__main__":
    main()
