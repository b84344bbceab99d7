"""A procedural object category with exact part landmarks — the offline stand-in for the annotated
animal and bird crops of the explanatory-graph paper (CUB-200, Pascal VOC Part, ILSVRC parts),
none of which can be had offline.

A *critter* is a body (ellipse) with a head (disc with an eye), a tail and two legs, drawn at a
random position, scale (0.8–1.2), facing (left/right, or all one way with ``facing``) and small
rotation (±15°) on a cluttered background; the landmarks **head**, **tail** (tip) and **front
foot** are known exactly. Negatives are the same backgrounds without a critter, or with its parts
scattered (so that a classifier must learn the parts *and* their arrangement). Everything is
seeded."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

LANDMARKS = ("head", "tail", "front_foot")
SIZE = 112
FACINGS = ("random", "left", "right")


def _rot(v, angle, flip):
    x, y = v
    x = -x if flip else x
    c, s = math.cos(angle), math.sin(angle)
    return (c * x - s * y, s * x + c * y)


def _clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, scale: int) -> None:
    for _ in range(rng.integers(2, 5)):
        x0, y0 = rng.uniform(0, size, 2) * scale
        w, h = rng.uniform(6, 30, 2) * scale
        shade = tuple(int(v) for v in rng.integers(40, 215, 3))
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape([x0, y0, x0 + w, y0 + h], fill=shade)


def _critter(draw, rng, size: int, scale: int, scatter: bool = False,
             facing: str = "random") -> dict[str, tuple[float, float]]:  # fmt: skip
    s = rng.uniform(0.8, 1.2)
    flip = bool(rng.random() < 0.5)  # drawn in every case, so that ``facing`` leaves the rest of the stream alone
    flip = flip if facing == "random" else facing == "left"
    angle = math.radians(rng.uniform(-15, 15))
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    body_col = tuple(int(v) for v in rng.integers(120, 255, 3))
    dark = tuple(int(v * 0.35) for v in body_col)

    # scattered negatives: each part (legs, tail, head) moved by its own random offset
    moves = {p: (rng.uniform(-30, 30, 2) if scatter else np.zeros(2)) for p in ("legs", "tail", "head", "body")}

    def at(dx, dy, part="body"):
        rx, ry = _rot((dx * s, dy * s), angle, flip)
        return (cx + rx + moves[part][0], cy + ry + moves[part][1])

    def disc(p, r, fill):
        x, y = p
        draw.ellipse([(x - r) * scale, (y - r) * scale, (x + r) * scale, (y + r) * scale], fill=fill)

    def line(p, q, width, fill):
        draw.line([p[0] * scale, p[1] * scale, q[0] * scale, q[1] * scale], fill=fill, width=int(width * scale))

    hip, shoulder = at(-12, 6, "legs"), at(12, 6, "legs")
    foot_b, foot_f = at(-12, 24, "legs"), at(12, 24, "legs")
    line(hip, foot_b, 3.5 * s, dark)
    line(shoulder, foot_f, 3.5 * s, dark)
    tail_root, tail_tip = at(-20, -2, "tail"), at(-36, -14, "tail")
    line(tail_root, tail_tip, 3 * s, dark)
    body = [at(22 * math.cos(t), 12 * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 40)]
    draw.polygon([(x * scale, y * scale) for x, y in body], fill=body_col)
    head = at(26, -10, "head")
    disc(head, 9 * s, body_col)
    disc(at(29, -12, "head"), 2.5 * s, (20, 20, 20))
    return {"head": head, "tail": tail_tip, "front_foot": foot_f}


def make(n: int, *, positive_rate: float = 0.5, seed: int = 0, size: int = SIZE, facing: str = "random"):
    """``n`` images: uint8 N×3×size×size, labels (1 = critter, 0 = background or scattered parts),
    landmarks N×3×2 (x, y) in pixels (NaN for negatives). ``facing``: "random" (either way, as
    the parts net was trained), or every critter facing "left" or "right"."""
    if facing not in FACINGS:
        raise ValueError(f"facing={facing!r}; valid: {', '.join(FACINGS)}")
    rng = np.random.default_rng(seed)
    scale = 2  # draw at 2× and downsample: anti-aliased edges
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.zeros(n, dtype=np.int64)
    marks = np.full((n, len(LANDMARKS), 2), np.nan, dtype=np.float32)
    for i in range(n):
        bg = tuple(int(v) for v in rng.integers(30, 200, 3))
        im = Image.new("RGB", (size * scale, size * scale), bg)
        draw = ImageDraw.Draw(im)
        _clutter(draw, rng, size, scale)
        if rng.random() < positive_rate:
            pts = _critter(draw, rng, size, scale, facing=facing)
            labels[i] = 1
            marks[i] = [pts[k] for k in LANDMARKS]
        elif rng.random() < 0.5:
            _critter(draw, rng, size, scale, scatter=True)
        images[i] = np.asarray(im.resize((size, size), Image.LANCZOS))
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels), torch.from_numpy(marks)
