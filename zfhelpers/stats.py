"""Small, seeded statistics for the measured claims: a percentile bootstrap confidence interval and
a paired (sign-flip) permutation test. Both take plain arrays and return plain numbers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_ci(values, stat: Callable = np.mean, n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple:  # fmt: skip
    """Percentile bootstrap interval (low, high) of ``stat`` over ``values`` resampled with
    replacement along the first axis. ``stat`` may return an array (then low and high are arrays
    of the same shape): pass image indices as ``values`` to resample images for a statistic that
    is computed from whole images (e.g. a standard deviation over images)."""
    values = np.asarray(values)
    if len(values) < 2:
        raise ValueError(f"bootstrap needs at least 2 values, got {len(values)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    draws = np.stack([np.asarray(stat(values[rng.integers(0, len(values), len(values))]), dtype=float)
                      for _ in range(n_boot)])  # fmt: skip
    alpha = (1 - level) / 2
    low, high = np.nanquantile(draws, [alpha, 1 - alpha], axis=0)
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)


def paired_permutation_test(a, b, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value for "mean(a − b) = 0" on paired values: the signs of the differences are
    flipped at random ``n_perm`` times (exactly enumerated when 2^n ≤ n_perm); the p-value counts
    the observed statistic itself, so it is never 0."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be 1-D and of the same length, got {a.shape} and {b.shape}")
    d = a - b
    d = d[~np.isnan(d)]
    if len(d) == 0:
        raise ValueError("no pair without NaN")
    observed = abs(d.mean())
    if 2 ** len(d) <= n_perm:
        signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
        return float(np.mean(np.abs((signs * d).mean(1)) >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n_perm, len(d)))
    return float((1 + np.sum(np.abs((signs * d).mean(1)) >= observed - 1e-12)) / (n_perm + 1))
