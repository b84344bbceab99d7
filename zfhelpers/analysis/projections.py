"""Measured statements about projections (notebooks 02 and 09), each returned as a
:class:`zfhelpers.claims.Claim`: the mirror against the hook engine (an identity), the
image-independence of the deconvnet without switches (an identity), high-frequency artefacts of
deconvnet projections, and the cascading-randomisation sanity check (Adebayo et al. 2018 §3.1)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch

from ..claims.record import Claim
from ..data.display import support_box
from ..data.images import Sample
from ..methods.mirror import MirrorCheck
from ..methods.projection import LayerUnits
from ..models.randomize import reinitialize
from ..models.zoo import adapt
from .sanity import RandomizationStep, heat, learnable_layers, similarity
from .stats import bootstrap_ci, paired_permutation_test

#: An identity holds when the two sides differ by less than this, relative to the larger side's peak
#: (float32 rounding through a dozen layers stays far below it).
IDENTITY_TOLERANCE = 1e-5
#: Periods shorter than this many pixels count as "high frequency" (a 2-px checkerboard, 3-px stripes).
HIGH_FREQUENCY_PERIOD = 4.0


def scan_sample(data, index: int, loaded) -> Sample:
    """Image ``index`` of a scan set (:func:`zfhelpers.data.scansets.load_scan_set`) as a
    :class:`zfhelpers.data.images.Sample` for ``loaded``: model input and display image, named
    after the set, the index and its class."""
    x = data.prepare(data.images[index : index + 1])
    display = loaded.preprocess.denormalize(x[0]).permute(1, 2, 0).cpu().numpy()
    label = int(data.labels[index])
    what = loaded.categories[label] if loaded.categories else f"class {label}"
    return Sample(f"{data.name} #{index} ({what})", x, display)


def _identity_verdict(value: float, what: str) -> tuple[str, str]:
    if value < IDENTITY_TOLERANCE:
        return "reproduced", f"{what} agree to float rounding (below {IDENTITY_TOLERANCE:g} of the peak)"
    return "not reproduced", f"{what} differ by more than float rounding ({IDENTITY_TOLERANCE:g} of the peak)"


def mirror_claim(check: MirrorCheck, *, key: str, model: str) -> Claim:
    """ZF's explicit deconvnet (unpool with switches, rectify, transposed filters) equals the gradient
    with the deconvnet ReLU rule — Simonyan et al.'s observation that the two differ only at the
    rectifiers — measured as the largest relative difference over the compared units."""
    verdict, reason = _identity_verdict(check.worst, "explicit mirror and hook engine")
    layers = ", ".join(f"{layer} ch{c}" for layer, c in zip(check.layers, check.channels))
    return Claim(
        id=f"02.mirror_equals_engine.{key}",
        statement=(f"On {model}, the explicit deconvnet and autograd with the deconvnet ReLU rule give the same "
                   f"projection (largest max|mirror − engine| / max|engine| over {layers})"),
        value=check.worst, verdict=verdict, reason=reason, n=len(check.relative), decimals=8,
        tolerance=IDENTITY_TOLERANCE, paper="simonyan2014.deconv_equals_gradient_except_relu",
    )  # fmt: skip


def image_independence(maps: torch.Tensor) -> float:
    """``max_i max|maps[i] − maps[0]| / max|maps[0]|`` for N maps of the same class on N images:
    0 when the map does not depend on the image."""
    ref = maps[0]
    scale = float(ref.abs().max())
    if scale == 0:
        raise ValueError("the first map is all zeros: nothing to compare")
    return float((maps - ref).abs().amax() / scale)


def switchless_claim(deconvnet_maps: torch.Tensor, *, model: str, class_name: str) -> Claim:
    """Without max-pooling there are no switches, and the deconvnet rule ignores the forward pass at
    every rectifier: the backward signal of a class score never meets the image. Measured: the
    class's deconvnet maps on different photos are the same map."""
    value = image_independence(deconvnet_maps)
    verdict, reason = _identity_verdict(value, "the photos' deconvnet class maps")
    if verdict == "reproduced":
        reason += ": the map cannot show what in a photo drove the score"
    return Claim(
        id="09.deconvnet_class_map_ignores_the_image",
        statement=(f"On {model} (no max-pool), the deconvnet map of the class '{class_name}' is the same on "
                   f"{deconvnet_maps.shape[0]} different photos (max difference / peak)"),
        value=value, verdict=verdict, reason=reason, n=int(deconvnet_maps.shape[0]), decimals=8,
        tolerance=IDENTITY_TOLERANCE, paper="springenberg2015.sec3_4.deconv_without_switches",
    )  # fmt: skip


def high_frequency_share(projection: torch.Tensor, *, period: float = HIGH_FREQUENCY_PERIOD) -> float:
    """Share of the power of a 3×H×W projection (summed over colour, inside its support box, mean
    removed) at spatial periods shorter than ``period`` pixels: near 0 for smooth image-like
    structure, large for checkerboards and stripes."""
    y0, y1, x0, x1 = support_box(projection, pad=0, min_size=8)
    m = projection.detach().double().sum(0)[y0:y1, x0:x1]
    m = m - m.mean()
    power = torch.fft.rfft2(m).abs().square()
    fy = torch.fft.fftfreq(m.shape[0], dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(m.shape[1], dtype=torch.float64)[None, :]
    # rfft2 keeps half the columns: count the ones that stand for two (all but 0 and Nyquist) twice
    weight = torch.full_like(fx, 2.0)
    weight[0, 0] = 1.0
    if m.shape[1] % 2 == 0:
        weight[0, -1] = 1.0
    total = float((power * weight).sum())
    if total == 0:
        return 0.0
    high = (fy.square() + fx.square()).sqrt() > 1.0 / period
    return float((power * weight * high).sum() / total)


def artefact_claim(rows: Sequence[LayerUnits], *, key: str, model: str) -> Claim:
    """Paired over the same units (``rows``, projected under ``"deconvnet"`` and ``"guided"``): how
    much more of a deconvnet projection's power lies at periods under :data:`HIGH_FREQUENCY_PERIOD`
    px than of the guided-backprop projection's (Springenberg et al.'s appendix: with switches,
    guided backprop still gives the cleaner pictures)."""
    d = np.array([high_frequency_share(m) for r in rows for m in r.projections["deconvnet"].maps[:, 0]])
    g = np.array([high_frequency_share(m) for r in rows for m in r.projections["guided"].maps[:, 0]])
    layers = rows[0].layer if len(rows) == 1 else f"{rows[0].layer} to {rows[-1].layer}"
    diff = d - g
    p = paired_permutation_test(d, g, alternative="greater")
    ci = bootstrap_ci(diff)
    if p < 0.05:
        verdict, reason = "reproduced", "significantly more high-frequency power in the deconvnet projections"
    elif diff.mean() > 0:
        verdict, reason = "partly reproduced", "more high-frequency power in the deconvnet projections, not significant"
    else:
        verdict, reason = "not reproduced", "guided projections are not cleaner by this measure"
    return Claim(
        id=f"02.deconvnet_high_frequency_excess.{key}",
        statement=(f"On {model} ({layers}), deconvnet projections put more of their power at periods under "
                   f"{HIGH_FREQUENCY_PERIOD:g} px than guided-backprop projections of the same units "
                   "(mean difference of the high-frequency share, paired)"),
        value=float(diff.mean()), ci=ci, p_value=p, test="paired sign-flip permutation test (one-sided)",
        n=len(diff), decimals=3, tolerance=0.01, chance=0.0, verdict=verdict, reason=reason,
        paper="springenberg2015.appendix.guided_with_pooling",
    )  # fmt: skip


def cascade_stops(n_layers: int, n_steps: int) -> list[int]:
    """Which steps of a cascade over ``n_layers`` learnable layers to compute: all of them when
    ``n_steps`` is 0 or covers them, else the first two (the classifier), then evenly spaced ones
    down to the last (everything randomised). Step ``i`` means the top ``i`` layers are random."""
    if n_steps <= 0 or n_steps >= n_layers:
        return list(range(1, n_layers + 1))
    stops = {1, min(2, n_layers), n_layers, n_layers // 2}
    stops |= {int(round(v)) for v in np.linspace(1, n_layers, max(n_steps - 1, 2))}
    return sorted(s for s in stops if 1 <= s <= n_layers)


def cascade(model, method, *, n_steps: int = 0, seed: int = 0) -> list:
    """:func:`zfhelpers.analysis.sanity.cascading_randomization`, computing the maps only at
    :func:`cascade_stops` (the weights at a step are the full cascade's: layer ``i`` of the cascade
    is always re-drawn with seed ``seed + i``). Returns the steps, the first one the trained model."""
    lm = adapt(model)
    layers = learnable_layers(lm)
    work = copy.deepcopy(lm)  # the caller's model is never touched
    reference = heat(method(work))
    steps = [RandomizationStep("none", 1.0, 1.0, reference)]
    done = 0
    for stop in cascade_stops(len(layers), n_steps):
        for i in range(done, stop):
            reinitialize(work.module(layers[i]), seed + i)
        done = stop
        maps = heat(method(work))
        rho, ssim = similarity(reference, maps)
        steps.append(RandomizationStep(layers[stop - 1], rho, ssim, maps))
    return steps


def per_image_spearman(reference: torch.Tensor, maps: torch.Tensor) -> list[float]:
    """Spearman rank correlation of each image's |map| with its reference (N×H×W heat maps, as in
    :func:`zfhelpers.analysis.sanity.similarity`)."""
    return [similarity(reference[i : i + 1], maps[i : i + 1])[0] for i in range(reference.shape[0])]


#: What Adebayo et al. found per rule (registry id, whether the map should stay similar).
RANDOMIZATION_FINDINGS = {
    "gradient": ("adebayo2018.cascading.gradient_sensitive", False),
    "guided": ("adebayo2018.cascading.guided_backprop_insensitive", True),
}
#: Rank correlation above which a map counts as "barely changed", below which as "changed" (our convention).
SIMILAR = 0.5


def _randomization_verdict(rule: str, ci: tuple[float, float]) -> tuple[str | None, str, str]:
    if rule not in RANDOMIZATION_FINDINGS:
        side = "excludes" if ci[0] > 0 or ci[1] < 0 else "includes"
        return None, "not comparable", f"no paper statement for this rule; the CI {side} chance (ρ = 0)"
    paper, stays = RANDOMIZATION_FINDINGS[rule]
    above, below = ci[0] > SIMILAR, ci[1] < SIMILAR
    if (stays and above) or (not stays and below):
        return paper, "reproduced", f"95 % CI entirely {'above' if stays else 'below'} ρ = {SIMILAR:g}"
    if (stays and below) or (not stays and above):
        return paper, "not reproduced", f"95 % CI entirely {'below' if stays else 'above'} ρ = {SIMILAR:g}"
    return paper, "partly reproduced", f"95 % CI straddles ρ = {SIMILAR:g}"


def randomization_claims(steps: dict[str, list], model) -> list[Claim]:
    """Per rule, two claims: the rank correlation of each image's map with its original after the top
    half of the learnable layers were re-initialised, and after all of them (steps of :func:`cascade`
    or :func:`zfhelpers.analysis.sanity.cascading_randomization`), averaged over images with a
    bootstrap CI over images; chance is ρ = 0. Only the half-way point is compared with Adebayo et
    al.'s findings (their Fig. 2 shows maps while the top blocks are randomised)."""
    layers = learnable_layers(model)
    points = {"top_half": (layers[len(layers) // 2 - 1], f"the top half of the layers (down to "
                                                          f"{layers[len(layers) // 2 - 1]})"),
              "all_layers": (layers[-1], f"every layer (down to {layers[-1]})")}  # fmt: skip
    claims = []
    for key, (layer, label) in points.items():
        for rule, rule_steps in steps.items():
            at = next((s for s in rule_steps if s.randomized_up_to == layer), None)
            if at is None:
                raise ValueError(f"the cascade has no step that randomised down to {layer!r}")
            rhos = per_image_spearman(rule_steps[0].maps, at.maps)
            ci = bootstrap_ci(rhos)
            paper, verdict, reason = _randomization_verdict(rule, ci)
            if key != "top_half" and paper is not None:
                paper, verdict = None, "not comparable"
                side = "excludes" if ci[0] > 0 or ci[1] < 0 else "includes"
                reason = f"no paper number at this step; the CI {side} chance (ρ = 0)"
            claims.append(Claim(
                id=f"09.randomization.{key}.{rule}",
                statement=(f"{rule} maps after randomising {label}: Spearman rank correlation of |map| with "
                           "the trained model's, mean over photos"),
                value=float(np.mean(rhos)), ci=ci, n=len(rhos), decimals=2, tolerance=0.02, chance=0.0,
                paper=paper, verdict=verdict, reason=reason,
            ))  # fmt: skip
    return claims
