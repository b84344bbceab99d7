"""Exercise of notebook 13: Zhang et al.'s location instability of one unit, written by hand."""

from __future__ import annotations

import torch

from .registry import CheckResult, exercise, solution


def _reference(positions: torch.Tensor, landmarks: torch.Tensor, diagonal: float) -> float:
    from ..graph.evaluate import nanstd

    d = (positions[:, None] - landmarks).norm(dim=-1) / diagonal  # T×K
    return float(nanstd(d).nanmean())


@exercise("13.location_instability", notebook="13_explanatory_graph", title="Location instability of one unit")
def check_location_instability(student) -> CheckResult:
    """``student(positions T×2, landmarks T×K×2, diagonal) -> float``: over a unit's top images, per
    landmark the (unbiased) standard deviation of ‖position − landmark‖ / diagonal, then the mean
    over landmarks (docs/papers.md §4.3)."""
    g = torch.Generator().manual_seed(13)
    positions = torch.rand(20, 2, generator=g) * 112
    landmarks = positions[:, None] + torch.randn(20, 3, 2, generator=g) * torch.tensor([4.0, 9.0, 15.0])[:, None]
    diagonal = 112 * 2**0.5
    ref = _reference(positions, landmarks, diagonal)
    got = float(student(positions.clone(), landmarks.clone(), diagonal))
    if abs(got - ref) <= 1e-5 * max(1.0, abs(ref)):
        return CheckResult(True, f"matches the package's metric ({ref:.4f})")
    d = (positions[:, None] - landmarks).norm(dim=-1) / diagonal
    if abs(got - float(d.std(0, unbiased=False).mean())) <= 1e-5:
        return CheckResult(False, "close: the release uses the unbiased standard deviation (divide by T − 1)")
    if abs(got - float(d.std(0).mean() * diagonal)) <= 1e-4 * diagonal:
        return CheckResult(False, "divide the distances by the image diagonal")
    return CheckResult(False, f"got {got:.4f}, expected {ref:.4f}: std over images per landmark, then mean")


def _population_std(positions, landmarks, diagonal):
    return float(((positions[:, None] - landmarks).norm(dim=-1) / diagonal).std(0, unbiased=False).mean())


@solution("13.location_instability", mistake=_population_std)
def location_instability(positions, landmarks, diagonal):
    distances = (positions[:, None] - landmarks).norm(dim=-1) / diagonal  # T×K: unit to each landmark
    return float(distances.std(0).mean())  # unbiased std over images, mean over landmarks
