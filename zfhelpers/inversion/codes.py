"""Code modifications ψ of Xia et al. (arXiv 1608.04170, §2; papers.md §3.2).

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


def random_modification(code: torch.Tensor, generator: torch.Generator | None = None, *, mu: float = 3.0,
                        sigma: float = 1e3, eps: float = 1e-12) -> torch.Tensor:  # fmt: skip
    """RMCI: ψ(Φ)_{c,m} = S · r_c · Φ_{c,m} / s_c with r = v / Σv, v_c ~ N(mu, sigma²) per channel
    (the authors' code draws N(3, 1000²), so r is signed and can be large).

    Each channel keeps its spatial pattern and the total S is kept. Dead channels (s_c = 0) stay 0
    (the authors' code divides 0 by 0 there); ``eps`` guards the division."""
    b, c = code.shape[:2]
    v = torch.randn(b, c, generator=generator, dtype=torch.float64).mul_(sigma).add_(mu)
    live = code.flatten(2).sum(2) > eps  # B×C
    v = v.to(code.device) * live  # the rates of dead channels would be thrown away anyway
    r = v / v.sum(1, keepdim=True)
    s = code.flatten(2).sum(2).double()
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


def modify(code: torch.Tensor, mode: str, *, channels=0, draws: int = 1, generator: torch.Generator | None = None,
           style: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """ψ by name on one image's code (1×C×H×W) → the batch of targets: ``none`` (one),
    ``feature_map`` (one per entry of ``channels``), ``random`` (``draws`` of them) and
    ``purposeful`` (needs the style image's code)."""
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
        return random_modification(code.expand(draws, -1, -1, -1).contiguous(), generator)
    if style is None:
        raise checks.InputError("mode 'purposeful' needs the style image (style=...)")
    return purposeful(code, style)
