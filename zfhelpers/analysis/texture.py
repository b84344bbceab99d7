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
    w = (w / w.sum())
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
