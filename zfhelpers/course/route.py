"""The 90-minute course route through the notebooks (``notebooks/index.ipynb``, ``docs/teaching.md``).

One stop per block of the session: which notebooks, how many minutes of class time, and what the
students should be able to say afterwards. ``make course`` runs exactly these notebooks with the
``course`` preset (each ≤ 60 s of compute on a 2-core laptop)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stop:
    notebooks: tuple[str, ...]
    minutes: int
    topic: str
    objective: str


ROUTE: tuple[Stop, ...] = (
    Stop(
        ("00", "01"),
        10,
        "What a convnet computes",
        "read feature maps and first-layer filters, and say why raw filters above layer 1 are unreadable",
    ),
    Stop(
        ("02",),
        15,
        "The deconvnet (ZF §2.1)",
        "project one unit back to pixels through unpooling switches, rectification and transposed filters",
    ),
    Stop(
        ("09",),
        15,
        "Backward rules compared (Springenberg et al. 2015; Adebayo et al. 2018)",
        "tell deconvnet, gradient and guided backprop apart by their ReLU rule and pass a sanity check",
    ),
    Stop(
        ("07",),
        10,
        "Occlusion (ZF §4.2, Fig. 7)",
        "slide a grey square, read the probability map and find a label switch",
    ),
    Stop(
        ("10",),
        15,
        "Class activation maps (CAM, Grad-CAM, Grad-CAM++)",
        "derive CAM from the classifier weights and know when Grad-CAM equals it",
    ),
    Stop(
        ("05", "08"),
        10,
        "Invariance and correspondence (ZF §4, Fig. 5; §4.3) — pick one",
        "measure a claim with a confidence interval and a chance line before believing it",
    ),
    Stop(
        ("11",),
        10,
        "Feature Map Inversion (Xia et al. 2016)",
        "invert one filter's feature map and explain why it shows a texture, not an object",
    ),
)
ROUTE_MINUTES = sum(s.minutes for s in ROUTE) + 5  # + 5 minutes of wrap-up and homework


def route_notebooks() -> list[str]:
    """The route's notebook numbers in order (``make course`` runs these)."""
    return [nb for stop in ROUTE for nb in stop.notebooks]
