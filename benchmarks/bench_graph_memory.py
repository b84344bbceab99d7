"""Peak memory of explanatory-graph parent selection at VGG16 scale (issue #18): flat in the number
of images.

Synthetic positions and scores with the shapes of VGG16's relu4_2 … relu5_3 graph layers (512
filters; 40 nodes per filter on 28×28 maps, 20 on 14×14: 61 440 nodes), for each parent → child
transition, 600 candidates, 15 parents. Each image count runs in its own subprocess so that its
resident memory is clean; the peak (VmHWM, reset just before the call) minus the resident memory
before it is what parent selection itself needed. The "limit" column is the images × nodes ×
candidates float32 tensor that selecting parents in one piece (the earlier implementation) holds.

    python benchmarks/bench_graph_memory.py [--quick] [--images 50 100 200] [--chunk-mb 32]

``--quick``: 10 and 40 images. The RESULT line is the largest extra peak at the fewest images over
that at the most (1 = flat in the number of images; goal 0.8).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import result

# (child, parent): (filters, map side, nodes per filter, stride)
LAYERS = {"relu4_2": (512, 28, 40, 8.0), "relu4_3": (512, 28, 40, 8.0), "relu5_2": (512, 14, 20, 16.0),
          "relu5_3": (512, 14, 20, 16.0)}  # fmt: skip
TRANSITIONS = (("relu5_2", "relu5_3"), ("relu4_3", "relu5_2"), ("relu4_2", "relu4_3"))


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _layer(eg, name: str, n_img: int, gen):
    import torch

    c, side, n, stride = LAYERS[name]
    layer = eg.GraphLayer(name, (side, side), stride, torch.rand(c, n, 2, generator=gen) * (side - 1),
                          torch.full((c, n), 0.15 * side))  # fmt: skip
    layer.frame_positions = torch.rand(n_img, c, n, 2, generator=gen) * (side - 1)
    layer.scores = torch.rand(n_img, c, n, generator=gen)
    layer.ranking = torch.rand(n_img, c, n, generator=gen)
    return layer


def child(n_img: int, chunk_mb: float) -> None:
    """One image count: print a JSON line per transition."""
    import torch

    from zfhelpers.graph import model as eg

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    params = eg.GraphParams(density=0.05, chunk_mb=chunk_mb)
    for lower, upper in TRANSITIONS:
        a, b = _layer(eg, lower, n_img, gen), _layer(eg, upper, n_img, gen)
        before = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
        start = time.perf_counter()
        parents = eg.select_parents(a, b, params)
        seconds = time.perf_counter() - start
        peak = _status("VmHWM")
        nodes = a.frame_positions.shape[1] * a.frame_positions.shape[2]
        print(json.dumps({"transition": f"{upper}→{lower}", "images": n_img, "nodes": nodes,
                          "parents": list(parents.shape), "inputs_mb": before / 2**20,
                          "extra_mb": (peak - before) / 2**20, "seconds": seconds,
                          "one_piece_mb": 4 * n_img * nodes * params.candidates / 2**20}), flush=True)  # fmt: skip
        del a, b, parents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--chunk-mb", type=float, default=32)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="10 and 40 images")
    args = parser.parse_args()
    if args.quick:
        args.images = [10, 40]
    if args.child is not None:
        child(args.child, args.chunk_mb)
        return
    print(f"# parent selection at VGG16 scale (61 440 nodes), chunk_mb={args.chunk_mb:g}, one thread; "
          "extra = peak RSS during select_parents − RSS before it")  # fmt: skip
    print(f"{'transition':18}{'images':>7}{'RSS before':>12}{'extra peak':>12}{'limit':>12}{'time':>9}")
    rows = []
    for n in args.images:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--chunk-mb", str(args.chunk_mb)],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
        for line in out.splitlines():
            r = json.loads(line)
            rows.append(r)
            print(f"{r['transition']:18}{n:>7}{r['inputs_mb']:>10.0f}MB{r['extra_mb']:>10.0f}MB"
                  f"{r['one_piece_mb']:>10.0f}MB{r['seconds']:>8.1f}s")  # fmt: skip
    for t in dict.fromkeys(r["transition"] for r in rows):
        extra = [r["extra_mb"] for r in rows if r["transition"] == t]
        limit = [r["one_piece_mb"] for r in rows if r["transition"] == t]
        print(f"# {t}: extra peak {min(extra):.0f}–{max(extra):.0f} MB over {args.images} images, against "
              f"{min(limit):.0f}–{max(limit):.0f} MB in one piece")  # fmt: skip
    lo, hi = min(args.images), max(args.images)
    peak = {n: max(r["extra_mb"] for r in rows if r["images"] == n) for n in (lo, hi)}
    result("graph_parent_memory_flat", peak[lo] / max(peak[hi], 1e-9), 0.8)


if __name__ == "__main__":
    main()
