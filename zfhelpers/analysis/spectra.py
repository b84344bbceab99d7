"""Measurements behind ZF §4.1 (Fig. 6, architecture selection): first-layer filters that are
"dead", dominated by one feature, or spread over extreme frequencies, and aliasing in layer 2.

ZF argue from pictures: AlexNet's layer 1 (11×11, stride 4) is "a mix of extremely high and low
frequency information, with little coverage of the mid frequencies", with "dead" features, and its
layer-2 projections show "aliasing artifacts caused by the large stride 4"; without RMS
renormalisation "one feature dominates". Each helper turns one of these into a number."""

from __future__ import annotations

import numpy as np
import torch

from ..claims.record import Claim
from .stats import binomial_ci, bootstrap_ci, permutation_test

#: Frequency bands (cycles per input pixel) for :func:`band_fractions`; 0.5 is the Nyquist limit.
BANDS = {"low": (0.0, 1 / 12), "mid": (1 / 12, 1 / 4), "high": (1 / 4, 0.5 + 1e-9)}


def grey_filters(weight: torch.Tensor) -> torch.Tensor:
    """O×3×k×k → O×k×k: the sum over input channels, all that acts on a grey image fed as RGB."""
    return weight.detach().float().sum(1)


def filter_rms(weight: torch.Tensor) -> torch.Tensor:
    """Per-filter RMS, the quantity ZF's renormalisation caps at 0.1 (§3)."""
    return weight.detach().float().pow(2).flatten(1).mean(1).sqrt()


def radial_power(maps: torch.Tensor, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power spectrum of each N×h×w map (mean removed, zero-padded to ``size``):
    (frequencies in cycles/pixel, N×B power, each row normalised to sum 1)."""
    x = maps.detach().float()
    x = x - x.mean((-2, -1), keepdim=True)
    power = torch.fft.fft2(x, s=(size, size)).abs().pow(2)
    f = torch.fft.fftfreq(size)
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt().flatten()
    bins = torch.clamp((radius * size).round().long(), max=size // 2)
    n_bins = size // 2 + 1
    total = torch.zeros(x.shape[0], n_bins).index_add_(1, bins, power.flatten(1))
    count = torch.zeros(n_bins).index_add_(0, bins, torch.ones_like(radius))
    spectrum = total / count
    spectrum = spectrum / spectrum.sum(1, keepdim=True).clamp_min(1e-30)
    return torch.arange(n_bins) / size, spectrum


def band_fractions(freqs: torch.Tensor, spectrum: torch.Tensor, bands=None) -> dict[str, float]:
    """Share of the filters whose spectral peak (DC excluded) lies in each band."""
    bands = bands or BANDS
    peak = freqs[1:][spectrum[:, 1:].argmax(1)]
    return {name: float(((peak >= lo) & (peak < hi)).float().mean()) for name, (lo, hi) in bands.items()}


def energy_above(maps: torch.Tensor, cutoff: float, size: int = 64) -> torch.Tensor:
    """Per map, the fraction of (mean-removed) power at radial frequencies above ``cutoff``
    cycles/pixel — for band-limited inputs, power that no input content can explain."""
    freqs, spectrum = radial_power(maps, size)
    return spectrum[:, freqs > cutoff].sum(1)


def dead_units(max_activation: torch.Tensor, rel: float = 0.05) -> torch.Tensor:
    """Boolean per channel: its largest activation over a dataset is below ``rel`` × the layer's
    median largest activation (a unit that never, or barely, fires)."""
    m = max_activation.detach().float()
    return m <= rel * m.median().clamp_min(1e-12)


# --------------------------------------------------------------------------- claims (notebook 06)
#: Fashion-MNIST's 28 px images upsampled 4× to 112 px hold no content above this (cycles/pixel).
DATA_CUTOFF = 0.125


def band_power(maps: torch.Tensor, bands=None, size: int = 64) -> dict[str, torch.Tensor]:
    """Per map, the share of its (mean-removed) power in each band of ``bands`` (default :data:`BANDS`):
    a power measure, unlike :func:`band_fractions`, which only counts where each spectrum peaks."""
    freqs, spectrum = radial_power(maps, size)
    bands = bands or BANDS
    return {name: spectrum[:, (freqs >= lo) & (freqs < hi)].sum(1) for name, (lo, hi) in bands.items()}


def _sign_verdict(diff: float, ci: tuple[float, float], p: float, *, expected: str, what: str,
                  alpha: float = 0.05) -> tuple[str, str]:  # fmt: skip
    """The paper says ``diff`` is ``expected`` ("positive" / "negative"): reproduced when the 95 % CI
    excludes 0 on that side and p < ``alpha``; partly when only the estimate is on that side."""
    sign = 1.0 if expected == "positive" else -1.0
    side = "above" if sign > 0 else "below"
    if sign * ci[0] > 0 and sign * ci[1] > 0 and p < alpha:
        return "reproduced", f"{what} is {side} 0 as the paper says (95 % CI excludes 0, p < {alpha:g})"
    if sign * diff > 0:
        return "partly reproduced", f"{what} points the paper's way, but the CI reaches 0 or p ≥ {alpha:g}"
    return "not reproduced", f"{what} is not {side} 0 (the paper's direction)"


def difference_claim(a, b, *, id: str, statement: str, expected: str, what: str, paper: str | None,
                     tolerance: float = 1e-3, decimals: int = 3, seed: int = 0) -> Claim:  # fmt: skip
    """Claim on mean(``a``) − mean(``b``) of two independent samples (per filter or per projection):
    two-sample bootstrap 95 % CI and a one-sided permutation test in the ``expected`` direction."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(a.mean() - b.mean())
    rng = np.random.default_rng(seed)
    boots = [rng.choice(a, a.size).mean() - rng.choice(b, b.size).mean() for _ in range(2000)]
    ci = tuple(float(q) for q in np.quantile(boots, [0.025, 0.975]))
    p = permutation_test(a, b, alternative="greater" if expected == "positive" else "less", n_perm=4000, seed=seed)
    verdict, reason = _sign_verdict(diff, ci, p, expected=expected, what=what)
    return Claim(id=id, statement=statement, value=diff, ci=ci, p_value=p, n=int(a.size + b.size),
                 test="permutation test, two independent samples (one-sided)", decimals=decimals,
                 tolerance=tolerance, chance=0.0, paper=paper, verdict=verdict if paper else "not comparable",
                 reason=reason)  # fmt: skip


def mean_claim(values, *, id: str, statement: str, tolerance: float = 1e-3, decimals: int = 3) -> Claim:
    """A descriptive mean with its bootstrap 95 % CI (no paper number to compare with)."""
    v = np.asarray(values, float)
    return Claim(id=id, statement=statement, value=float(v.mean()), ci=bootstrap_ci(v), n=int(v.size),
                 decimals=decimals, tolerance=tolerance, verdict="not comparable",
                 reason="descriptive; compared in the difference claims")  # fmt: skip


def dead_claim(dead_a: torch.Tensor, dead_b: torch.Tensor, *, model_a: str, model_b: str, rel: float) -> Claim:
    """ZF: the smaller stride and filters give fewer dead layer-1 features. Difference of the dead
    shares (``model_a`` − ``model_b``), Fisher's exact test (one-sided, more dead in ``model_a``)."""
    from scipy.stats import fisher_exact

    ka, na, kb, nb = int(dead_a.sum()), len(dead_a), int(dead_b.sum()), len(dead_b)
    diff = ka / na - kb / nb
    p = float(fisher_exact([[ka, na - ka], [kb, nb - kb]], alternative="greater")[1])
    lo_a, hi_a = binomial_ci(ka, na)
    lo_b, hi_b = binomial_ci(kb, nb)
    if ka + kb == 0:
        verdict, reason = "not reproduced", "no dead layer-1 unit in either twin at this width: nothing to fix"
    elif diff > 0 and p < 0.05:
        verdict, reason = "reproduced", "significantly more dead units with the large stride (Fisher p < 0.05)"
    elif diff > 0:
        verdict, reason = "partly reproduced", "more dead units with the large stride, not significant"
    else:
        verdict, reason = "not reproduced", "no more dead units with the large stride"
    return Claim(
        id="06.dead_layer1_share.alexnet_minus_zf",
        statement=(f"share of dead layer-1 units (largest activation over the scanned images ≤ {rel:g} × the layer "
                   f"median) of {model_a} minus {model_b} ({ka}/{na} vs {kb}/{nb}; Wilson 95 % CIs "
                   f"[{lo_a:.2f}, {hi_a:.2f}] and [{lo_b:.2f}, {hi_b:.2f}])"),
        value=diff, p_value=p, test="Fisher's exact test (one-sided)", n=na + nb, decimals=2, tolerance=0.05,
        chance=0.0, paper="zf2014.fig6.fewer_dead_features", verdict=verdict, reason=reason,
    )  # fmt: skip


def accuracy_claim(acc_a: float, acc_b: float, n_test: int, *, model_a: str, model_b: str) -> Claim:
    """ZF Table 2: the ZF architecture classifies better. Accuracy of ``model_b`` (ZF-style) minus
    ``model_a``, with a normal-approximation 95 % CI treating the two test runs as independent (the
    same test images make this conservative). "Partly" needs a lead of at least one standard error:
    a gain of a few test images is no gain."""
    diff = acc_b - acc_a
    se = float(np.sqrt(acc_a * (1 - acc_a) / n_test + acc_b * (1 - acc_b) / n_test))
    ci = (diff - 1.96 * se, diff + 1.96 * se)
    if ci[0] > 0:
        verdict, reason = "reproduced", "the ZF-style twin is more accurate (95 % CI above 0)"
    elif diff > se:
        verdict, reason = "partly reproduced", "the ZF-style twin is ahead by over one standard error, within the CI"
    else:
        verdict, reason = "not reproduced", "no accuracy gain beyond one standard error from the ZF-style first layer"
    return Claim(
        id="06.test_accuracy.zf_minus_alexnet",
        statement=(f"test accuracy after the same training, {model_b} minus {model_a} (Fashion-MNIST test, "
                   f"{n_test} images, as recorded at the end of training)"),
        value=diff, ci=ci, n=n_test, decimals=3, tolerance=1e-9, chance=0.0,
        paper="zf2014.fig6.change_improves_accuracy", verdict=verdict, reason=reason,
    )  # fmt: skip


def identity_claim(state_a: dict, state_b: dict, *, model_a: str, model_b: str) -> Claim:
    """ZF Fig. 6(a): without RMS renormalisation one feature dominates. Here the largest weight
    difference between the twins trained with and without it: 0 means the cap never bound, and the
    two panels show the same network."""
    diff = max(float((state_a[k].float() - state_b[k].float()).abs().max()) for k in state_a)
    same = diff == 0.0
    return Claim(
        id="06.renorm_identity.max_weight_difference",
        statement=f"largest |weight difference| between {model_a} (no RMS renormalisation) and {model_b} (with it)",
        value=diff, n=len(state_a), decimals=6, tolerance=0.0, paper="zf2014.fig6.no_renorm_one_feature_dominates",
        verdict="not comparable" if same else "not reproduced",
        reason=("the renormalisation never triggered (no filter reached RMS 0.1): both twins are the same "
                "network bit for bit, so nothing can dominate" if same else
                "the twins differ; compare their largest filter RMS / median"),
    )  # fmt: skip
