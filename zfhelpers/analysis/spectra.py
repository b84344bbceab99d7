"""Measurements behind ZF §4.1 (Fig. 6, architecture selection): first-layer filters that are
"dead", dominated by one feature, or spread over extreme frequencies, and aliasing in layer 2.

ZF argue from pictures: AlexNet's layer 1 (11×11, stride 4) is "a mix of extremely high and low
frequency information, with little coverage of the mid frequencies", with "dead" features, and its
layer-2 projections show "aliasing artifacts caused by the large stride 4"; without RMS
renormalisation "one feature dominates". Each helper turns one of these into a number."""

from __future__ import annotations

import torch

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
