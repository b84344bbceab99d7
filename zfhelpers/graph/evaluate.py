"""Inputs and evaluation for the explanatory graph (Zhang et al. 2018, papers.md §4.1, §4.3):
normalised feature maps, the raw-filter baseline, location instability of nodes vs filters, and
few-shot part localisation."""

from __future__ import annotations

import torch

from ..models.capture import capture_detached
from .model import location_instability, unit_to_pixel


def normalised_maps(model, layers: list[str], images: torch.Tensor, negatives: torch.Tensor, prepare,
                    batch_size: int = 100) -> dict[str, torch.Tensor]:  # fmt: skip
    """F = max(f, 0) / std_unit per layer (§4.1): the std of every unit (c, y, x) over the
    ``negatives`` (images without the object; the paper uses 1000 ImageNet images)."""

    def run(x):
        outs = {name: [] for name in layers}
        for i in range(0, len(x), batch_size):
            f = capture_detached(model, prepare(x[i : i + batch_size]), layers)
            for name in layers:
                outs[name].append(f[name].clamp_min(0))
        return {name: torch.cat(v) for name, v in outs.items()}

    neg, pos = run(negatives), run(images)
    return {name: pos[name] / neg[name].std(0).clamp_min(1e-3 * neg[name].std().item() + 1e-12) for name in layers}


def raw_filter_positions(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline's "node" per filter: the argmax unit (I×C×2, map units) and its value (I×C)."""
    w = maps.shape[-1]
    best = maps.flatten(2).max(2)
    pos = torch.stack([best.indices // w, best.indices % w], -1).float()
    return pos, best.values


def instability_table(positions: torch.Tensor, scores: torch.Tensor, stride: float, landmarks: torch.Tensor,
                      diagonal: float, top_images: int = 20, top_units: int | None = None) -> torch.Tensor:  # fmt: skip
    """Location instability of each unit (node or filter): ``positions`` I×U×2 (map units, y x),
    ``scores`` I×U ranking the images per unit; ``landmarks`` I×K×2 (x, y pixels, NaN if absent).
    Units are ranked by the mean of their top-``top_images`` scores; the best ``top_units`` are
    evaluated (papers.md §4.3). Returns one value per evaluated unit."""
    n_img, n_units = scores.shape
    k = min(top_images, n_img)
    top = scores.topk(k, dim=0)  # k×U
    order = top.values.mean(0).argsort(descending=True)
    if top_units is not None:
        order = order[:top_units]
    pix = unit_to_pixel(positions, stride).flip(-1)  # (x, y) pixels like the landmarks
    values = []
    for u in order.tolist():
        idx = top.indices[:, u]
        values.append(location_instability(pix[idx, u], landmarks[idx], diagonal))
    return torch.tensor(values)


def few_shot_localisation(train_pos: torch.Tensor, train_marks: torch.Tensor, test_pos: torch.Tensor,
                          test_scores: torch.Tensor, stride: float, shots: int = 3,
                          use: int = 5) -> torch.Tensor:  # fmt: skip
    """Multi-shot part localisation (§4.3): from ``shots`` annotated images, pick the ``use`` units
    whose inferred positions plus their mean offset to the landmark predict it best on those shots;
    on test images, predict the landmark as the score-weighted mean of their predictions.
    ``*_pos`` I×U×2 map units; ``train_marks`` I×K×2 (x, y). Returns the predicted landmarks of the
    test images (I×K×2, x y pixels); see :func:`localisation_error`."""
    tp = unit_to_pixel(train_pos[:shots], stride).flip(-1)  # shots×U×2 (x, y)
    marks = train_marks[:shots]  # shots×K×2
    test_px = unit_to_pixel(test_pos, stride).flip(-1)
    guesses = []
    for k in range(marks.shape[1]):
        offset = (marks[:, k, None] - tp).mean(0)  # U×2: each unit's mean offset to the landmark
        residual = (tp + offset[None] - marks[:, k, None]).norm(dim=-1).mean(0)  # U
        chosen = residual.argsort()[:use]
        pred = test_px[:, chosen] + offset[chosen][None]  # I×use×2
        w = test_scores[:, chosen].clamp_min(1e-12)
        guesses.append((pred * w[..., None]).sum(1) / w.sum(1, keepdim=True))
    return torch.stack(guesses, 1)


def localisation_error(guess: torch.Tensor, marks: torch.Tensor, diagonal: float) -> torch.Tensor:
    """‖guess − landmark‖ / diagonal per image and landmark (NaN where the landmark is absent)."""
    return (guess - marks).norm(dim=-1) / diagonal


def load_landmark_folder(annotations, side: int = 224) -> dict:
    """Your own object images with landmarks (the paper's setting: one category, objects cropped to
    their boxes), described by a JSON file::

        {"images": ["bird1.jpg", …],                  # paths relative to the JSON file
         "landmarks": {"head": [[x, y], null, …],     # one per image, in its own pixels; null = absent
                       "tail": […]},
         "negatives": ["bg1.jpg", …]}                 # optional: images without the object

    Images are resized (not cropped) to ``side``×``side`` and landmarks with them. Returns uint8
    ``images`` N×3×side×side, ``landmarks`` N×K×2 (x, y; NaN where absent), ``names`` (landmark
    names) and ``negatives`` (uint8 or None)."""
    import json
    from pathlib import Path

    import numpy as np

    from ..data.images import load_image

    annotations = Path(annotations)
    meta = json.loads(annotations.read_text())
    names = list(meta["landmarks"])

    def load(paths):
        out, scales = [], []
        for p in paths:
            img = load_image(annotations.parent / p)
            scales.append((side / img.width, side / img.height))
            out.append(torch.from_numpy(np.array(img.resize((side, side)))).permute(2, 0, 1).contiguous())
        return torch.stack(out), scales

    images, scales = load(meta["images"])
    marks = torch.full((len(images), len(names), 2), float("nan"))
    for k, name in enumerate(names):
        points = meta["landmarks"][name]
        if len(points) != len(images):
            raise ValueError(f"landmark {name!r}: {len(points)} entries for {len(images)} images")
        for i, (pt, (sx, sy)) in enumerate(zip(points, scales)):
            if pt is not None:
                marks[i, k] = torch.tensor([pt[0] * sx, pt[1] * sy])
    negatives = load(meta["negatives"])[0] if meta.get("negatives") else None
    return {"images": images, "landmarks": marks, "names": names, "negatives": negatives}
