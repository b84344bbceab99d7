"""Exercises of notebook 11 (Feature Map Inversion, Xia et al. 2016): FMI's code modification ψ and
the identification count behind the specificity test, plus the reveal of a prediction question."""

from __future__ import annotations

import numpy as np
import torch

from .registry import CheckResult, exercise, solution


def _codes() -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    return torch.relu(torch.randn(3, 6, 5, 4, generator=g))  # rectified, like a relu layer's code


@exercise("11.fmi_psi", notebook="11_feature_map_inversion", title="FMI's ψ: all energy into filter k")
def check_fmi_psi(student) -> CheckResult:
    """``student(code, k)`` takes a B×C×H×W code and a filter index and returns FMI's target: at each
    position the sum over all channels moved into channel k, every other channel 0 (Xia et al. §2)."""
    from ..inversion.codes import feature_map

    code = _codes()
    for k in (0, 3, 5):
        got = student(code.clone(), k)
        ref = feature_map(code, k)
        if not isinstance(got, torch.Tensor) or got.shape != ref.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return CheckResult(False, f"return a tensor shaped like the code {tuple(ref.shape)}, got {shape}")
        if torch.allclose(got, ref, atol=1e-6):
            continue
        others = [c for c in range(code.shape[1]) if c != k]
        if got[:, others].abs().sum() > 0:
            hint = "the other channels must be 0 — FMI weakens every map but k"
        elif torch.allclose(got[:, k], code[:, k]):
            hint = "channel k keeps only its own map; FMI moves *all* channels' energy there (sum over c)"
        elif torch.allclose(got[:, k], code.mean(1)):
            hint = "that is the mean over channels; ψ keeps the total energy, so use the sum"
        else:
            hint = f"channel {k} should hold Σ_c Φ_c at every position"
        return CheckResult(False, f"not FMI's ψ for k = {k}: {hint}")
    return CheckResult(True, "your ψ equals zfhelpers.inversion.codes.feature_map (Xia et al.'s FMI target)")


@solution("11.fmi_psi", mistake=lambda code, k: code * (torch.arange(code.shape[1]) == k).view(1, -1, 1, 1))
def fmi_psi(code: torch.Tensor, k: int) -> torch.Tensor:
    out = torch.zeros_like(code)
    out[:, k] = code.sum(1)  # every channel's energy, position by position, now in filter k
    return out


def _distances() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    out = []
    for k in (4, 5, 6):
        d = rng.uniform(0.2, 1.0, (k, k))
        d[np.diag_indices(k)] -= rng.uniform(0.0, 0.5, k)  # the same filter is often, not always, nearest
        out.append(d)
    return out


@exercise("11.identify", notebook="11_feature_map_inversion", title="count the identified filters")
def check_identify(student) -> CheckResult:
    """``student(d)`` gets a K×K matrix of texture distances — row i: filter i's FMI on the first photo,
    column j: filter j's FMI on the second — and returns how many filters are identified: filter i
    on one photo whose nearest texture on the other photo is filter i's, counted in both directions
    (rows and columns), so 0…2K."""
    from ..analysis.texture import count_hits

    for d in _distances():
        got = student(d.copy())
        ref = int(count_hits(torch.from_numpy(d)[None], np.arange(len(d))[None])[0])
        if got == ref:
            continue
        rows = int((d.argmin(1) == np.arange(len(d))).sum())
        if got == rows:
            hint = "you counted one direction; also ask, for each filter on the second photo, its nearest on the first"
        elif got == 2 * rows:
            hint = "the two directions can differ: nearest along a row is not nearest along a column"
        else:
            hint = "for each row, is argmin at the diagonal? then the same for each column"
        return CheckResult(
            False, f"expected {ref} identifications for this {len(d)}×{len(d)} matrix, got {got}: {hint}"
        )
    return CheckResult(True, "your count matches the package's identification test (notebook 11's specificity claim)")


@solution("11.identify", mistake=lambda d: int((d.argmin(1) == np.arange(len(d))).sum()))
def identify(d: np.ndarray) -> int:
    k = np.arange(len(d))
    return int((d.argmin(1) == k).sum() + (d.argmin(0) == k).sum())


PREDICTIONS = ("more", "fewer", "about the same")


def reveal_colour_prediction(prediction: str | None, rise, beyond_plain) -> str:
    """Notebook 11's prediction question, revealed: ``prediction`` ("more", "fewer", "about the same":
    colours of the last layer's FMI textures vs the first's) against the measured claims
    ``11.colour_rise.fmi`` and ``11.colour_rise.beyond_plain``. Returns (and prints) the reveal."""
    if prediction is None:
        head = "no prediction recorded (set my_prediction first, then run this cell)"
    elif prediction not in PREDICTIONS:
        head = f"my_prediction must be one of {', '.join(map(repr, PREDICTIONS))}, got {prediction!r}"
    else:
        head = f"you predicted: {prediction}"
    lo, hi = rise.ci
    measured = "more" if lo > 0 else "fewer" if hi < 0 else "about the same (the 95 % interval includes 0)"
    lo2, hi2 = beyond_plain.ci
    control = (
        "more than the plain inversion's rise"
        if lo2 > 0
        else "less than the plain inversion's rise"
        if hi2 < 0
        else "not distinguishable from the plain inversion's rise"
    )
    text = (
        f"{head}\nmeasured: {measured} — difference {rise.formatted()}; the rise is {control} "
        f"({beyond_plain.formatted()})"
    )
    print(text)
    return text
