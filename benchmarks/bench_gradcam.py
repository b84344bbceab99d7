"""Batched Grad-CAM throughput vs pytorch-grad-cam on the same model, batch and targets.

Both run one forward and one backward over the whole batch; the ratio measures the overheads
around them (pytorch-grad-cam moves maps to NumPy and resizes them with OpenCV one by one).
Maps are compared (after pytorch-grad-cam's normalisation) before the times are printed.

    python benchmarks/bench_gradcam.py [--quick] [--images 32] [--repeat 3]

``--quick``: 8 images, one repeat. No goal is stated for this comparison; the RESULT line uses 1
(at least as fast as the peer).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch
from common import machine, result, sample_batch, timed
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import zfhelpers
from zfhelpers.methods import cam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="8 images, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.images, args.repeat = 8, 1
    torch.manual_seed(0)
    lm = zfhelpers.load_model("mobilenet_v2")
    x = sample_batch(lm.preprocess, args.images, 224)

    cam.gradcam(lm, x[:2])  # warm-up
    t_ours, ours = timed(lambda: cam.gradcam(lm, x), repeat=args.repeat)
    targets = [ClassifierOutputTarget(int(t)) for t in ours.targets]
    with GradCAM(model=lm.model, target_layers=[lm.module("head")]) as peer:
        peer(input_tensor=x[:2].clone().requires_grad_(True), targets=targets[:2])  # warm-up
        t_peer, theirs = timed(lambda: peer(input_tensor=x.clone().requires_grad_(True), targets=targets),
                               repeat=args.repeat)  # fmt: skip
    low = cam.normalize(ours.maps).numpy()
    mine = cam.normalize(torch.from_numpy(np.stack([cv2.resize(m, (224, 224)) for m in low]))).numpy()
    err = float(np.abs(mine - theirs).max())
    assert err < 1e-5, err
    print(f"# Grad-CAM, mobilenet_v2 head, {args.images} images 224px, best of {args.repeat}; {machine()}")
    print(f"zfhelpers {t_ours:.3f} s ({args.images / t_ours:.1f} img/s)   pytorch-grad-cam {t_peer:.3f} s "
          f"({args.images / t_peer:.1f} img/s)   ratio {t_peer / t_ours:.2f}x   max diff {err:.1e}")  # fmt: skip
    result("gradcam_vs_pytorch_grad_cam", t_peer / t_ours, 1)


if __name__ == "__main__":
    main()
