"""One pass of the GPU paths on CUDA, with throughput and agreement with the CPU (issue #15 item 4).

Never needed: run it when a GPU is at hand (``benchmarks/gpu_check.sh``). For each of the folder
scan (fp32; channels_last; bf16 autocast), unit projections, occlusion and Grad-CAM it prints the
device's throughput and how far the result is from the same computation on the CPU, so the report
says both how fast and how exact. ``--device cpu --quick`` dry-runs the script anywhere.

    python benchmarks/gpu_check.py [--device cuda] [--images 2048] [--model mobilenet_v2] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bench_folder_scan import load, write_images

from zfhelpers.analysis.scan import scan_topk
from zfhelpers.data.folders import ImageFiles
from zfhelpers.distributed import Rank, default_workers
from zfhelpers.methods import cam
from zfhelpers.methods.occlusion import occlusion
from zfhelpers.methods.projection import unit_projection


def timed(fn, device: torch.device):
    """(seconds, result) of one call, synchronising the device before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


def agreement(a, b) -> str:
    """Share of (channel, rank) entries naming the same image, and the largest value difference."""
    same = (a.images == b.images).float().mean().item()
    diff = (a.values - b.values).abs().max().item()
    return f"{same:.1%} of entries identical to the CPU's, max |Δvalue| {diff:.2e}"


def check_scan(lm, files, layer, device, batch_size, cpu_ref) -> None:
    workers = default_workers(Rank(), device)
    for label, kwargs in (("fp32", {}), ("channels_last", {"channels_last": True}),
                          ("bf16 autocast", {"autocast": "bf16"})):  # fmt: skip
        seconds, top = timed(lambda kw=kwargs: scan_topk(lm, files, layer=layer, k=9, batch_size=batch_size,
                                                         workers=workers, progress=False, **kw), device)  # fmt: skip
        print(f"scan {label:14} {len(files) / seconds:8.1f} img/s ({workers} workers); {agreement(top, cpu_ref)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--layer", default=None, help="default: the model's layer5 role (top conv layer)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a dry run of the script)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA GPU here (this check is only for machines with one)")
    n = 16 if args.quick else args.images
    lm = load(args.model)
    layer = args.layer or lm.role("layer5")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# {name}; torch {torch.__version__}; {args.model} {layer}; {n} images")
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        files = ImageFiles(write_images(Path(tmp), n, (500, 375)), lm.preprocess)
        cpu_ref = scan_topk(lm, files, layer=layer, k=9, batch_size=args.batch_size, workers=2, progress=False)
        x_cpu = files.to_model_input(files[range(min(n, 4 if args.quick else 64))])
        ref_cam = cam.gradcam(lm, x_cpu).maps
        lm.model.to(device)
        try:
            scan_topk(lm, files[range(8)], layer=layer, k=1, prepare=files.to_model_input, progress=False)  # warm-up
            check_scan(lm, files, layer, device, args.batch_size, cpu_ref)
            x = x_cpu.to(device)
            rule = lm.spec.projection_rule
            seconds, proj = timed(lambda: unit_projection(lm, x, layer=layer, channels="top4", rule=rule), device)
            print(f"unit projections ({rule}) {proj.maps.shape[0] * proj.maps.shape[1] / seconds:8.1f} units/s "
                  f"({x.shape[0]} images × top-4 channels)")  # fmt: skip
            seconds, occ = timed(lambda: occlusion(lm, x[:1], size=32, stride=8 if not args.quick else 32,
                                                   batch_size=64), device)  # fmt: skip
            print(f"occlusion {occ.prob.numel() / seconds:8.1f} windows/s ({tuple(occ.prob.shape)} grid)")
            seconds, res = timed(lambda: cam.gradcam(lm, x), device)
            diff = (res.maps.cpu() - ref_cam).abs().max().item() / max(ref_cam.abs().max().item(), 1e-12)
            print(f"Grad-CAM {x.shape[0] / seconds:8.1f} img/s; max relative |Δ| vs CPU {diff:.1e}")
        finally:
            lm.model.to("cpu")


if __name__ == "__main__":
    main()
