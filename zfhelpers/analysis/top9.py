"""ZF Fig. 2 (§4): for a feature map, its top-9 activations over a dataset, each projected to pixel
space *separately* with the deconvnet, beside the image patch of the unit's receptive field.

Two stages (anchors_libraries.md §4 idea 2): :func:`zfhelpers.analysis.scan.scan_topk` streams the data
once and keeps (value, image, position) per channel; :func:`project_topk` then re-runs only the
winning images and projects each winner through :func:`zfhelpers.methods.projection.unit_projection`, which seeds
exactly that unit with its value (ZF §2.1). Crops use the nominal receptive field computed from the
layer geometry (:mod:`zfhelpers.methods.receptive`); where it extends past the image the canvas is grey."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import checks
from ..data.display import crop, projection_rgb
from ..methods.projection import unit_projection
from ..methods.receptive import for_layer
from .scan import TopK
from .scan_result import load_scan_result  # noqa: F401  (folder scans: top-k + image paths)


@dataclass
class TopProjections:
    """Per channel ``k`` crops of equal size (the nominal receptive field), H×W×3 in [0, 1]."""

    layer: str
    channels: list[int]
    values: torch.Tensor  # C×k activations (from the scan)
    images: torch.Tensor  # C×k dataset indices
    boxes: torch.Tensor  # C×k×4 nominal (y0, y1, x0, x1), may extend past the image
    projections: np.ndarray  # C×k×h×w×3
    patches: np.ndarray  # C×k×h×w×3
    reprojected: torch.Tensor  # C×k activation values found again when projecting (== values)


def project_topk(loaded, top: TopK, channels: Sequence[int], inputs: torch.Tensor, *,
                 prepare: Callable[[torch.Tensor], torch.Tensor] | None = None, rule: str = "deconvnet",
                 grey: bool = False) -> TopProjections:  # fmt: skip
    """Project the scan's winners of ``channels`` (``inputs`` is the scanned dataset: a tensor, or
    the :class:`zfhelpers.data.folders.ImageFiles` of a folder scan, e.g. ``load_scan_result(path).images``,
    whose own normalisation is the default ``prepare``).

    ``grey=True`` shows the channel sum of each projection (for grey images replicated to RGB,
    only that sum acts on the data)."""
    if prepare is None and hasattr(inputs, "to_model_input"):
        prepare = inputs.to_model_input
    rf = for_layer(loaded, top.layer)
    if rf is None:
        raise ValueError(f"{loaded.name}:{top.layer} is not in a plain conv stack; receptive fields unknown")
    channels = checks.indices(channels, top.values.shape[0], name="channels")
    k = top.values.shape[1]
    boxes = torch.zeros(len(channels), k, 4, dtype=torch.long)
    projs, patches, again = [], [], torch.zeros(len(channels), k)
    for i, c in enumerate(channels):
        ids = top.images[c]
        if (ids < 0).any():
            raise ValueError(f"channel {c} has fewer than {k} scanned images")
        x = inputs[ids] if prepare is None else prepare(inputs[ids])
        p = unit_projection(loaded, x, layer=top.layer, channels=[c], position=top.positions[c][None], rule=rule)
        again[i] = p.values[0].cpu()
        row_p, row_i = [], []
        for j in range(k):
            box = rf.box(*top.positions[c, j].tolist())
            boxes[i, j] = torch.tensor(box)
            m = p.maps[0, j]
            if grey:
                m = m.sum(0, keepdim=True).expand(3, -1, -1)
            row_p.append(crop(projection_rgb(m), box))
            img = loaded.preprocess.denormalize(x[j]).permute(1, 2, 0).cpu().numpy()
            row_i.append(crop(img, box))
        projs.append(row_p)
        patches.append(row_i)
    return TopProjections(top.layer, channels, top.values[channels], top.images[channels], boxes,
                          np.asarray(projs), np.asarray(patches), again)  # fmt: skip
