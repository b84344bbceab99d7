"""Code modifications ψ of Xia et al. (arXiv 1608.04170, §2; docs/papers.md §3.2).

A code Φ is B×C×H×W (a batch of one layer's feature maps). Notation: channel energy
s_c = Σ_m Φ_{c,m}, total S = Σ_c s_c."""

from __future__ import annotations

import torch

MODES = ("none", "feature_map", "random", "purposeful")


def feature_map(code: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
    """FMI: all channel energy at each position moves into filter ``k``; other channels are 0.

    ``k`` may be a tensor of one filter per batch element (invert many filters as one batch)."""
    out = torch.zeros_like(code)
    k = torch.as_tensor(k, device=code.device).expand(code.shape[0])
    if ((k < 0) | (k >= code.shape[1])).any():
        raise ValueError(f"filter index out of range; valid: 0..{code.shape[1] - 1}")
    out[torch.arange(code.shape[0], device=code.device), k] = code.sum(1)
    return out


#: RMCI as the paper's text describes it ("paper": every neuron keeps its on/off state) and as the
#: authors' release computes it ("release": signed rates from N(3, 1000²)); docs/papers.md §3.2.
RMCI_VARIANTS = ("paper", "release")


def random_modification(
    code: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    variant: str = "paper",
    mu: float = 3.0,
    sigma: float = 1e3,
    eps: float = 1e-12,
) -> torch.Tensor:
    """RMCI: ψ(Φ)_{c,m} = S · r_c · Φ_{c,m} / s_c with random proportions r summing to 1 over the
    live channels (s_c > 0). Each channel keeps its spatial pattern and the total S is kept.

    * ``variant="paper"`` — r uniform on the simplex (r = v / Σv, v_c ~ Exp(1), i.e. Dirichlet(1)):
      every rate is positive, so every neuron keeps its on/off state (Φ > 0 stays > 0, 0 stays 0),
      as the paper's text asks. The text's distribution could not be checked; Dirichlet(1) is ours.
    * ``variant="release"`` — v_c ~ N(mu, sigma²) as in the authors' code (N(3, 1000²)): r is signed
      and near-singular when Σv ≈ 0, so about half the channels get negative targets that a ReLU
      output cannot reach.

    Dead channels (s_c = 0) stay 0 (the authors' code divides 0 by 0 there); ``eps`` guards it."""
    from .. import checks

    checks.choice(variant, RMCI_VARIANTS, name="RMCI variant")
    b, c = code.shape[:2]
    if variant == "paper":
        v = torch.empty(b, c, dtype=torch.float64).exponential_(1.0, generator=generator)
    else:
        v = torch.randn(b, c, generator=generator, dtype=torch.float64).mul_(sigma).add_(mu)
    s = code.flatten(2).sum(2).double()
    live = s > eps  # B×C
    v = v.to(code.device) * live  # the rates of dead channels would be thrown away anyway
    r = v / v.sum(1, keepdim=True)
    total = s.sum(1, keepdim=True)
    scale = torch.where(live, total * r / s.clamp_min(eps), torch.zeros_like(r))
    return code * scale.to(code.dtype)[..., None, None]


def purposeful(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The authors' non-optimised "purposeful" mode (their docstring: "not mentioned in paper"):
    content channels sorted by energy take the places of the style channels of the same energy
    rank, then each channel's mean is replaced by that style channel's mean.

    Spatial sizes may differ (only channel statistics of ``style`` are used)."""
    if content.shape[:2] != style.shape[:2]:
        raise ValueError(
            f"content and style codes need the same B×C, got {tuple(content.shape)} and {tuple(style.shape)}"
        )
    out = torch.empty_like(content)
    c_rank = content.flatten(2).sum(2).argsort(1)
    s_rank = style.flatten(2).sum(2).argsort(1)
    s_mean = style.flatten(2).mean(2)
    for b in range(content.shape[0]):
        moved = content[b, c_rank[b]]
        target = s_rank[b]
        out[b, target] = moved - moved.mean((1, 2), keepdim=True) + s_mean[b, target][:, None, None]
    return out


def modify(
    code: torch.Tensor,
    mode: str,
    *,
    channels=0,
    draws: int = 1,
    generator: torch.Generator | None = None,
    style: torch.Tensor | None = None,
    variant: str = "paper",
) -> torch.Tensor:
    """ψ by name on one image's code (1×C×H×W) → the batch of targets: ``none`` (one),
    ``feature_map`` (one per entry of ``channels``), ``random`` (``draws`` of them, RMCI
    ``variant`` "paper" or "release") and ``purposeful`` (needs the style image's code)."""
    from .. import checks
    from ..methods.targets import resolve_channels

    checks.choice(mode, MODES, name="code modification")
    if mode == "none":
        return code.clone()
    if mode == "feature_map":
        ks = resolve_channels(code, channels)
        return feature_map(code.expand(len(ks), -1, -1, -1), torch.tensor(ks))
    if mode == "random":
        draws = checks.positive_int(draws, name="draws")
        return random_modification(code.expand(draws, -1, -1, -1).contiguous(), generator, variant=variant)
    if style is None:
        raise checks.InputError("mode 'purposeful' needs the style image (style=...)")
    return purposeful(code, style)
