"""Correspondence analysis (ZF §4.3, Table 1, Fig. 8).

Occlude the same part (an eye, the nose) in several images of one kind and compare the feature
changes ``ε_i = x_i − x̃_i``. If the network implicitly "knows" the part, the changes agree in sign
across images. ZF's measure, with the normalisation their reported magnitudes (~0.07–0.11) imply
(docs/papers.md §1.4)::

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
                   f"LFW faces {meta['faces']} of scikit-image data.lfw_subset()")  # fmt: skip


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
        images.append(torch.from_numpy(np.array(img.resize((side, side)))).permute(2, 0, 1).float() / 255)

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
    return FaceSet(torch.stack(images), parts, region, size, f"{len(paths)} images of {annotations}")


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


def pair_disagreement(eps: torch.Tensor) -> np.ndarray:
    """The n×n matrix of normalised Hamming distances between the sign vectors of ``eps`` (n×D);
    the diagonal is 0. Symmetric, so the n(n−1)/2 pairs i < j hold all the information."""
    s = torch.sign(eps)
    return torch.stack([(s[i] != s).float().mean(1) for i in range(s.shape[0])]).numpy()


def upper_pairs(matrix: np.ndarray) -> np.ndarray:
    """The values of pairs i < j (row-major), one per unordered image pair."""
    i, j = np.triu_indices(matrix.shape[0], k=1)
    return matrix[i, j]


def independent_chance(eps: torch.Tensor) -> float:
    """Δ expected if the two images of a pair changed sign independently, each with its own
    frequencies of −, 0 and +: mean over pairs of 1 − Σ_s p_i(s) p_j(s). It is 0.5 for fair ±1
    signs; unchanged dimensions (sign 0, common in rectified layers) move it."""
    s = torch.sign(eps)
    freq = torch.stack([(s == v).float().mean(1) for v in (-1.0, 0.0, 1.0)], 1).numpy()
    return float(upper_pairs(1 - freq @ freq.T).mean())


@dataclass
class Correspondence:
    """Δ of every unordered image pair, per occluded part and layer (ZF Table 1, with the pairs kept
    for the statistics)."""

    layers: dict[str, str]  # {"layer 5": model layer, "layer 7": model layer}
    parts: dict[str, dict[str, np.ndarray]]  # part → layer label → Δ per unordered pair
    random: dict[str, np.ndarray]  # layer label → draws × pairs
    chance: dict[str, float]  # layer label → independent-signs chance (random occlusions)
    examples: dict[str, torch.Tensor]  # occluded inputs per part and "random" (first draw)
    draws: int

    def table(self) -> dict[str, dict[str, np.ndarray]]:
        """part or "random" → layer → Δ per pair (random: averaged over the draws)."""
        return {**self.parts, "random": {k: v.mean(0) for k, v in self.random.items()}}


def correspondence(model, x: torch.Tensor, faces: FaceSet, *, fill: float = 0.0, draws: int = 5,
                   seed: int = 0) -> Correspondence:  # fmt: skip
    """Occlude each part and ``draws`` sets of random boxes in ``x`` (normalised ``faces.images``)
    and measure Δ per image pair at the model's ``layer5_vector`` and ``layer7`` (ZF §4.3)."""
    from .. import checks
    from ..models.capture import capture_detached
    from ..models.zoo import adapt

    lm = adapt(model)
    draws = checks.positive_int(draws, name="random_draws")
    layers = {"layer 5": lm.role("layer5_vector"), "layer 7": lm.role("layer7")}

    def features(batch):
        out = capture_detached(lm, batch, list(layers.values()))
        return {label: out[name].flatten(1) for label, name in layers.items()}

    base = features(x)
    parts, examples = {}, {}
    for part, box in faces.parts.items():
        examples[part] = occlude(x, box, fill)
        f = features(examples[part])
        parts[part] = {k: upper_pairs(pair_disagreement(base[k] - f[k])) for k in layers}
    rng = np.random.default_rng(seed)
    random = {k: [] for k in layers}
    chance = {k: [] for k in layers}
    for _ in range(draws):
        occ = occlude(x, random_boxes(len(x), faces.box_size, faces.random_region, rng), fill)
        examples.setdefault("random", occ)
        f = features(occ)
        for k in layers:
            random[k].append(upper_pairs(pair_disagreement(base[k] - f[k])))
            chance[k].append(independent_chance(base[k] - f[k]))
    return Correspondence(layers, parts, {k: np.stack(v) for k, v in random.items()},
                          {k: float(np.mean(v)) for k, v in chance.items()}, examples, draws)  # fmt: skip


TOLERANCE = 2e-3  # Δ is a fraction of thousands of signs; CPU rounding flips a handful at most


def table1_claims(result: Correspondence) -> list:
    # long: one claim per row of ZF Table 1, kept side by side
    """ZF Table 1 measured: per part and layer, Δ with a bootstrap CI over the image pairs and a
    paired permutation test against random occlusion of the same pairs (one-sided: part below
    random); then the two readings of the caption (parts below random at layer 5; parts and random
    closer at layer 7)."""
    from ..claims import Claim
    from .stats import bootstrap_ci, paired_permutation_test
    from .verdicts import sign_rule

    claims, significant, gaps = [], {}, {}
    rand = {k: v.mean(0) for k, v in result.random.items()}
    n = len(next(iter(rand.values())))
    for layer in result.layers:
        key = layer.replace(" ", "")
        for part, by_layer in result.parts.items():
            d = by_layer[layer]
            p = paired_permutation_test(d, rand[layer], alternative="less")
            diff = float((d - rand[layer]).mean())
            verdict, reason = sign_rule(diff, p_value=p, expected="negative", what=f"Δ({part}) − Δ(random)")
            significant.setdefault(layer, []).append(verdict == "reproduced")
            claims.append(Claim(f"08.delta.{part}.{key}", f"Δ with the {part.replace('_', ' ')} occluded, {layer}",
                                float(d.mean()), verdict, reason, ci=bootstrap_ci(d), p_value=p,
                                test="paired permutation test vs random occlusion over image pairs (one-sided)",
                                n=n, decimals=3, tolerance=TOLERANCE, chance=round(result.chance[layer], 3),
                                paper=f"zf2014.table1.{part}.{key}"))  # fmt: skip
        r = rand[layer]
        claims.append(Claim(f"08.delta.random.{key}", f"Δ with random regions occluded, {layer}", float(r.mean()),
                            "not comparable", f"the baseline; its magnitude depends on the network and on how many "
                            f"features stay unchanged (independent-signs chance here {result.chance[layer]:.2f})",
                            ci=bootstrap_ci(r), n=n, decimals=3, tolerance=TOLERANCE,
                            chance=round(result.chance[layer], 3), paper=f"zf2014.table1.random.{key}"))  # fmt: skip
        gaps[layer] = np.mean([rand[layer] - v[layer] for v in result.parts.values()], axis=0)
    if "layer 5" in significant:
        k, total = sum(significant["layer 5"]), len(significant["layer 5"])
        verdict = "reproduced" if k == total else "partly reproduced" if k else "not reproduced"
        claims.append(
            Claim(
                "08.parts_below_random.layer5",
                "parts significantly below random occlusion at layer 5",
                float(k),
                verdict,
                f"{k} of {total} parts below random at p < 0.05 (paired permutation)",
                n=total,
                decimals=0,
                tolerance=0.0,
                paper="zf2014.table1.parts_below_random.layer5",
            )
        )
    if {"layer 5", "layer 7"} <= set(gaps):
        d = gaps["layer 5"] - gaps["layer 7"]
        ci = bootstrap_ci(d)
        verdict, reason = sign_rule(float(d.mean()), ci=ci, what="(random − parts) gap at layer 5 minus at layer 7")
        claims.append(
            Claim(
                "08.scores_closer.layer7",
                "parts and random occlusion are closer at layer 7 than at layer 5",
                float(d.mean()),
                verdict,
                reason,
                ci=ci,
                n=n,
                decimals=3,
                tolerance=TOLERANCE,
                paper="zf2014.table1.scores_closer.layer7",
            )
        )
    return claims
