"""What a set of first-layer filters holds (notebook 01; ZF §4.1, Fig. 6 look at these filters).

Each RGB filter's energy (sum of squared weights) splits exactly into orthogonal parts:

* **flat** share — the energy of the filter's spatial mean per colour channel: a filter that
  only reacts to the average colour or brightness under it (a blob);
* **colour** share — the energy of the deviation from the mean over R, G, B: a filter that
  compares colours (zero for a filter that treats R, G and B alike, i.e. sees only brightness).

For random i.i.d. weights the expected flat share of a k×k filter is 1/k² and the colour share
2/3 (two of the three colour directions): the chance levels the claims compare with. Filters with
almost no weight (``norm < NEAR_ZERO × median norm``) are counted apart, since their shares are
noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..claims.record import Claim
from .stats import bootstrap_ci

#: A filter is "near zero" when its norm is below this fraction of the median filter norm.
NEAR_ZERO = 0.1


@dataclass
class FilterStructure:
    """Per filter of an O×3×k×k weight: norm, flat share, colour share, near-zero flag."""

    norm: np.ndarray
    flat: np.ndarray
    colour: np.ndarray
    near_zero: np.ndarray
    kernel: int

    @property
    def live(self) -> np.ndarray:
        return ~self.near_zero


def filter_structure(weight: torch.Tensor) -> FilterStructure:
    """Split each filter's energy into its flat and colour shares (see the module docstring)."""
    w = weight.detach().double().cpu()
    if w.dim() != 4 or w.shape[1] != 3:
        raise ValueError(f"expected O×3×k×k first-layer filters, got shape {tuple(w.shape)}")
    energy = w.square().flatten(1).sum(1).clamp_min(1e-300)
    k2 = w.shape[2] * w.shape[3]
    flat = (w.mean((2, 3)).square() * k2).sum(1) / energy
    colour = (w - w.mean(1, keepdim=True)).square().flatten(1).sum(1) / energy
    norm = energy.sqrt().numpy()
    return FilterStructure(norm, flat.numpy(), colour.numpy(), norm < NEAR_ZERO * np.median(norm), w.shape[2])


def _share_claim(values: np.ndarray, *, cid: str, statement: str, chance: float) -> Claim:
    ci = bootstrap_ci(values)
    side = "above" if ci[0] > chance else "below" if ci[1] < chance else "around"
    return Claim(
        id=cid, statement=statement, value=float(values.mean()), ci=ci, n=len(values), decimals=2,
        tolerance=1e-3, chance=chance, paper=None, verdict="not comparable",
        reason=f"no paper number for this model; the CI (bootstrap over filters) lies {side} chance",
    )  # fmt: skip


def stem_claims(structure: FilterStructure, *, model: str, layer: str) -> list[Claim]:
    """Three descriptive claims about first-layer filters: how many are near zero, and the mean flat
    and colour shares of the others against their chance levels."""
    s, live = structure, structure.live
    k = s.kernel
    return [
        Claim(id="01.first_layer.near_zero_filters",
              statement=(f"{model} {layer}: filters with almost no weight (norm under {NEAR_ZERO:g} × the median), "
                         f"out of {len(s.norm)}"),
              value=float(s.near_zero.sum()), n=len(s.norm), decimals=0, tolerance=0.0, unit="filters",
              paper=None, verdict="not comparable", reason="a count over fixed weights; no paper number"),
        _share_claim(s.flat[live], cid="01.first_layer.flat_share", chance=1 / k**2,
                     statement=(f"{model} {layer}: share of a filter's energy in its {k}×{k} mean (a blob of "
                                "colour or brightness), mean over the other filters; chance = random weights")),
        _share_claim(s.colour[live], cid="01.first_layer.colour_share", chance=2 / 3,
                     statement=(f"{model} {layer}: share of a filter's energy that compares colours (deviation "
                                "from the mean over R, G, B), mean over the other filters; chance = random weights")),
    ]  # fmt: skip
