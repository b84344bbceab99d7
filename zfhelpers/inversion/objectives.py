"""Loss terms, each per batch element (shape B), so a batch of inversions is a sum of independent
problems (docs/papers.md §3.2, §5.1)."""

from __future__ import annotations

import torch


def code_loss(code: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """½‖Φ(x) − ψ‖²_F, unnormalised, as the authors' gradient Φ − ψ implies."""
    return 0.5 * (code - target).pow(2).flatten(1).sum(1)


def relative_error(code: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖Φ(x) − ψ‖ / ‖ψ‖ — the figure of merit reported for inversions."""
    return (code - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1).clamp_min(1e-12)


def normalized_code_loss(code: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖Φ(x) − ψ‖² / ‖ψ‖² (Mahendran & Vedaldi's data term): scale-free across layers."""
    return relative_error(code, target).pow(2)


def tv(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Σ ((x_{i,j+1} − x_{ij})² + (x_{i+1,j} − x_{ij})²)^{β/2} (Mahendran & Vedaldi, β = 2)."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (dx.pow(2) + dy.pow(2)).pow(beta / 2).flatten(1).sum(1)


def channel_sums(code: torch.Tensor) -> torch.Tensor:
    """Φ·1: B×C channel energies (the PMCI style statistic)."""
    return code.flatten(2).sum(2)


def gram(code: torch.Tensor) -> torch.Tensor:
    """ΦΦᵀ: B×C×C (Gatys et al.'s style statistic)."""
    f = code.flatten(2)
    return f @ f.transpose(1, 2)


def content_loss(code: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PMCI content term ½‖Φ − P‖² / M (M = H·W; gradient (Φ − P)/M as in the authors' code)."""
    return 0.5 * (code - target).pow(2).flatten(1).sum(1) / code[0, 0].numel()


def channel_sum_style_loss(code: torch.Tensor, target_sums: torch.Tensor) -> torch.Tensor:
    """PMCI style term ‖Φ1 − s‖² / (2CM) (gradient (Φ1 − s)1ᵀ/(CM))."""
    c, m = code.shape[1], code[0, 0].numel()
    return (channel_sums(code) - target_sums).pow(2).sum(1) / (2 * c * m)


def gram_style_loss(code: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Gatys style term ‖G − A‖² / (4C²M) (gradient (G − A)Φ/(C²M), as in the same script)."""
    c, m = code.shape[1], code[0, 0].numel()
    return (gram(code) - target_gram).pow(2).flatten(1).sum(1) / (4 * c * c * m)
