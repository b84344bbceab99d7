"""Exercises of notebooks 04 (feature evolution, ZF §4 Fig. 4) and 06 (architecture selection,
ZF §4.1 Fig. 6): the two measurements behind their claims, written by hand."""

from __future__ import annotations

import torch

from .registry import CheckResult, exercise, solution


def _index_sets() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(4)
    a = torch.stack([torch.randperm(30, generator=g)[:9] for _ in range(12)])
    b = torch.stack([torch.randperm(30, generator=g)[:9] for _ in range(12)])
    b[0] = a[0]  # one identical pair (Jaccard 1)
    return a, b


@exercise("04.top9_jaccard", notebook="04_feature_evolution", title="Top-9 image overlap (Jaccard) per feature map")
def check_top9_jaccard(student) -> CheckResult:
    """``student(a, b)``: two C×9 tensors of image indices (each row a map's top-9 images at two
    checkpoints) → the C Jaccard overlaps |A ∩ B| / |A ∪ B|; compared with the package's."""
    from ..analysis.evolution import jaccard

    a, b = _index_sets()
    got = torch.as_tensor(student(a, b), dtype=torch.float32).flatten()
    ref = jaccard(a, b)
    if got.shape == ref.shape and torch.allclose(got, ref, atol=1e-6):
        return CheckResult(True, "your overlap matches the package's top-9 Jaccard overlap")
    share = (a[:, :, None] == b[:, None, :]).any(2).sum(1).float() / a.shape[1]
    if got.shape == ref.shape and torch.allclose(got, share, atol=1e-6):
        return CheckResult(False, "this is |A ∩ B| / 9 — divide by the size of the union, not of one set")
    return CheckResult(False, f"expected {ref[:4].tolist()} … for the first maps, got {got[:4].tolist()} …")


@solution("04.top9_jaccard",
          mistake=lambda a, b: (a[:, :, None] == b[:, None, :]).any(2).sum(1).float() / a.shape[1])  # fmt: skip
def top9_jaccard(a, b):
    inter = (a[:, :, None] == b[:, None, :]).any(2).sum(1).float()
    return inter / (a.shape[1] + b.shape[1] - inter)


def _filters() -> torch.Tensor:
    g = torch.Generator().manual_seed(6)
    yy, xx = torch.meshgrid(torch.arange(11.0), torch.arange(11.0), indexing="ij")
    waves = torch.stack([torch.cos(2 * torch.pi * f * xx) for f in (0.05, 0.15, 0.3)])
    return waves + 2.0 + 0.3 * torch.randn(3, 11, 11, generator=g)  # an offset: the mean must go


@exercise("06.power_above", notebook="06_architecture_selection", title="A filter's power above a frequency")
def check_power_above(student) -> CheckResult:
    """``student(maps, cutoff)``: N×h×w maps → each map's share of its (mean-removed) power at radial
    frequencies above ``cutoff`` cycles/pixel, zero-padded to 64×64 (the package's ``energy_above``)."""
    from ..analysis.spectra import energy_above

    maps = _filters()
    got = torch.as_tensor(student(maps, 0.125), dtype=torch.float32).flatten()
    ref = energy_above(maps, 0.125)
    if got.shape == ref.shape and torch.allclose(got, ref, atol=1e-4):
        return CheckResult(True, "your shares match the package's power above the cut-off")
    return CheckResult(False, f"expected {ref.tolist()}, got {got.tolist()} — did you remove each map's mean, pad "
                              "to 64×64, and bin by radius round(|f| × 64)?")  # fmt: skip


def _power_above(maps, cutoff, *, remove_mean: bool = True):
    x = maps.float() - (maps.float().mean((-2, -1), keepdim=True) if remove_mean else 0)
    power = torch.fft.fft2(x, s=(64, 64)).abs().pow(2)
    f = torch.fft.fftfreq(64)
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    bins = torch.clamp((radius * 64).round().long(), max=32)
    # radially averaged spectrum (mean power per radius), normalised, then summed above the cut-off
    total = torch.zeros(x.shape[0], 33).index_add_(1, bins.flatten(), power.flatten(1))
    spectrum = total / torch.zeros(33).index_add_(0, bins.flatten(), torch.ones(64 * 64))
    spectrum = spectrum / spectrum.sum(1, keepdim=True)
    return spectrum[:, torch.arange(33) / 64 > cutoff].sum(1)


@solution("06.power_above", mistake=lambda maps, cutoff: _power_above(maps, cutoff, remove_mean=False))
def power_above(maps, cutoff):
    return _power_above(maps, cutoff)
