"""A conv stack without classifier (the HED VGG16, the committed twins)."""

from __future__ import annotations

import torch
from torch import nn


class FeatureStack(nn.Module):
    """``features`` as in torchvision, so module paths, layer tables and receptive fields are shared."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
