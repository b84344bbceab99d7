"""Image sets to scan (ZF Fig. 2 uses the ImageNet validation set, Fig. 4 the training set).

A :class:`ScanSet` keeps images compact (uint8) and maps a batch to model-ready tensors only when
needed, so a scan streams the set without holding it normalised in memory.

* ``fashion_test`` / ``fashion_train`` — Fashion-MNIST (offline, Debian), for the twins;
* ``imagenette_val`` — torchvision's Imagenette (10 ImageNet classes), downloaded on machines with
  internet (paper profile), resized and centre-cropped to the model's input once;
* any image folder (e.g. ImageNet val in class folders, ZF's own setting): :func:`load_folder_set`,
  or a folder path as ``name``. Its ``images`` are an :class:`zfhelpers.data.folders.ImageFiles`, decoded
  on demand, which ``scan_topk`` streams through DataLoader workers (docs/scanning.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..paths import cache_dir

NAMES = ("fashion_test", "fashion_train", "imagenette_val")


@dataclass
class ScanSet:
    name: str
    images: torch.Tensor  # N×… uint8, or an ImageFiles (folder sets) that decodes on demand
    labels: torch.Tensor
    prepare: Callable[[torch.Tensor], torch.Tensor]
    description: str

    def __len__(self) -> int:
        return len(self.images)


def load_scan_set(name: str, loaded, n: int | None = None, *, download: bool = False) -> ScanSet:
    """The first ``n`` images of set ``name``, prepared for ``loaded`` (a zoo or twin model)."""
    if name not in NAMES:
        if isinstance(name, str | Path) and Path(name).is_dir():
            return load_folder_set(name, loaded, n)
        raise ValueError(f"unknown scan set {name!r}; valid: {', '.join(NAMES)}, or the path of an image folder")
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


def load_folder_set(root: str | Path, loaded, n: int | None = None) -> ScanSet:
    """The images under folder ``root`` (class sub-folders or flat), ``n`` of them evenly spread
    over the sorted list, decoded at ``loaded``'s input size when a scan or projection needs them.
    Labels are the index of each image's top-level folder among the sorted folder names (−1 for
    images directly under ``root``), as torchvision's ``ImageFolder`` numbers classes."""
    from .folders import ImageFiles

    files = ImageFiles(root, loaded.preprocess)
    if n is not None:
        files = files.subset(n)
    tops = [p.split("/", 1)[0] if "/" in p else None for p in files.relpaths()]
    classes = {c: i for i, c in enumerate(sorted({t for t in tops if t is not None}))}
    labels = torch.tensor([classes[t] if t is not None else -1 for t in tops], dtype=torch.long)
    return ScanSet(f"folder_{files.root.name}", files, labels, files.to_model_input,
                   f"{files.root.name} ({files.root}), {len(files)} images, {len(classes)} class folders")  # fmt: skip
