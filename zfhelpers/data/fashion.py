"""Fashion-MNIST, offline: the Debian package ``dataset-fashion-mnist`` ships the full set
(60 000 + 10 000 images, MIT licence, Zalando) under /usr/share/datasets/fashion-mnist;
``make setup`` installs it where apt is available. Users elsewhere can pass ``download=True`` to use
torchvision's downloader instead."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MEAN, STD = 0.2860, 0.3530  # of the training images in [0, 1]


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(split: str = "train", root: Path | None = None, download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(images N×28×28 uint8, labels N int64) for ``split`` in {"train", "test"}."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root) if root else DEBIAN_ROOT
    prefix = "train" if split == "train" else "t10k"
    images, labels = root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"
    if images.is_file() and labels.is_file():
        return torch.from_numpy(_read_idx(images).copy()), torch.from_numpy(_read_idx(labels).astype(np.int64))
    if download:
        from torchvision.datasets import FashionMNIST

        from ..paths import cache_dir

        ds = FashionMNIST(cache_dir() / "fashion-mnist", train=split == "train", download=True)
        return ds.data.clone(), ds.targets.clone()
    raise FileNotFoundError(
        f"Fashion-MNIST not found in {root}. Install Debian's dataset-fashion-mnist "
        "(`make setup` does, as root), or pass download=True on a machine with internet."
    )


def to_model_input(images: torch.Tensor, size: int = 112) -> torch.Tensor:
    """uint8 N×28×28 → normalised N×3×size×size (bilinear upsampling, grey replicated to RGB)."""
    import torch.nn.functional as F

    x = images.float().div(255).unsqueeze(1)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return ((x - MEAN) / STD).expand(-1, 3, -1, -1).contiguous()
