"""Statistics for the claims: bootstrap confidence intervals and permutation tests, seeded, so that
every number the companion states comes with its uncertainty (percentile bootstrap, Efron &
Tibshirani 1993 ch. 13; exact-in-the-limit permutation tests, Good 2005)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .. import checks


def _array(values, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    if a.size == 0:
        raise checks.InputError(f"{name} is empty: no statistic without data")
    if not np.isfinite(a).all():
        raise checks.InputError(f"{name} contains NaN or infinite values")
    return a


def bootstrap_ci(values: Sequence[float], stat: Callable[[np.ndarray], float] = np.mean, *, n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """Percentile bootstrap interval of ``stat`` over ``values`` (resampled with replacement)."""
    a = _array(values, "values")
    if a.size == 1:
        return float(a[0]), float(a[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    boots = np.array([stat(a[i]) for i in idx])
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_permutation_test(a: Sequence[float], b: Sequence[float], *, n_perm: int = 10000, seed: int = 0,
                            alternative: str = "two-sided") -> float:  # fmt: skip
    """p-value of mean(a − b) under random sign flips of the paired differences. ``alternative``:
    ``"two-sided"``, ``"less"`` (a < b) or ``"greater"`` (a > b). The observed assignment counts
    as one permutation, so p ≥ 1 / (n_perm + 1)."""
    x, y = _array(a, "a"), _array(b, "b")
    if x.size != y.size:
        raise checks.InputError(f"paired samples differ in length: {x.size} vs {y.size}")
    checks.choice(alternative, ("two-sided", "less", "greater"), name="alternative")
    d = x - y
    observed = d.mean()
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n_perm, d.size))
    null = (signs * d).mean(1)
    return _p_value(null, observed, alternative, n_perm)


def permutation_test(a: Sequence[float], b: Sequence[float], *, n_perm: int = 10000, seed: int = 0,
                     alternative: str = "two-sided") -> float:  # fmt: skip
    """p-value of mean(a) − mean(b) for two independent samples (labels shuffled)."""
    x, y = _array(a, "a"), _array(b, "b")
    checks.choice(alternative, ("two-sided", "less", "greater"), name="alternative")
    pooled = np.concatenate([x, y])
    observed = x.mean() - y.mean()
    rng = np.random.default_rng(seed)
    null = np.empty(n_perm)
    for i in range(n_perm):
        perm = rng.permutation(pooled)
        null[i] = perm[: x.size].mean() - perm[x.size :].mean()
    return _p_value(null, observed, alternative, n_perm)


def _p_value(null: np.ndarray, observed: float, alternative: str, n_perm: int) -> float:
    tol = 1e-12 * max(1.0, abs(observed))
    if alternative == "less":
        hits = (null <= observed + tol).sum()
    elif alternative == "greater":
        hits = (null >= observed - tol).sum()
    else:
        hits = (np.abs(null) >= abs(observed) - tol).sum()
    return float((hits + 1) / (n_perm + 1))


def binomial_ci(successes: int, trials: int, *, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (better than the normal approximation at the edges)."""
    from scipy.stats import norm

    trials = checks.positive_int(trials, name="trials")
    if not 0 <= successes <= trials:
        raise checks.InputError(f"successes must be in 0..{trials}, got {successes}")
    z = norm.ppf((1 + level) / 2)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == trials else min(1.0, centre + half)
    return float(lo), float(hi)
