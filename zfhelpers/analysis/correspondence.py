"""Correspondence analysis (ZF §4.3, Table 1, Fig. 8).

Occlude the same part (an eye, the nose) in several images of one kind and compare the feature
changes ``ε_i = x_i − x̃_i``. If the network implicitly "knows" the part, the changes agree in sign
across images. ZF's measure, with the normalisation their reported magnitudes (~0.07–0.11) imply
(papers.md §1.4)::

    Δ_l = 1/(n(n−1)) Σ_{i≠j} (1/D) Σ_d 1[sign ε_{i,d} ≠ sign ε_{j,d}]

i.e. the mean over ordered pairs of the Hamming distance between sign vectors as a fraction of the
D dimensions (``sign(0) = 0``: two unchanged dimensions agree). Lower = more consistent. Parts are
reported as mean ± std over the pairs; random occlusions as mean ± std over independent draws."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..paths import data_dir


@dataclass
class FaceSet:
    images: torch.Tensor  # n×3×S×S in [0, 1] (grayscale replicated), upsampled
    parts: dict[str, tuple | list[tuple]]  # one box for all images, or one per image (resized pixels)
    random_region: tuple[int, int, int, int]
    box_size: tuple[int, int]
    source: str


def load_part_images(side: int = 224, annotations: Path | None = None) -> FaceSet:
    """Images with part boxes: by default the annotated LFW faces shipped with scikit-image,
    bilinearly upsampled to ``side``; or a user JSON with an ``images`` list
    (:func:`load_annotated_folder`)."""
    import torch.nn.functional as F
    from skimage import data

    meta = json.loads((annotations or data_dir() / "faces" / "lfw_subset_parts.json").read_text())
    if "images" in meta:
        return load_annotated_folder(Path(annotations), side)
    faces = torch.from_numpy(data.lfw_subset()[meta["faces"]]).float()[:, None]
    up = F.interpolate(faces, size=(side, side), mode="bilinear", align_corners=False).clamp(0, 1).repeat(1, 3, 1, 1)
    parts = {k: _scale_box(v, side / meta["size"]) for k, v in meta["parts"].items()}
    return FaceSet(up, parts, _scale_box(meta["random_region"], side / meta["size"]), _common_size(parts.values()),
                   f"skimage lfw_subset faces {meta['faces']}")  # fmt: skip


def _scale_box(b, scale: float) -> tuple[int, int, int, int]:
    """Scale the origin and keep every box the same size after rounding."""
    y0, x0 = round(b[0] * scale), round(b[2] * scale)
    return (y0, y0 + round((b[1] - b[0]) * scale), x0, x0 + round((b[3] - b[2]) * scale))


def _common_size(boxes) -> tuple[int, int]:
    sizes = {(b[1] - b[0], b[3] - b[2]) for b in boxes}
    if len(sizes) != 1:
        raise ValueError(f"part boxes must share one size (ZF occlude equal squares), got {sorted(sizes)}")
    return sizes.pop()


def load_annotated_folder(annotations: Path, side: int = 224) -> FaceSet:
    """Your own images (the paper profile's five frontal dogs, say): a JSON file such as::

        {"images": ["dog1.jpg", …],                      # paths relative to the JSON file
         "parts": {"right_eye": [[y0, y1, x0, x1], …],   # one box per image, in its own pixels
                   "left_eye": […], "nose": […]},
         "random_region": [[y0, y1, x0, x1], …]}          # optional, default: whole image

    Each image is resized (not cropped) to ``side``×``side`` and its boxes with it; after resizing
    all boxes must have one size, as ZF's occluders do."""
    from ..data.images import load_image

    meta = json.loads(annotations.read_text())
    paths = [annotations.parent / p for p in meta["images"]]
    images, scales = [], []
    for p in paths:
        img = load_image(p)
        scales.append((side / img.height, side / img.width))
        images.append(torch.from_numpy(np.asarray(img.resize((side, side)))).permute(2, 0, 1).float() / 255)

    def per_image(boxes):
        if len(boxes) != len(paths):
            raise ValueError(f"{len(boxes)} boxes for {len(paths)} images")
        out = []
        for (sy, sx), b in zip(scales, boxes):
            y0, x0 = round(b[0] * sy), round(b[2] * sx)
            out.append((y0, y0 + round((b[1] - b[0]) * sy), x0, x0 + round((b[3] - b[2]) * sx)))
        return out

    parts = {k: per_image(v) for k, v in meta["parts"].items()}
    size = _common_size([b for boxes in parts.values() for b in boxes])
    region = meta.get("random_region")
    region = per_image(region)[0] if region else (0, side, 0, side)
    return FaceSet(torch.stack(images), parts, region, size, f"{annotations.name}: {len(paths)} images")


def occlude(images: torch.Tensor, boxes, fill: torch.Tensor | float) -> torch.Tensor:
    """Copy of ``images`` with ``boxes[i]`` of image i set to ``fill`` (same box for all if one)."""
    out = images.clone()
    if isinstance(boxes, tuple):
        boxes = [boxes] * len(images)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        out[i, :, y0:y1, x0:x1] = fill
    return out


def random_boxes(n: int, size: tuple[int, int], region: tuple[int, int, int, int], rng: np.random.Generator):
    y0, y1, x0, x1 = region
    out = []
    for _ in range(n):
        y = int(rng.integers(y0, y1 - size[0] + 1))
        x = int(rng.integers(x0, x1 - size[1] + 1))
        out.append((y, y + size[0], x, x + size[1]))
    return out


def sign_disagreement(eps: torch.Tensor) -> torch.Tensor:
    """Normalised Hamming distances of sign(ε) for all ordered pairs i ≠ j of the n×D matrix."""
    s = torch.sign(eps)
    n = s.shape[0]
    return torch.stack([(s[i] != s[j]).float().mean() for i in range(n) for j in range(n) if i != j])


def consistency(eps: torch.Tensor) -> tuple[float, float]:
    """(Δ, std over pairs)."""
    d = sign_disagreement(eps)
    return float(d.mean()), float(d.std())
