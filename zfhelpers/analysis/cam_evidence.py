"""What the class-activation-map papers claim, measured (notebook 10):

* Grad-CAM = ReLU(CAM) / Z on a network ending in global average pooling + one linear layer
  (Selvaraju et al. 2017 §3; an identity, so the two maps must agree to float rounding);
* class discrimination: with two photos side by side, the map of each photo's class puts its mass
  on that photo (chance: half of it);
* the randomisation sanity check (Adebayo et al. 2018 §3.1): how much of a method's map survives
  when the classifier is re-initialised. A map that survives is not evidence of what the
  classifier uses, whatever it looks like."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..claims import Claim
from ..methods import cam as cams
from ..models.zoo import adapt
from .stats import bootstrap_ci
from .verdicts import sign_rule, threshold_rule

IDENTITY_TOLERANCE = 1e-4  # relative; float32 rounding of a 1280-term sum is ~1e-6
SURVIVES = 0.5  # Spearman ρ at or above which a map "survives" randomisation
RANDOMISATION_PAPER = {"gradcam": ("adebayo2018.cascading.gradcam_sensitive", False),
                       "guided_gradcam": ("adebayo2018.cascading.guided_gradcam_insensitive", True)}  # fmt: skip


def identity_gap(model, x: torch.Tensor, *, target, layer: str | None = None) -> float:
    """Largest |Grad-CAM − ReLU(CAM)/Z| relative to the largest Grad-CAM value (0 = identical)."""
    c = cams.cam(model, x, target=target, layer=layer)
    g = cams.gradcam(model, x, target=target, layer=layer)
    z = c.maps.shape[-2] * c.maps.shape[-1]
    return float((g.maps - F.relu(c.maps) / z).abs().max() / g.maps.abs().max().clamp_min(1e-12))


def identity_claim(model, x: torch.Tensor, *, target, layer: str | None = None) -> Claim | None:
    """The Grad-CAM = ReLU(CAM)/Z identity on these images (None where CAM does not apply)."""
    if "cam" not in cams.applicable(model):
        return None
    gap = identity_gap(model, x, target=target, layer=layer)
    ok = gap < IDENTITY_TOLERANCE
    return Claim("10.gradcam_equals_relu_cam", "largest relative difference between Grad-CAM and ReLU(CAM)/Z",
                 gap, "reproduced" if ok else "not reproduced",
                 f"{'below' if ok else 'above'} {IDENTITY_TOLERANCE:g}: the two maps are "
                 f"{'the same up to float rounding' if ok else 'different'}", n=len(x), decimals=6,
                 tolerance=IDENTITY_TOLERANCE, paper="selvaraju2017.gradcam_equals_cam_on_gap")  # fmt: skip


@dataclass
class TwoObjects:
    """Own-half shares of a method's map on side-by-side composites."""

    method: str
    composites: list[tuple[str, str]]  # (left, right) photo names
    classes: list[tuple[int, int]]  # each photo's own top class (from the photo alone)
    shares: np.ndarray  # composites × 2: mass of the left / right class's map on its own half
    maps: list[torch.Tensor]  # per composite: 2×H×W upsampled maps (left class, right class)


def two_objects(model, samples: dict, *, method: str = "gradcam", layer: str | None = None,
                pairs: list[tuple[str, str]] | None = None) -> TwoObjects:  # fmt: skip
    """For every ordered pair of ``samples`` (name → prepared :class:`~zfhelpers.data.images.Sample`
    of equal size), put the two photos side by side and measure which share of the map of each
    photo's own top class (decided on the photo alone) falls on that photo's half."""
    lm = adapt(model)
    names = list(samples)
    pairs = list(itertools.permutations(names, 2)) if pairs is None else [tuple(p) for p in pairs]
    with torch.inference_mode():
        own = {n: int(lm.model(samples[n].tensor).argmax()) for n in names}
    shares, classes, maps = [], [], []
    for a, b in pairs:
        x = torch.cat([samples[a].tensor, samples[b].tensor], dim=3)
        half = samples[a].tensor.shape[-1]
        res = cams.run(method, lm, x.repeat(2, 1, 1, 1), target=[own[a], own[b]], layer=layer)
        m = res.upsampled.clamp_min(0)
        total = m.flatten(1).sum(1).clamp_min(1e-12)
        shares.append([float(m[0, :, :half].sum() / total[0]), float(m[1, :, half:].sum() / total[1])])
        classes.append((own[a], own[b]))
        maps.append(m)
    return TwoObjects(method, pairs, classes, np.asarray(shares), maps)


def two_objects_claim(result: TwoObjects) -> Claim:
    """Mean own-half share with a bootstrap CI over the composites' halves; chance 0.5. Only
    Grad-CAM (and CAM, the same map on a GAP network) is claimed class-discriminative by its paper."""
    values = result.shares.ravel()
    value, ci = float(values.mean()), bootstrap_ci(values)
    verdict, reason = sign_rule(value - 0.5, ci=(ci[0] - 0.5, ci[1] - 0.5), what="own-half share minus 0.5")
    paper = "selvaraju2017.class_discriminative" if result.method in ("gradcam", "cam") else None
    if paper is None:
        verdict, reason = "not comparable", f"no paper states it for {result.method}; here: {reason}"
    return Claim(
        f"10.two_objects.{result.method}",
        f"{result.method}: share of a class's map on its own photo, two photos side by side",
        value,
        verdict,
        reason,
        ci=ci,
        n=len(values),
        decimals=2,
        tolerance=2e-3,
        chance=0.5,
        paper=paper,
    )


def after_classifier(model, steps: list) -> object:
    """The cascading-randomisation step in which only the classifier (the ``logits`` layer, or the
    first layer randomised) has been re-initialised."""
    lm = adapt(model)
    logits = lm.roles.logits
    return next((s for s in steps if s.randomized_up_to == logits), steps[1])


def randomization_claims(model, steps: dict[str, list]) -> list[Claim]:
    """Per method: Spearman ρ between the trained map and the map after re-initialising the
    classifier, mean with a bootstrap CI over the images. Adebayo et al. say Grad-CAM changes and
    Guided Grad-CAM does not; for other methods no paper states it (verdict "not comparable")."""
    claims = []
    for method, st in steps.items():
        rhos = np.asarray(after_classifier(model, st).spearman_per_image, float)
        value, ci = float(rhos.mean()), bootstrap_ci(rhos)
        survives = ci[0] >= SURVIVES
        if method in RANDOMISATION_PAPER:
            paper, insensitive = RANDOMISATION_PAPER[method]
            meaning = "paper: the map " + (
                f"survives, ρ ≥ {SURVIVES:g}" if insensitive else f"changes, ρ < {SURVIVES:g}"
            )
            verdict, reason = threshold_rule(value, ci, threshold=SURVIVES, above=insensitive, meaning=meaning)
        else:
            paper, verdict = None, "not comparable"
            if survives:
                reason = (
                    f"no paper states it; the map survives (whole CI ≥ {SURVIVES:g}): not evidence of the classifier"
                )
            else:
                reason = f"no paper states it; the map does not clearly survive (CI reaches below {SURVIVES:g})"
        claims.append(Claim(f"10.randomisation.{method}",
                            f"{method}: Spearman ρ of the map with the classifier re-initialised vs trained",
                            value, verdict, reason, ci=ci, n=len(rhos), decimals=2, tolerance=5e-3, chance=0.0,
                            paper=paper))  # fmt: skip
    return claims


def method_maps(model, x: torch.Tensor, *, layer: str | None = None, top_k: int = 3,
                methods: tuple[str, ...] | None = None) -> dict[int, dict[str, cams.CamResult]]:  # fmt: skip
    """``{rank: {method: CamResult}}`` for the top-``top_k`` classes of every image in ``x`` and every
    applicable method (:func:`zfhelpers.methods.cam.applicable`)."""
    methods = cams.applicable(model) if methods is None else methods
    return {rank: {m: cams.run(m, model, x, target=f"top{rank}", layer=layer) for m in methods}
            for rank in range(1, top_k + 1)}  # fmt: skip


def cascade(model, x: torch.Tensor, *, target, layer: str | None = None, methods: tuple[str, ...] | None = None,
            depth: int = 0, seed: int = 0) -> dict[str, list]:  # fmt: skip
    """Cascading randomisation (Adebayo et al. §3.1) of every gradient-based CAM method: the maps
    for ``target`` after re-initialising the top ``depth`` learnable layers one by one (0 = all)."""
    from .sanity import cascading_randomization, learnable_layers

    lm = adapt(model)
    methods = tuple(m for m in (cams.applicable(lm) if methods is None else methods) if m != "cam")
    layers = learnable_layers(lm)
    layers = layers[:depth] if depth else layers

    def attribution(method):
        def fn(net):
            res = cams.run(method, net, x, target=target, layer=layer)
            return res.guided if method == "guided_gradcam" else res.upsampled[:, None]

        return fn

    return {m: cascading_randomization(lm, attribution(m), layers=layers, seed=seed) for m in methods}
