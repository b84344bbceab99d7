"""Image sets to scan (ZF Fig. 2 uses the ImageNet validation set, Fig. 4 the training set).

A :class:`ScanSet` keeps images compact (uint8) and maps a batch to model-ready tensors only when
needed, so a scan streams the set without holding it normalised in memory.

* ``fashion_test`` / ``fashion_train`` — Fashion-MNIST (offline, Debian), for the twins;
* ``imagenette_val`` — torchvision's Imagenette (10 ImageNet classes), downloaded on machines with
  internet (paper profile), resized and centre-cropped to the model's input once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..paths import cache_dir

NAMES = ("fashion_test", "fashion_train", "imagenette_val")


@dataclass
class ScanSet:
    name: str
    images: torch.Tensor  # N×… uint8
    labels: torch.Tensor
    prepare: Callable[[torch.Tensor], torch.Tensor]
    description: str

    def __len__(self) -> int:
        return len(self.images)


def load_scan_set(name: str, loaded, n: int | None = None, *, download: bool = False) -> ScanSet:
    """The first ``n`` images of set ``name``, prepared for ``loaded`` (a zoo or twin model)."""
    if name not in NAMES:
        raise ValueError(f"unknown scan set {name!r}; valid: {', '.join(NAMES)}")
    if name.startswith("fashion"):
        from . import fashion

        split = name.split("_")[1]
        x, y = fashion.load(split, download=download)
        size = loaded.preprocess.crop
        return ScanSet(name, x[:n], y[:n], lambda b: fashion.to_model_input(b, size),
                       f"Fashion-MNIST {split}, {len(x[:n])} images (Zalando, MIT)")  # fmt: skip
    from torchvision.datasets import Imagenette
    from torchvision.transforms.v2 import functional as TF

    ds = Imagenette(cache_dir() / "imagenette", split="val", size="320px", download=download)
    pre = loaded.preprocess
    count = len(ds) if n is None else min(n, len(ds))
    images, labels = [], []
    for i in range(count):
        img, label = ds[i]
        t = TF.center_crop(TF.resize(TF.pil_to_tensor(img.convert("RGB")), [pre.resize], antialias=True), [pre.crop])
        images.append(t)
        labels.append(label)
    return ScanSet(name, torch.stack(images), torch.tensor(labels),
                   lambda b: pre.normalize(b.float() / 255), f"Imagenette val, {count} images")  # fmt: skip
