"""Feature generalisation (ZF §5.2–5.3, Tables 4–5, Fig. 9 and Table 7) at CPU scale.

ZF keep layers 1–7 of their ImageNet net fixed and train only a new softmax on Caltech-101/256 with
few images per class, against the same net trained from scratch (Tables 4–5, Fig. 9); and they
probe each layer with a linear SVM or softmax (Table 7). Here the network is the ZF twin trained
on Fashion-MNIST, the new task handwritten digits (:mod:`zfhelpers.data.digits`):

* **classifier only** — the twin's conv stack frozen, a linear softmax layer on its top layer
  (``pool5``) fitted to convergence on *n* examples per class;
* **from scratch** — the *same* architecture (conv stack + linear softmax layer), every weight
  initialised at random and trained end to end on the same examples (Adam, a fixed number of
  small mini-batches: what a CPU run affords, far less than ZF's from-scratch training);
* **layer probes** — multinomial logistic regression on each conv layer's rectified maps,
  average-pooled to a fixed grid, on one training size (Table 7).

A frozen conv stack in eval mode is a fixed function, so training the softmax layer on cached
features is the same computation as training it on top of the stack (tests/test_transfer.py checks
it); features are computed once per run (and cached on disk under ``build/cache``)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..claims.record import Claim
from ..data import digits, fashion
from ..fingerprint import fingerprint, load_checkpoint, save_checkpoint, tensor_digest
from ..models.capture import capture_detached
from ..models.training import init_weights_
from ..models.twins import make_twin
from ..paths import build_dir
from ..progress import tqdm
from .stats import paired_permutation_test

CHANCE = 0.1
FEATURES_VERSION = 1  # bump when the pooled features change meaning


# ----------------------------------------------------------------------------- features
def pooled_features(lm, images: torch.Tensor, layers: Sequence[str], *, grid: int = 3, batch_size: int = 200,
                    progress: bool = True) -> dict[str, np.ndarray]:  # fmt: skip
    """``{layer: N×(C·grid²) float32}``: each layer's maps on the uint8 28×28 ``images``,
    average-pooled to ``grid``×``grid`` cells (a fixed-length vector whatever the map size)."""
    checks.positive_int(grid, name="grid", maximum=6)
    out: dict[str, list] = {layer: [] for layer in layers}
    pool = lambda t: F.adaptive_avg_pool2d(t, grid).flatten(1)  # noqa: E731 - reduce inside the hook
    for i in tqdm(range(0, len(images), batch_size), desc="features", disable=not progress, leave=False):
        x = fashion.to_model_input(images[i : i + batch_size], size=lm.preprocess.crop)
        for layer, value in capture_detached(lm, x, list(layers), reduce=pool).items():
            out[layer].append(value)
    return {layer: torch.cat(v).numpy().astype(np.float32) for layer, v in out.items()}


def cached_features(lm, images: torch.Tensor, layers: Sequence[str], *, grid: int = 3,
                    progress: bool = True) -> dict[str, np.ndarray]:  # fmt: skip
    """:func:`pooled_features`, read from ``build/cache/transfer/`` when the same weights, images,
    layers and grid produced it before (fingerprinted; anything else is recomputed)."""
    fp = fingerprint(weights=lm.provenance.get("sha256", lm.name), images=tensor_digest(images),
                     layers=list(layers), grid=int(grid), version=FEATURES_VERSION)  # fmt: skip
    path = build_dir() / "cache" / "transfer" / f"{lm.name}_{fp['images'][:12]}_{grid}.pt"
    saved = load_checkpoint(path, fp, what="transfer features")
    if saved is not None:
        return {layer: saved["features"][layer].numpy() for layer in layers}
    feats = pooled_features(lm, images, layers, grid=grid, progress=progress)
    save_checkpoint(path, {"features": {k: torch.from_numpy(v) for k, v in feats.items()}}, fp)
    return feats


# ----------------------------------------------------------------------------- networks
def linear_head(in_features: int, n_classes: int = 10) -> nn.Module:
    """The new softmax layer (the softmax itself is in the loss)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, n_classes))


def _top_width(features: nn.Module, size: int) -> int:
    with torch.no_grad():
        return int(features(torch.zeros(1, 3, size, size)).numel())


def frozen_network(lm, n_classes: int = 10) -> nn.Module:
    """A copy of ``lm``'s conv stack, frozen (no gradients, eval mode), with a new linear head."""
    stack = copy.deepcopy(lm.model).eval().requires_grad_(False)
    return FrozenThenHead(stack, linear_head(_top_width(stack, lm.preprocess.crop), n_classes))


class FrozenThenHead(nn.Module):
    """``head(stack(x))`` where ``stack`` stays in eval mode and frozen whatever ``train()`` says."""

    def __init__(self, stack: nn.Module, head: nn.Module):
        super().__init__()
        self.stack, self.head = stack, head

    def train(self, mode: bool = True):
        super().train(mode)
        self.stack.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = self.stack(x)
        return self.head(f)


def scratch_network(arch: str = "zf", *, seed: int, size: int = 112, n_classes: int = 10) -> nn.Module:
    """The twin's conv stack + a linear head, every weight drawn afresh (the twins' initialisation)."""
    torch.manual_seed(seed)
    features = make_twin(arch).features
    net = nn.Sequential(features, linear_head(_top_width(features, size), n_classes))
    init_weights_(net, "zf_conv1")
    return net


def train_classifier(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, steps: int, batch_size: int,
                     lr: float = 1e-3, seed: int = 0) -> nn.Module:  # fmt: skip
    """Adam on the parameters that require gradients, ``steps`` mini-batches drawn by passes over
    seeded permutations of the training set (a batch never exceeds the set)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise checks.InputError("the model has no trainable parameters")
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    batch = min(int(batch_size), len(inputs))
    order, pos = torch.randperm(len(inputs), generator=gen), 0
    model.train()
    for _ in range(int(steps)):
        if pos + batch > len(order):
            order, pos = torch.randperm(len(inputs), generator=gen), 0
        idx = order[pos : pos + batch]
        pos += batch
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(inputs[idx]), labels[idx]).backward()
        opt.step()
    return model.eval()


def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 250) -> float:
    model.eval()
    with torch.inference_mode():
        hits = sum(int((model(inputs[i : i + batch_size]).argmax(1) == labels[i : i + batch_size]).sum())
                   for i in range(0, len(inputs), batch_size))  # fmt: skip
    return hits / len(inputs)


# ----------------------------------------------------------------------------- experiments
@dataclass
class TransferCurve:
    """Test accuracy per seed (rows) and examples per class (columns) of both arms."""

    sizes: list[int]
    seeds: list[int]
    transfer: np.ndarray
    scratch: np.ndarray
    n_test: int


def transfer_curve(top: np.ndarray, images: torch.Tensor, labels: torch.Tensor, pool: np.ndarray, test: np.ndarray,
                   *, sizes: Sequence[int], seeds: Sequence[int], steps: int, batch_size: int, lr: float = 1e-3,
                   weight_decay: float = 1e-3, arch: str = "zf", size: int = 112,
                   progress: bool = True) -> TransferCurve:  # fmt: skip
    """Classifier only (a softmax layer fitted to convergence on the cached top-layer features
    ``top``) vs from scratch (the conv stack + softmax layer, Adam for ``steps`` mini-batches), for
    every examples-per-class count in ``sizes`` and every seed; each (seed, size) draws its own
    training set (:func:`zfhelpers.data.digits.sample_per_class`) shared by both arms."""
    y = labels
    x_test = fashion.to_model_input(images[test], size=size)
    shape = (len(seeds), len(sizes))
    transfer, scratch = np.zeros(shape), np.zeros(shape)
    runs = [(i, j) for i in range(len(seeds)) for j in range(len(sizes))]
    with one_thread():
        for i, j in tqdm(runs, desc="transfer vs scratch", disable=not progress, leave=False):
            seed, n = seeds[i], sizes[j]
            idx = digits.sample_per_class(labels, n, seed=seed, pool=pool)
            transfer[i, j] = probe_accuracy(top[idx], y[idx], top[test], y[test], weight_decay=weight_decay)
            net = scratch_network(arch, seed=seed, size=size)
            train_classifier(net, fashion.to_model_input(images[idx], size=size), y[idx], steps=steps,
                             batch_size=batch_size, lr=lr, seed=seed)  # fmt: skip
            scratch[i, j] = accuracy(net, x_test, y[test])
    return TransferCurve(list(sizes), list(seeds), transfer, scratch, len(test))


def fit_softmax(x_train: np.ndarray, y_train: np.ndarray, *, weight_decay: float = 1e-3, n_classes: int = 10,
                max_iter: int = 200):  # fmt: skip
    """Multinomial logistic regression (a linear softmax layer) on standardised features, fitted to
    convergence: mean cross-entropy + ``weight_decay``/2·‖W‖² (convex; L-BFGS from zero weights, so
    the fit is deterministic). Returns ``predict(x) -> labels``."""
    x = torch.as_tensor(np.asarray(x_train), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y_train), dtype=torch.long)
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(z.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ w + b, y) + 0.5 * weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()

    def predict(x_new: np.ndarray) -> np.ndarray:
        zn = (torch.as_tensor(np.asarray(x_new), dtype=torch.float64) - mean) / std
        return (zn @ w + b).argmax(1).numpy()

    return predict


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                   weight_decay: float = 1e-3) -> float:  # fmt: skip
    """Test accuracy of :func:`fit_softmax` (the linear probe)."""
    predict = fit_softmax(x_train, y_train, weight_decay=weight_decay)
    return float((predict(x_test) == np.asarray(y_test)).mean())


@dataclass
class LayerProbe:
    """Probe accuracy per seed (rows) and layer (columns)."""

    layers: list[str]
    seeds: list[int]
    accuracy: np.ndarray
    n_per_class: int
    n_test: int


def probe_layers(features: dict[str, np.ndarray], labels: torch.Tensor, pool: np.ndarray, test: np.ndarray, *,
                 n_per_class: int, seeds: Sequence[int], weight_decay: float = 1e-3) -> LayerProbe:  # fmt: skip
    """Table 7 analogue: one logistic-regression probe per layer and seed; every layer of a seed
    sees the same training images (paired across layers)."""
    y = np.asarray(labels)
    layers = list(features)
    acc = np.zeros((len(seeds), len(layers)))
    with one_thread():
        for i, seed in enumerate(seeds):
            idx = digits.sample_per_class(labels, n_per_class, seed=seed, pool=pool)
            for j, layer in enumerate(layers):
                f = features[layer]
                acc[i, j] = probe_accuracy(f[idx], y[idx], f[test], y[test], weight_decay=weight_decay)
    return LayerProbe(layers, list(seeds), acc, int(n_per_class), len(test))


# ----------------------------------------------------------------------------- statistics and claims
def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): Student-t interval over independent repeats (seeds)."""
    from scipy import stats

    a = np.asarray(values, float)
    m = float(a.mean())
    if a.size < 2:
        return m, m, m
    half = float(stats.t.ppf((1 + level) / 2, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size))
    return m, m - half, m + half


@contextmanager
def one_thread():
    """Run small tensors on one thread: two threads spin against each other on a shared machine
    (a 200-sample probe took 25× longer with two threads while other jobs ran)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _direction_verdict(lo: float, hi: float, mean: float) -> str:
    if lo > 0:
        return "reproduced"
    if mean > 0:
        return "partly reproduced"
    return "not reproduced"


def transfer_claims(curve: TransferCurve, *, small: int = 10) -> list[Claim]:
    """The gap classifier-only − from-scratch at each size (t interval over seeds), and pooled over
    the sizes ≤ ``small`` (paired sign-flip test over the independent (seed, size) draws)."""
    claims = []
    diff = curve.transfer - curve.scratch
    for j, n in enumerate(curve.sizes):
        m, lo, hi = mean_ci(diff[:, j])
        claims.append(Claim(
            id=f"14.transfer_minus_scratch.n{n}", n=len(curve.seeds), decimals=3, tolerance=0.06,
            statement=f"Test accuracy of a softmax layer on the frozen twin's top features minus the same "
                      f"architecture trained from scratch, {n} digit(s) per class (mean over seeds)",
            value=m, ci=(lo, hi), test="Student t over seeds", paper="zf2014.table4.pretrained_vs_scratch",
            verdict=_direction_verdict(lo, hi, m),
            reason=f"direction only (ZF: +61 points at 15/class on Caltech-101; other data, scale and scratch "
                   f"budget here); 95 % CI {'above' if lo > 0 else 'below' if hi < 0 else 'includes'} 0",
        ))  # fmt: skip
    cols = [j for j, n in enumerate(curve.sizes) if n <= small]
    if cols:
        a, b = curve.transfer[:, cols].ravel(), curve.scratch[:, cols].ravel()
        m, lo, hi = mean_ci(a - b)
        p = paired_permutation_test(a, b, alternative="greater")
        verdict = "reproduced" if p < 0.05 and m > 0 else ("partly reproduced" if m > 0 else "not reproduced")
        claims.append(Claim(
            id="14.transfer_beats_scratch.small_n", n=a.size, decimals=3, tolerance=0.05,
            statement=f"With at most {small} digits per class, the frozen twin + softmax beats the same network "
                      f"trained from scratch (mean gap over every seed and size)",
            value=m, ci=(lo, hi), p_value=p, test="paired sign-flip permutation, one-sided",
            paper="zf2014.table4.pretrained_vs_scratch", verdict=verdict,
            reason=f"direction compared, not size (ZF's gap is 61 points on Caltech-101 with ImageNet features); "
                   f"p {'<' if p < 0.05 else '≥'} 0.05 over {a.size} paired draws",
        ))  # fmt: skip
    return claims


def probe_claims(probe: LayerProbe, *, paper_layers: Sequence[int | None]) -> list[Claim]:
    """Per-layer probe accuracy (values not comparable with Caltech) and the depth trend: the top
    layer minus the best lower layer, paired over seeds, and the number of rising steps."""
    claims = []
    for j, layer in enumerate(probe.layers):
        m, lo, hi = mean_ci(probe.accuracy[:, j])
        k = paper_layers[j]
        claims.append(Claim(
            id=f"14.probe.{layer}", n=len(probe.seeds), decimals=3, tolerance=0.03, chance=CHANCE,
            statement=f"Linear probe on {layer} of the Fashion-MNIST twin, {probe.n_per_class} digits per class",
            value=m, ci=(lo, hi), test="Student t over seeds",
            paper=f"zf2014.table7.svm_layer{k}.caltech101_30" if k else None, verdict="not comparable",
            reason="other data set and network (digits on a Fashion-MNIST twin vs Caltech-101 on ImageNet "
                   "features); the shape is judged in 14.probe_depth_trend",
        ))  # fmt: skip
    means = probe.accuracy.mean(0)
    rises = int((np.diff(means) > 0).sum())
    best_lower = int(np.argmax(means[:-1]))
    m, lo, hi = mean_ci(probe.accuracy[:, -1] - probe.accuracy[:, best_lower])
    monotone = rises == len(means) - 1
    verdict = "reproduced" if monotone and lo > 0 else ("partly reproduced" if m > 0 or rises > 0 else "not reproduced")
    if m < 0 and hi < 0:
        verdict = "not reproduced"
    claims.append(Claim(
        id="14.probe_depth_trend", n=len(probe.seeds), decimals=3, tolerance=0.03,
        statement=f"Probe accuracy of the top probed layer ({probe.layers[-1]}) minus the best lower layer "
                  f"({probe.layers[best_lower]}); positive if discriminability keeps rising with depth",
        value=m, ci=(lo, hi), test="Student t over seeds (paired)", paper="zf2014.table7.deeper_more_discriminative",
        verdict=verdict,
        reason=f"shape compared: mean accuracy rises at {rises} of {len(means) - 1} steps; ZF's rises at every "
               f"step on Caltech (their features were trained on the same kind of images)",
    ))  # fmt: skip
    return claims


def scratch_arch(variant: str) -> str:
    """The architecture a committed twin was built with (the from-scratch arm rebuilds it)."""
    from ..models.trained import VARIANTS, check_variant

    return VARIANTS[check_variant(variant)].arch
