"""Numbers for Xia et al.'s claim about FMI images: "every filter extracts a specific texture. The
texture from higher layer contains more colours and more intricate structures."

* :func:`colourfulness` — Hasler & Süsstrunk (2003): σ_rgyb + 0.3 μ_rgyb on the 0–255 scale
  (about 0 for grey, 30–60 for ordinary photos, > 100 for saturated ones);
* :func:`spectral_entropy` — entropy (bits, normalised to [0, 1]) of the radially averaged power
  spectrum of the luminance: low for one dominant frequency, high for broadband structure;
* :func:`coherence` — mean structure-tensor coherence ((λ₁−λ₂)/(λ₁+λ₂)): 1 for a single
  orientation everywhere (stripes), lower for intricate, multi-oriented structure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .spectra import radial_power


def _check(images: torch.Tensor) -> torch.Tensor:
    if images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected B×H×W×3 images in [0, 1], got shape {tuple(images.shape)}")
    return images.float()


def colourfulness(images: torch.Tensor) -> torch.Tensor:
    """B×H×W×3 in [0, 1] → B colourfulness values (Hasler & Süsstrunk 2003)."""
    x = _check(images) * 255
    r, g, b = x.unbind(-1)
    rg, yb = r - g, 0.5 * (r + g) - b
    std = (rg.flatten(1).var(1, unbiased=False) + yb.flatten(1).var(1, unbiased=False)).sqrt()
    mean = (rg.flatten(1).mean(1).pow(2) + yb.flatten(1).mean(1).pow(2)).sqrt()
    return std + 0.3 * mean


def luminance(images: torch.Tensor) -> torch.Tensor:
    x = _check(images)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def spectral_entropy(images: torch.Tensor) -> torch.Tensor:
    """Normalised entropy of the luminance's radial power spectrum (DC excluded)."""
    lum = luminance(images)
    size = 1 << math.ceil(math.log2(max(lum.shape[-2:])))
    _, spec = radial_power(lum, size)
    p = spec[:, 1:]
    p = p / p.sum(1, keepdim=True).clamp_min(1e-30)
    h = -(p * p.clamp_min(1e-30).log2()).sum(1)
    return h / math.log2(p.shape[1])


def coherence(images: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Mean structure-tensor coherence of the luminance (Sobel gradients, Gaussian window σ)."""
    lum = luminance(images)[:, None]
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3) / 8
    gx = F.conv2d(F.pad(lum, (1, 1, 1, 1), mode="replicate"), kx)
    gy = F.conv2d(F.pad(lum, (1, 1, 1, 1), mode="replicate"), kx.transpose(2, 3))
    r = int(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    w = torch.exp(-(t**2) / (2 * sigma**2))
    w = w / w.sum()
    win = (w[:, None] * w[None, :]).view(1, 1, 2 * r + 1, 2 * r + 1)

    def smooth(a):
        return F.conv2d(F.pad(a, (r, r, r, r), mode="replicate"), win)

    jxx, jyy, jxy = smooth(gx * gx), smooth(gy * gy), smooth(gx * gy)
    diff = ((jxx - jyy).pow(2) + 4 * jxy.pow(2)).sqrt()
    coh = diff / (jxx + jyy).clamp_min(1e-12)
    weight = jxx + jyy  # weight by gradient energy: flat regions have no orientation
    return (coh * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1e-12)


METRICS = {"colourfulness": colourfulness, "spectral_entropy": spectral_entropy, "coherence": coherence}


def measure(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """All three metrics of a B×H×W×3 batch."""
    return {name: fn(images) for name, fn in METRICS.items()}


# --------------------------------------------------------------------------- specificity
# "Every filter extracts a specific texture": the same filter's FMI images on two photos should look
# more alike than two filters' FMI images. "Alike" is judged by a descriptor that does not use the
# network being studied (a network's own features of images optimised for those features would be
# circular): colour, orientation and scale distributions, the three ways the textures differ.
CHROMA_BINS = 8  # per opponent axis, over [-CHROMA_RANGE, CHROMA_RANGE]
CHROMA_RANGE = 0.5
ORIENTATION_BINS = 8  # over [0, π)
SCALE_BANDS = 5  # octave bands of the radial spectrum


def _chroma_histogram(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(-1)
    axes = torch.stack([r - g, 0.5 * (r + g) - b], -1).flatten(1, 2)  # B×P×2, opponent chroma
    pos = ((axes + CHROMA_RANGE) / (2 * CHROMA_RANGE) * CHROMA_BINS).floor().clamp(0, CHROMA_BINS - 1).long()
    cell = pos[..., 0] * CHROMA_BINS + pos[..., 1]
    return torch.zeros(x.shape[0], CHROMA_BINS**2).scatter_add_(1, cell, torch.ones_like(cell, dtype=torch.float32))


def _orientation_histogram(x: torch.Tensor) -> torch.Tensor:
    lum = luminance(x)[:, None]
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3) / 8
    gx = F.conv2d(F.pad(lum, (1, 1, 1, 1), mode="replicate"), kx).flatten(1)
    gy = F.conv2d(F.pad(lum, (1, 1, 1, 1), mode="replicate"), kx.transpose(2, 3)).flatten(1)
    angle = torch.atan2(gy, gx) % math.pi
    cell = (angle / math.pi * ORIENTATION_BINS).floor().clamp(0, ORIENTATION_BINS - 1).long()
    return torch.zeros(x.shape[0], ORIENTATION_BINS).scatter_add_(1, cell, (gx**2 + gy**2).sqrt())


def _scale_histogram(x: torch.Tensor) -> torch.Tensor:
    lum = luminance(x)
    size = 1 << math.ceil(math.log2(max(lum.shape[-2:])))
    freqs, spec = radial_power(lum, size)
    edges = 0.5 * 2.0 ** -torch.arange(SCALE_BANDS, -1, -1, dtype=torch.float32)  # octaves up to Nyquist
    edges[0] = 0.0
    band = torch.bucketize(freqs[1:], edges[1:-1])
    return torch.zeros(x.shape[0], SCALE_BANDS).index_add_(1, band, spec[:, 1:])


def descriptor(images: torch.Tensor) -> torch.Tensor:
    """B×H×W×3 in [0, 1] → B×3×D: per image three distributions, each summing to 1 (zero-padded to
    a common length): opponent-chroma histogram, magnitude-weighted gradient-orientation histogram,
    octave-band share of the luminance power spectrum."""
    x = _check(images)
    parts = [_chroma_histogram(x), _orientation_histogram(x), _scale_histogram(x)]
    width = max(p.shape[1] for p in parts)
    parts = [F.pad(p / p.sum(1, keepdim=True).clamp_min(1e-30), (0, width - p.shape[1])) for p in parts]
    return torch.stack(parts, 1)


def descriptor_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise distances (A×B) between descriptors: the mean over the three parts of the Hellinger
    distance √(1 − Σ√(p·q)), each in [0, 1] (0 = identical distributions)."""
    bc = torch.einsum("apd,bpd->abp", a.sqrt(), b.sqrt()).clamp(0, 1)
    return (1 - bc).clamp_min(0).sqrt().mean(-1)


@dataclass
class Specificity:
    """The identification test: for each filter's FMI on one photo, is its nearest texture among the
    same layer's filters on the other photo the same filter's? Accuracy over all such decisions
    (both directions, every pair of photos), a permutation p-value (filter labels of the second
    photo shuffled within each layer) and the chance level 1/K."""

    accuracy: float
    correct: int
    decisions: int
    p_value: float
    chance: float
    per_layer: dict[str, float]
    distances: dict[str, torch.Tensor]  # layer → P×K×K (photo pair, filter on first, filter on second)
    n_perm: int
    null: np.ndarray  # accuracy under each label permutation


def count_hits(dist: torch.Tensor, perms):
    """Correct identifications in a P×K×K distance stack for each row of ``perms`` (N×K numpy):
    first-photo filter i is taken to be second-photo filter ``perm[i]`` (the identity is the truth)."""
    import numpy as np

    nearest_on_second = dist.argmin(-1).numpy()  # P×K: for first-photo filter i
    nearest_on_first = dist.argmin(-2).numpy()  # P×K: for second-photo filter j
    inverse = np.argsort(perms, axis=1)
    rows = (nearest_on_second[None] == perms[:, None, :]).sum((1, 2))
    cols = (nearest_on_first[None] == inverse[:, None, :]).sum((1, 2))
    return rows + cols


def specificity(fmi: dict[str, torch.Tensor], *, n_perm: int = 10000, seed: int = 0) -> Specificity:
    """``fmi``: layer → I×K×H×W×3 FMI images (I ≥ 2 photos, the same K filters on each)."""
    from itertools import combinations

    import numpy as np

    distances = {}
    for layer, imgs in fmi.items():
        if imgs.dim() != 5 or imgs.shape[0] < 2 or imgs.shape[1] < 2:
            raise ValueError(f"{layer}: need I×K×H×W×3 with at least 2 photos and 2 filters, got {tuple(imgs.shape)}")
        d = descriptor(imgs.flatten(0, 1)).view(imgs.shape[0], imgs.shape[1], 3, -1)
        distances[layer] = torch.stack([descriptor_distance(d[a], d[b]) for a, b in combinations(range(len(d)), 2)])
    rng = np.random.default_rng(seed)
    hits, decisions, null = {}, {}, np.zeros(n_perm, dtype=np.int64)
    for layer, dist in distances.items():
        k = dist.shape[-1]
        hits[layer] = int(count_hits(dist, np.arange(k)[None])[0])
        decisions[layer] = 2 * dist.shape[0] * k
        null += count_hits(dist, rng.permuted(np.tile(np.arange(k), (n_perm, 1)), axis=1))
    correct, total = sum(hits.values()), sum(decisions.values())
    p = float(((null >= correct).sum() + 1) / (n_perm + 1))
    chance = float(sum(decisions[layer] / d.shape[-1] for layer, d in distances.items()) / total)
    return Specificity(
        correct / total,
        correct,
        total,
        p,
        chance,
        {layer: hits[layer] / decisions[layer] for layer in distances},
        distances,
        n_perm,
        null / total,
    )


# --------------------------------------------------------------------------- depth trends
def layer_difference(
    first: Sequence[float], last: Sequence[float], *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """mean(last) − mean(first) with a percentile bootstrap interval (each group resampled on its
    own: the images of two layers are different images)."""
    import numpy as np

    a, b = np.asarray(first, dtype=float).ravel(), np.asarray(last, dtype=float).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("both layers need at least one value")
    rng = np.random.default_rng(seed)
    boots = b[rng.integers(0, b.size, (n_boot, b.size))].mean(1) - a[rng.integers(0, a.size, (n_boot, a.size))].mean(1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return float(b.mean() - a.mean()), (float(lo), float(hi))
