"""A small synthetic ImageFolder for the paper dry run (``make paper-dry-run``).

The paper profile's scan sets (Imagenette, ImageNet) need a download; the dry run exercises the
same folder code path (:func:`zfhelpers.data.scansets.load_folder_set`) on JPEGs made here: one
class folder per sample photo, each image a seeded random crop of it, flipped, rescaled and
colour-jittered, written atomically. Natural-image crops rather than noise, so that a top-9 scan
or an occlusion map has structure to find even with random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from ..checks import InputError
from ..io import atomic_write
from ..paths import data_dir


def sample_photos() -> list[Path]:
    """The committed sample photos (``data/images/*.jpg``), sorted."""
    return sorted((data_dir() / "images").glob("*.jpg"))


def make_image_folder(root: str | Path, *, classes: int = 4, per_class: int = 8, size: int = 160,
                      seed: int = 0) -> list[Path]:  # fmt: skip
    """Write ``classes × per_class`` JPEGs under ``root/<photo>/NNN.jpg``; return their paths.

    Deterministic for a seed; existing files are rewritten identically, so a rerun is a no-op in
    content."""
    photos = sample_photos()
    if not 1 <= classes <= len(photos):
        raise InputError(f"classes must be in 1..{len(photos)} (one per sample photo), got {classes}")
    if per_class < 1 or size < 32:
        raise InputError(f"need per_class >= 1 and size >= 32, got per_class={per_class}, size={size}")
    rng = np.random.default_rng(seed)
    written = []
    for photo in photos[:classes]:
        img = Image.open(photo).convert("RGB")
        folder = Path(root) / photo.stem
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            out = _variant(img, rng, size)
            path = folder / f"{i:03d}.jpg"
            atomic_write(path, lambda tmp, out=out: out.save(tmp, format="JPEG", quality=90))
            written.append(path)
    return written


def _variant(img: Image.Image, rng: np.random.Generator, size: int) -> Image.Image:
    """A random crop of 50–100 % of the shorter side, maybe mirrored, resized to ``size`` and
    jittered in brightness and colour."""
    w, h = img.size
    side = int(min(w, h) * rng.uniform(0.5, 1.0))
    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    out = img.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC)
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))
    return ImageEnhance.Color(out).enhance(rng.uniform(0.6, 1.4))
