"""Scaled-down twins of the two networks ZF compare (§3, Fig. 3; §4.1, Fig. 6), trainable on a CPU.

Both keep the papers' layer pattern — five conv layers, two fully-connected ones, overlapping 3×3/2
max-pools (with switches), local contrast normalisation after the first two pools — and differ,
as in ZF §4.1, only in the first layer: **ZF-style** 7×7 stride 2, **AlexNet-style** 11×11 stride 4.

What is scaled, and why: the input is 112×112 (half of 224, Fashion-MNIST upsampled from 28×28 and
replicated to 3 channels so that filters and projections are shown as on ImageNet), widths are a
quarter of ZF's (24/64/96/96/64 instead of 96/256/384/384/256, fc 512 instead of 4096), so an epoch
over Fashion-MNIST takes about a minute on two cores. With 112×112 input the ZF twin's maps are
54 → 27 → 12 → 6 → 6 → 3, half of ZF's 110 → 55 → 26 → 13 → 13 → 6.

ZF's filter renormalisation (§3): after each update, every convolutional filter whose RMS exceeds
a radius (0.1) is scaled back to that radius (:func:`renormalize_filters`)."""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIZE = 112
WIDTHS = (24, 64, 96, 96, 64)
FC_WIDTH = 512
ARCHITECTURES = ("zf", "alexnet", "parts_vgg")


def make_parts_net(num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    """A small VGG-style net for the explanatory graph (Zhang et al. use VGG16 conv4_2 … conv5_3):
    four blocks of two 3×3 convs (8/16/32/64 wide, max-pools between), so that on a 112 px input
    the graph layers conv3_1, conv3_2 (28×28, stride 4) and conv4_1, conv4_2 (14×14, stride 8) have
    the paper's 28/28/14/14 layout; global average pooling and one linear layer on top."""
    widths, layers, c = (8, 16, 32, 64), [], in_channels
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(w, w, 3, padding=1),
                   nn.ReLU(inplace=True)]  # fmt: skip
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
        c = w
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(*layers))
    model.add_module("classifier", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)))
    return model


def make_twin(arch: str = "zf", num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """``features`` (conv stack, plain ``nn.Sequential`` so switches and receptive fields are
    explicit) + ``classifier`` (fc6, fc7, fc8 with dropout 0.5 as in ZF)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    if arch == "parts_vgg":
        return make_parts_net(in_channels=in_channels)
    k1, s1, p1 = (7, 2, 1) if arch == "zf" else (11, 4, 2)
    w1, w2, w3, w4, w5 = WIDTHS
    features = nn.Sequential(
        nn.Conv2d(in_channels, w1, k1, s1, p1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
        nn.Conv2d(w1, w2, 5, 2 if arch == "zf" else 1, 0 if arch == "zf" else 2), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
        nn.Conv2d(w2, w3, 3, 1, 1), nn.ReLU(inplace=True),
        nn.Conv2d(w3, w4, 3, 1, 1), nn.ReLU(inplace=True),
        nn.Conv2d(w4, w5, 3, 1, 1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
    )  # fmt: skip
    with torch.no_grad():
        n = features(torch.zeros(1, in_channels, INPUT_SIZE, INPUT_SIZE)).numel()
    classifier = nn.Sequential(
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(n, FC_WIDTH), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(FC_WIDTH, FC_WIDTH), nn.ReLU(inplace=True), nn.Linear(FC_WIDTH, num_classes),
    )  # fmt: skip
    model = nn.Sequential()
    model.add_module("features", features)
    model.add_module("classifier", classifier)
    return model


@torch.no_grad()
def renormalize_filters(model: nn.Module, radius: float = 0.1) -> int:
    """ZF §3: rescale every conv filter whose RMS exceeds ``radius`` back to ``radius``.
    Returns how many filters were rescaled."""
    count = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight
            rms = w.pow(2).flatten(1).mean(1).sqrt()
            over = rms > radius * (1 + 1e-6)  # float rounding must not re-trigger it
            if over.any():
                w[over] *= (radius / rms[over]).view(-1, 1, 1, 1)
                count += int(over.sum())
    return count
