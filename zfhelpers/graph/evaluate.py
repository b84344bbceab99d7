"""Inputs and evaluation for the explanatory graph (Zhang et al. 2018, docs/papers.md §4.1, §4.3):
normalised feature maps (and those of the mirrored images), the raw-filter baseline, location
instability of nodes vs filters beside its floor (a unit exactly on a landmark) and a unit that
never moves, few-shot part localisation, and their comparisons with bootstrap intervals and paired
permutation tests. Every study returns plain ``{name: {"value", "ci_low", "ci_high", "n", "note"}}``."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..analysis.stats import bootstrap_ci, paired_permutation_test
from ..models.capture import eval_mode
from ..models.zoo import adapt
from .model import unit_to_pixel

#: Registry ids (``zfhelpers/claims/paper_numbers.yaml``) of the published numbers set beside ours.
#: Zhang et al.'s own location-instability and localisation tables (AAAI 2018) could not be read
#: offline, so their values are null there. Known: the same metric for the raw top-conv filters of
#: an ordinary VGG-16, from Zhang, Wu & Zhu, "Interpretable CNNs" (CVPR 2018) — reference
#: magnitudes on other data, not the explanatory graph's numbers.
PAPER_INSTABILITY = (
    "zhang2018aaai.location_instability.cub200.graph_nodes",
    "zhang2018aaai.location_instability.cub200.raw_filters",
    "zhang2018aaai.location_instability.voc_part.graph_nodes",
    "zhang2018aaai.location_instability.voc_part.raw_filters",
    "zhang2018aaai.location_instability.ilsvrc_animal_part.graph_nodes",
    "zhang2018aaai.location_instability.ilsvrc_animal_part.raw_filters",
    "zhang2018icnn.table3.ilsvrc_animal_part.vgg16.avg",
    "zhang2018icnn.table4.voc_part.vgg16.avg",
    "zhang2018icnn.table5.cub200.vgg16",
)
PAPER_LOCALISATION = (
    "zhang2018aaai.part_localization.cub200",
    "zhang2018aaai.part_localization.voc_part",
    "zhang2018aaai.part_localization.ilsvrc_animal_part",
)


def paper_numbers(ids=PAPER_INSTABILITY) -> dict[str, dict]:
    """``{registry id: {"value" (None where not retrieved), "label", "source"}}`` for ``ids``."""
    from ..claims.paper import entry, papers

    out = {}
    for key in ids:
        e = entry(key)
        short = papers().get(e["paper"], {}).get("short", e["paper"])
        dataset = (e.get("dataset") or "?").split(" (")[0]
        out[key] = {"value": e.get("value"), "label": f"{e['quantity']}, {dataset}", "dataset": dataset,
                    "source": f"{short}, {e.get('where', '')}; {e.get('source', '')}"}  # fmt: skip
    return out


class _Reached(Exception):
    pass


def pre_activations(model, layers: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The inputs of the named ReLU layers — the conv outputs before rectification, which the
    authors normalise — from a forward pass that stops at the deepest of them."""
    lm = adapt(model)
    modules = {name: lm.module(name) for name in layers}
    bad = [name for name, m in modules.items() if not isinstance(m, nn.ReLU)]
    if bad:
        raise ValueError(f"layers {bad} are not ReLU modules; the graph reads rectified conv outputs (e.g. relu4_2)")
    store: dict[str, torch.Tensor] = {}

    def hook_for(name):
        def hook(_module, inputs):
            store[name] = inputs[0].detach().clone()  # before an in-place ReLU rewrites it
            if len(store) == len(modules):
                raise _Reached

        return hook

    handles = [m.register_forward_pre_hook(hook_for(name)) for name, m in modules.items()]
    try:
        lm.model(x)
    except _Reached:
        pass
    finally:
        for h in handles:
            h.remove()
    return {name: store[name] for name in layers}


def unit_std(model, layers: list[str], negatives: torch.Tensor, prepare, batch_size: int = 100) -> dict:
    """The release's normaliser (docs/papers.md §4.1): per unit (c, y, x), the population standard
    deviation √(E f² − (E f)²) of the *pre-ReLU* output f over ``negatives`` (images without the
    object; the paper uses 1000). Accumulated in float64; floored at 1e-6 × the layer's mean std
    so that a constant unit cannot divide by zero."""
    s1, s2, n = {}, {}, 0
    with eval_mode(adapt(model).model), torch.no_grad():
        for i in range(0, len(negatives), batch_size):
            f = pre_activations(model, layers, prepare(negatives[i : i + batch_size]))
            for name in layers:
                x = f[name].double()
                s1[name] = s1.get(name, 0) + x.sum(0)
                s2[name] = s2.get(name, 0) + x.pow(2).sum(0)
            n += len(negatives[i : i + batch_size])
    out = {}
    for name in layers:
        std = (s2[name] / n - (s1[name] / n) ** 2).clamp_min(0).sqrt()
        out[name] = std.clamp_min(1e-6 * float(std.mean())).float()
    return out


def normalised_maps(model, layers: list[str], images: torch.Tensor, negatives: torch.Tensor | None = None,
                    prepare=None, batch_size: int = 100, *, std: dict | None = None) -> dict:  # fmt: skip
    """F = max(f, 0) / std_unit per layer (§4.1), ``std`` from :func:`unit_std` (computed from
    ``negatives`` when not given)."""
    if prepare is None:
        raise ValueError("prepare (uint8 images → model input) is required")
    if std is None:
        if negatives is None:
            raise ValueError("pass negatives (object-free images) or a precomputed std")
        std = unit_std(model, layers, negatives, prepare, batch_size)
    outs = {name: [] for name in layers}
    with eval_mode(adapt(model).model), torch.no_grad():
        for i in range(0, len(images), batch_size):
            f = pre_activations(model, layers, prepare(images[i : i + batch_size]))
            for name in layers:
                outs[name].append(f[name].clamp_min(0) / std[name])
    return {name: torch.cat(v) for name, v in outs.items()}


def graph_inputs(model, layers: list[str], train: torch.Tensor, test: torch.Tensor, negatives: torch.Tensor,
                 prepare, *, mirror: bool = True, batch_size: int = 100) -> dict:  # fmt: skip
    """Everything the graph reads, for uint8 N×3×S×S ``train`` and ``test`` images: ``train`` and
    ``test`` maps, their ``*_mirror`` (the maps of the mirrored images, same normaliser; None
    unless ``mirror``), the per-unit ``std`` and the layers' ``strides`` (pixels per map unit)."""
    std = unit_std(model, layers, negatives, prepare, batch_size)

    def maps(x):
        return normalised_maps(model, layers, x, prepare=prepare, batch_size=batch_size, std=std)

    out = {"std": std, "train": maps(train), "test": maps(test)}
    out["train_mirror"] = maps(train.flip(-1)) if mirror else None
    out["test_mirror"] = maps(test.flip(-1)) if mirror else None
    out["strides"] = {name: train.shape[-1] / out["train"][name].shape[-1] for name in layers}
    return out


def raw_filter_positions(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline's "node" per filter: the argmax unit (I×C×2, map units) and its value (I×C)."""
    w = maps.shape[-1]
    best = maps.flatten(2).max(2)
    pos = torch.stack([best.indices // w, best.indices % w], -1).float()
    return pos, best.values


def unit_pixels(positions: torch.Tensor, stride: float) -> torch.Tensor:
    """Map units (…×2, y x) → image pixels (…×2, **x y**, like the landmarks)."""
    return unit_to_pixel(positions, stride).flip(-1)


def graph_units(inferred: dict, strides: dict[str, float], score: str = "ranking") -> dict[str, tuple]:
    """Per layer, (pixel positions I×U×2 in each image's own frame, ``score`` I×U) of every node."""
    return {name: (unit_pixels(inf.positions.flatten(1, 2), strides[name]), getattr(inf, score).flatten(1))
            for name, inf in inferred.items()}  # fmt: skip


def raw_units(maps: dict[str, torch.Tensor], strides: dict[str, float]) -> dict[str, tuple]:
    """Per layer, (pixel positions I×C×2, max activation I×C) of every filter's arg-max unit."""
    out = {}
    for name, m in maps.items():
        pos, val = raw_filter_positions(m)
        out[name] = (unit_pixels(pos, strides[name]), val)
    return out


def rank_units(scores: torch.Tensor, top_images: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Units ranked by the mean of their top-``top_images`` scores (best first), and each unit's
    top images (k×U) — the paper's ranking of nodes and of filters (docs/papers.md §4.3)."""
    top = scores.topk(min(top_images, scores.shape[0]), dim=0)
    return top.values.mean(0).argsort(descending=True), top.indices


def instability_per_landmark(pos_px: torch.Tensor, scores: torch.Tensor, landmarks: torch.Tensor, diagonal: float,
                             top_images: int = 20, top_units: int | None = None):  # fmt: skip
    """D_{u,k}: per evaluated unit u (the best ``top_units``, :func:`rank_units`) and landmark k,
    the unbiased std over u's top images of ‖position − landmark‖ / diagonal; NaN where fewer
    than two of those images have the landmark. ``pos_px`` I×U×2 and ``landmarks`` I×K×2 are
    x y pixels. Returns (units, D u×K)."""
    order, top = rank_units(scores, top_images)
    units = order[:top_units] if top_units is not None else order
    img = top[:, units]  # k×u
    d = (pos_px[img, units[None]][:, :, None] - landmarks[img]).norm(dim=-1) / diagonal  # k×u×K
    return units, nanstd(d)


def nanstd(d: torch.Tensor) -> torch.Tensor:
    """Unbiased std over the first axis ignoring NaN (MATLAB's ``var``); NaN with < 2 values."""
    ok = ~torch.isnan(d)
    n = ok.sum(0)
    mean = torch.where(ok, d, 0).sum(0) / n.clamp_min(1)
    var = torch.where(ok, d - mean, 0).pow(2).sum(0) / (n - 1).clamp_min(1)
    return torch.where(n >= 2, var.sqrt(), float("nan"))


def _mean_over_landmarks(d: torch.Tensor) -> torch.Tensor:
    return d.nanmean(-1)


def instability_table(positions: torch.Tensor, scores: torch.Tensor, stride: float, landmarks: torch.Tensor,
                      diagonal: float, top_images: int = 20, top_units: int | None = None) -> torch.Tensor:  # fmt: skip
    """Location instability of each evaluated unit (node or filter), mean over landmarks:
    ``positions`` I×U×2 map units (y x), ``scores`` I×U; ``landmarks`` I×K×2 (x y pixels, NaN if
    absent). Units ranked by the mean of their top-``top_images`` scores; the best ``top_units``."""
    _, d = instability_per_landmark(unit_pixels(positions, stride), scores, landmarks, diagonal, top_images,
                                    top_units)  # fmt: skip
    return _mean_over_landmarks(d)


def landmark_floor(landmarks: torch.Tensor, diagonal: float) -> torch.Tensor:
    """The metric for an oracle unit sitting exactly on landmark j, over all images (K values, mean
    over the landmarks k of the std of ‖p_j − p_k‖ / diagonal): what the object's own deformation,
    scale and pose leave for a perfect part detector."""
    d = (landmarks[:, :, None] - landmarks[:, None]).norm(dim=-1) / diagonal  # I×K×K
    return nanstd(d).nanmean(1)


def fixed_point_instability(landmarks: torch.Tensor, point, diagonal: float) -> torch.Tensor:
    """Per landmark (K values), the metric of a unit that never moves from ``point`` (x y pixels)."""
    pos = torch.as_tensor(point, dtype=landmarks.dtype)
    return nanstd((landmarks - pos).norm(dim=-1) / diagonal)


def _bootstrap_images(n: int, stat, *, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95 % interval of a vector-valued ``stat(image indices)`` over ``n`` images
    resampled with replacement: each draw recomputes the whole statistic (top images and unit
    ranking included), which :func:`zfhelpers.analysis.stats.bootstrap_ci` (a scalar statistic of
    resampled values) cannot express."""
    rng = np.random.default_rng(seed)
    draws = np.stack([stat(rng.integers(0, n, n)) for _ in range(n_boot)])
    low, high = np.nanquantile(draws, [0.025, 0.975], axis=0)
    return low, high


def _ci(values: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Bootstrap 95 % interval of the mean over the non-NaN ``values`` (images without a landmark)."""
    values = np.asarray(values, dtype=float)
    return bootstrap_ci(values[~np.isnan(values)], np.mean, n_boot=n_boot, seed=seed)


def _paired_p(a: np.ndarray, b: np.ndarray, n_perm: int = 10000) -> float:
    """Two-sided paired permutation p-value over the pairs where neither value is NaN; with few
    pairs (2^n ≤ ``n_perm``) every sign pattern is enumerated, so the p-value is exact (six
    layer × landmark cells give 64 patterns: no test can go below 2/64 there)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = ~(np.isnan(a) | np.isnan(b))
    d = a[ok] - b[ok]
    if 2 ** len(d) > n_perm:
        return paired_permutation_test(a[ok], b[ok], n_perm=n_perm)
    signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
    return float(np.mean(np.abs((signs * d).mean(1)) >= abs(d.mean()) - 1e-12 * max(1.0, abs(d.mean()))))


def _entry(value, ci=None, n=None, note="", p=None) -> dict:
    out = {"value": None if value is None else float(value), "ci_low": None if ci is None else float(ci[0]),
           "ci_high": None if ci is None else float(ci[1]), "n": n, "note": note}  # fmt: skip
    if p is not None:
        out["p"] = float(p)
    return out


def _study_cells(methods: dict, landmarks, diagonal, top_images, top_units, idx) -> dict:
    """Per method: the per-layer values (mean over units of their mean over landmarks, L) and the
    per (layer, landmark) cells (mean over units, L×K), on the images ``idx``."""
    out = {}
    for m, layers in methods.items():
        per_layer, cells = [], []
        for pos, sc in layers.values():
            _, d = instability_per_landmark(pos[idx], sc[idx], landmarks[idx], diagonal, top_images,
                                            min(top_units, sc.shape[1]))  # fmt: skip
            per_layer.append(_mean_over_landmarks(d).nanmean())
            cells.append(d.nanmean(0))
        out[m] = (torch.stack(per_layer), torch.stack(cells))
    return out


def instability_study(methods: dict[str, dict[str, tuple]], landmarks: torch.Tensor, diagonal: float, centre,
                      *, top_images: int = 20, top_units: int = 50, n_boot: int = 1000,
                      seed: int = 0) -> dict:  # fmt: skip
    """Location instability (docs/papers.md §4.3) of each method — ``{"nodes": graph_units(...),
    "raw_filters": raw_units(...)}`` — beside the landmark floor and a unit fixed at ``centre``
    (x y pixels), with 95 % bootstrap intervals over the test images (every statistic recomputed,
    top-image and unit selection included) and, for each difference, a paired permutation test
    over the (layer, landmark) cells. The paper averages over units, then over layers."""
    n_img = landmarks.shape[0]
    names = list(methods)
    layers = list(methods[names[0]])
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    pairs += [(a, ref) for a in names for ref in ("fixed_centre", "landmark_floor")]

    def stat(idx):
        idx = torch.as_tensor(idx)
        cells = _study_cells(methods, landmarks, diagonal, top_images, top_units, idx)
        value = {m: cells[m][0].mean() for m in names}
        value["landmark_floor"] = landmark_floor(landmarks[idx], diagonal).mean()
        value["fixed_centre"] = fixed_point_instability(landmarks[idx], centre, diagonal).mean()
        vec = [value[m] for m in names] + [v for m in names for v in cells[m][0]]
        vec += [value["landmark_floor"], value["fixed_centre"]] + [value[a] - value[b] for a, b in pairs]
        return np.array([float(v) for v in vec])

    full = stat(np.arange(n_img))
    low, high = _bootstrap_images(n_img, stat, n_boot=n_boot, seed=seed)
    cells = _study_cells(methods, landmarks, diagonal, top_images, top_units, torch.arange(n_img))
    floor = landmark_floor(landmarks, diagonal)
    centre_k = fixed_point_instability(landmarks, centre, diagonal)
    cell_values = {m: cells[m][1].flatten().numpy() for m in names}
    cell_values["fixed_centre"] = centre_k.expand(len(layers), -1).flatten().numpy()
    n_units = {m: sum(min(top_units, sc.shape[1]) for _, sc in methods[m].values()) for m in names}
    out, i = {}, 0
    for m in names:
        out[m] = _entry(full[i], (low[i], high[i]), n_units[m], f"mean over the best {top_units} units per layer "
                        f"(top-{top_images} images each), then over {len(layers)} layers")  # fmt: skip
        i += 1
    for m in names:
        for name in layers:
            out[f"{m}@{name}"] = _entry(full[i], (low[i], high[i]), min(top_units, methods[m][name][1].shape[1]))
            i += 1
    spread = f"{float(floor.min()):.3f}–{float(floor.max()):.3f}"
    out["landmark_floor"] = _entry(full[i], (low[i], high[i]), len(floor),
                                   f"a unit exactly on one landmark (range over landmarks {spread})")  # fmt: skip
    out["fixed_centre"] = _entry(full[i + 1], (low[i + 1], high[i + 1]), len(centre_k),
                                 "a unit that never moves (image centre)")  # fmt: skip
    i += 2
    for a, b in pairs:
        p = _paired_p(cell_values[a], cell_values[b]) if b in cell_values else None
        note = "bootstrap CI over images" + (f"; p: paired permutation over {len(cell_values[a])} layer×landmark "
                                             "cells" if p is not None else "")  # fmt: skip
        out[f"{a}-{b}"] = _entry(full[i], (low[i], high[i]), n_img, note, p)
        if p is not None:
            out[f"{a}-{b}"]["n_pairs"] = len(cell_values[a])
        i += 1
    return out


def concat_units(units: dict[str, tuple]) -> tuple[torch.Tensor, torch.Tensor]:
    """All layers' units side by side: (I×ΣU×2 pixels, I×ΣU scores)."""
    return torch.cat([u[0] for u in units.values()], 1), torch.cat([u[1] for u in units.values()], 1)


def few_shot_localisation(train_px: torch.Tensor, train_marks: torch.Tensor, test_px: torch.Tensor,
                          test_scores: torch.Tensor, shots: int = 3, use: int = 5) -> torch.Tensor:  # fmt: skip
    """Multi-shot part localisation (§4.3): from ``shots`` annotated images, pick the ``use`` units
    whose positions plus their mean offset to the landmark predict it best on those shots; on test
    images, predict the landmark as the score-weighted mean of their predictions. Positions
    ``*_px`` I×U×2 and landmarks I×K×2 are x y pixels. Returns the test predictions I×K×2."""
    tp, marks = train_px[:shots], train_marks[:shots]
    guesses = []
    for k in range(marks.shape[1]):
        offset = (marks[:, k, None] - tp).nanmean(0)  # U×2: each unit's mean offset to the landmark
        residual = (tp + offset[None] - marks[:, k, None]).norm(dim=-1).nanmean(0)  # U
        chosen = residual.nan_to_num(float("inf")).argsort()[:use]
        pred = test_px[:, chosen] + offset[chosen][None]  # I×use×2
        w = test_scores[:, chosen].clamp_min(1e-12)
        guesses.append((pred * w[..., None]).sum(1) / w.sum(1, keepdim=True))
    return torch.stack(guesses, 1)


def localisation_error(guess: torch.Tensor, marks: torch.Tensor, diagonal: float) -> torch.Tensor:
    """‖guess − landmark‖ / diagonal per image and landmark (NaN where the landmark is absent)."""
    return (guess - marks).norm(dim=-1) / diagonal


def localisation_study(train: dict[str, tuple], test: dict[str, tuple], marks_train: torch.Tensor,
                       marks_test: torch.Tensor, diagonal: float, names: list[str], *, shots: int = 3, use: int = 5,
                       n_boot: int = 1000, seed: int = 0) -> dict:  # fmt: skip
    """``shots``-shot localisation error (/ diagonal) of each method (``train`` and ``test``: method →
    (pixels, scores) of all its units, :func:`concat_units`), per landmark and on average, with
    bootstrap intervals over test images and paired permutation tests (same images) between methods."""
    per_image, out = {}, {}
    for m in train:
        err = localisation_error(few_shot_localisation(train[m][0], marks_train, test[m][0], test[m][1], shots, use),
                                 marks_test, diagonal)  # fmt: skip
        per_image[m] = err.nanmean(1).numpy()
        out[m] = _entry(np.nanmean(per_image[m]), _ci(per_image[m], n_boot, seed),
                        len(per_image[m]), f"{shots}-shot, {use} units per landmark, mean over landmarks")  # fmt: skip
        for k, name in enumerate(names):
            e = err[:, k].numpy()
            out[f"{m}@{name}"] = _entry(np.nanmean(e), _ci(e, n_boot, seed), int((~np.isnan(e)).sum()))
    methods = list(train)
    for i, a in enumerate(methods):
        for b in methods[i + 1 :]:
            d = per_image[a] - per_image[b]
            p = _paired_p(per_image[a], per_image[b])
            out[f"{a}-{b}"] = _entry(np.nanmean(d), _ci(d, n_boot, seed), len(d),
                                     "paired over test images", p)  # fmt: skip
    return out


def diverse_units(pos_px: torch.Tensor, scores: torch.Tensor, landmarks: torch.Tensor, nodes_per_filter: int,
                  n: int, top_images: int = 20, pool: int | None = None) -> list[tuple[int, int]]:  # fmt: skip
    """Up to ``n`` of the best-ranked units (:func:`rank_units`) for a figure of "best nodes": at
    most one per filter, taken in turn for each landmark — the one a unit sits nearest to on average
    over its top images — so that the figure shows different filters and parts (``pool``: only the
    best ``pool`` units; default all). Returns (unit, landmark index) pairs, best first per landmark."""
    order, top = rank_units(scores, top_images)
    pool_units = order[:pool] if pool else order
    img = top[:, pool_units]
    dist = (pos_px[img, pool_units[None]][:, :, None] - landmarks[img]).norm(dim=-1).nanmean(0)  # u×K
    part = dist.nan_to_num(float("inf")).argmin(1).tolist()
    queues = {k: [u for u, p in zip(pool_units.tolist(), part) if p == k] for k in range(landmarks.shape[1])}
    chosen, used = [], set()
    while len(chosen) < n and any(queues.values()):
        for k, queue in queues.items():
            while queue and queue[0] // nodes_per_filter in used:
                queue.pop(0)
            if queue and len(chosen) < n:
                u = queue.pop(0)
                chosen.append((u, k))
                used.add(u // nodes_per_filter)
    return chosen


def planted_recovery(positions: dict[str, torch.Tensor], strides: dict[str, float], data: dict,
                     tol: float = 1.5) -> dict:  # fmt: skip
    """On :func:`~zfhelpers.graph.model.planted_maps` data: for every planted (filter, part)
    pair, the best node's hit rate — the fraction of images where it lies within ``tol`` × stride
    of the part (``positions`` I×C×N×2 map units, each image's own frame). Returns the mean and the
    worst pair's rate and the number of pairs."""
    rates = []
    for name, pos in positions.items():
        pix = unit_to_pixel(pos, strides[name])
        for c, parts in enumerate(data["filters"][name]):
            for p in parts:
                err = (pix[:, c] - data["truth"][:, p, None]).norm(dim=-1)  # I×N
                rates.append(float((err < tol * strides[name]).float().mean(0).max()))
    return {"recovery": sum(rates) / len(rates), "worst": min(rates), "n": len(rates)}


def format_results(results: dict, title: str = "") -> str:
    """A fixed-width table of a study's ``{name: {value, ci_low, ci_high, n, note[, p]}}``."""

    def num(v, fmt="{:.3f}"):
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)

    lines = [title] if title else []
    width = max([26, *map(len, results)])
    lines.append(f"{'':{width}} {'value':>7} {'95% CI':>17} {'n':>5} {'p':>7}  note")
    for name, r in results.items():
        ci = f"[{num(r.get('ci_low'))}, {num(r.get('ci_high'))}]" if r.get("ci_low") is not None else ""
        p = num(r.get("p"), "{:.2g}") if "p" in r else ""
        n = num(r.get("n"), "{}")
        lines.append(f"{name:{width}} {num(r['value']):>7} {ci:>17} {n:>5} {p:>7}  {r.get('note', '')}")
    return "\n".join(lines)


def paper_table(paper: dict) -> dict:
    """:func:`paper_numbers` as results rows (value or None, the quantity and dataset as note)."""
    return {key: _entry(e["value"], note=e["label"]) for key, e in paper.items()}


def verdict(study: dict, a: str = "nodes", b: str = "raw_filters") -> str:
    """One line per comparison, worded by the interval: lower (more stable) only if the whole 95 %
    interval of the difference is below zero."""
    lines = []
    for ref in (b, "fixed_centre"):
        d = study[f"{a}-{ref}"]
        if d["ci_high"] < 0:
            word = f"{a} more stable than {ref}"
        elif d["ci_low"] > 0:
            word = f"{a} less stable than {ref}"
        else:
            word = f"no difference resolved between {a} and {ref}"
        p = f", p = {d['p']:.2g}" if "p" in d else ""
        lines.append(f"{word}: {d['value']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]{p}")
    floor, centre = study["landmark_floor"]["value"], study["fixed_centre"]["value"]
    share = (centre - study[a]["value"]) / (centre - floor) if centre > floor else float("nan")
    lines.append(f"{a} close {share:.0%} of the gap from a unit that never moves ({centre:.3f}) to the landmark "
                 f"floor ({floor:.3f})")  # fmt: skip
    return "\n".join(lines)


def critter_data(n_images: int, n_test: int, n_negatives: int, *, facing: str = "random", seed: int = 0) -> dict:
    """Procedural critters with landmarks (:mod:`zfhelpers.data.critters`) for the parts net: uint8
    ``train``/``test``/``negatives``, landmarks, names, ``prepare`` and whether each critter faces
    left (``facing_left``: its head left of its tail)."""
    from ..data import critters
    from ..models import trained

    x_train, _, marks_train = critters.make(n_images, positive_rate=1.0, seed=100 + seed, facing=facing)
    x_test, _, marks_test = critters.make(n_test, positive_rate=1.0, seed=200 + seed, facing=facing)
    x_neg, _, _ = critters.make(n_negatives, positive_rate=0.0, seed=300 + seed)
    return {"train": x_train, "test": x_test, "negatives": x_neg, "marks_train": marks_train,
            "marks_test": marks_test, "names": list(critters.LANDMARKS), "prepare": trained.critter_input,
            "facing_left": marks_test[:, 0, 0] < marks_test[:, 1, 0],
            "label": f"procedural critters facing {'either way' if facing == 'random' else facing}: "
                     f"{n_images} to learn, {n_test} to test"}  # fmt: skip


def folder_data(annotations, net, side: int = 224) -> dict:
    """A landmark folder (:func:`load_landmark_folder`) split in halves to learn and to test, in
    the same form as :func:`critter_data`; without negatives, the committed sample photos."""
    import zfhelpers

    folder = load_landmark_folder(annotations, side=side)
    half = len(folder["images"]) // 2
    negatives = folder["negatives"]
    if negatives is None:
        negatives = torch.stack([(torch.from_numpy(zfhelpers.prepare(n, net.preprocess).display).permute(2, 0, 1) * 255)
                                 .to(torch.uint8) for n in zfhelpers.sample_images()])  # fmt: skip

    def prepare(b):
        return net.preprocess.normalize(b.float() / 255)

    return {"train": folder["images"][:half], "test": folder["images"][half:], "negatives": negatives,
            "marks_train": folder["landmarks"][:half], "marks_test": folder["landmarks"][half:],
            "names": folder["names"], "prepare": prepare, "facing_left": None,
            "label": f"{annotations}: {half} to learn, {len(folder['images']) - half} to test"}  # fmt: skip


def run_study(net, layers: list[str], data: dict, densities: dict[str, float], *, flip: bool = True,
              faithful: bool = False, iterations: int = 20, top_images: int = 20, top_units: int = 50,
              n_boot: int = 1000, seed: int = 0, checkpoint_root=None, progress: bool = True) -> dict:  # fmt: skip
    """Learn the graph on ``data["train"]`` (with left/right handling if ``flip``), infer on the test
    images and measure: location instability of nodes vs raw filters vs the landmark floor and a
    unit fixed at the image centre, and 3-shot localisation. Returns the inputs, graph, inference
    and the results dicts ``instability``, ``localisation`` and ``orientation`` (how often the
    chosen orientation matches the facing, when known). With ``checkpoint_root``, finished layers
    are checkpointed in a sub-folder named after the model, data and settings (and resumed)."""
    import re
    from pathlib import Path

    from . import model as eg

    checkpoint_dir = None
    if checkpoint_root is not None:
        slug = re.sub(r"[^a-z0-9]+", "_", data["label"].lower()).strip("_")
        checkpoint_dir = Path(checkpoint_root) / (f"{getattr(net, 'name', 'net')}_{slug}_{'flip' if flip else 'plain'}"
                                                  f"_{iterations}_{seed}{'_faithful' if faithful else ''}")  # fmt: skip

    inputs = graph_inputs(net, layers, data["train"], data["test"], data["negatives"], data["prepare"], mirror=flip)
    strides = inputs["strides"]
    graph = eg.learn_graph(inputs["train"], strides, densities, mirror=inputs["train_mirror"], faithful=faithful,
                           iterations=iterations, seed=seed, checkpoint_dir=checkpoint_dir,
                           progress=progress)  # fmt: skip
    inferred = eg.infer(graph, inputs["test"], inputs["test_mirror"])
    size = data["train"].shape[-1]
    diagonal = size * math.sqrt(2)
    methods = {"nodes": graph_units(inferred, strides), "raw_filters": raw_units(inputs["test"], strides)}
    instability = instability_study(methods, data["marks_test"], diagonal, (size / 2, size / 2), top_images=top_images,
                                    top_units=top_units, n_boot=n_boot, seed=seed)  # fmt: skip
    train_units = {"nodes": concat_units(graph_units(graph, strides, "scores")),
                   "raw_filters": concat_units(raw_units(inputs["train"], strides))}  # fmt: skip
    test_units = {"nodes": concat_units(graph_units(inferred, strides, "scores")),
                  "raw_filters": concat_units(raw_units(inputs["test"], strides))}  # fmt: skip
    localisation = localisation_study(train_units, test_units, data["marks_train"], data["marks_test"], diagonal,
                                      data["names"], n_boot=n_boot, seed=seed)  # fmt: skip
    orientation = {}
    flipped = inferred[layers[-1]].flipped
    if flipped is not None and data.get("facing_left") is not None:
        agree = float((flipped == data["facing_left"]).float().mean())
        orientation["orientation_agreement"] = _entry(
            max(agree, 1 - agree),
            n=len(flipped),
            note=(
                "share of test images read in the canonical orientation (mirrored exactly when facing the other way)"
            ),
        )
    return {"inputs": inputs, "graph": graph, "inferred": inferred, "instability": instability,
            "localisation": localisation, "orientation": orientation, "label": data["label"]}  # fmt: skip


def describe_graph(graph: dict) -> str:
    """A small table of a learned graph: map size, filters, nodes per filter and nodes per layer."""
    lines = [f"{'layer':9} {'map':>6} {'filters':>8} {'nodes/filter':>13} {'nodes':>7}"]
    total = 0
    for name, layer in graph.items():
        c, n = layer.centers.shape[:2]
        total += c * n
        lines.append(f"{name:9} {layer.size[0]:>3}x{layer.size[1]:<2} {c:>8} {n:>13} {c * n:>7}")
    return "\n".join([*lines, f"total nodes: {total}"])


def claims(studies: dict[str, dict]) -> dict:
    """The notebook's measured claims as one flat ``{name: entry}`` dict (regime-prefixed keys)."""
    out = {}
    for regime, st in studies.items():
        for part in ("instability", "localisation", "orientation"):
            for name, entry in st[part].items():
                if "@" not in name:
                    out[f"{regime}/{part}/{name}"] = entry
    return out


def load_landmark_folder(annotations, side: int = 224) -> dict:
    """Your own object images with landmarks (the paper's setting: one category, objects cropped to
    their boxes), described by a JSON file::

        {"images": ["bird1.jpg", …],                  # paths relative to the JSON file
         "landmarks": {"head": [[x, y], null, …],     # one per image, in its own pixels; null = absent
                       "tail": […]},
         "negatives": ["bg1.jpg", …]}                 # optional: images without the object

    Images are resized (not cropped) to ``side``×``side`` and landmarks with them. Returns uint8
    ``images`` N×3×side×side, ``landmarks`` N×K×2 (x, y; NaN where absent), ``names`` (landmark
    names) and ``negatives`` (uint8 or None)."""
    import json
    from pathlib import Path

    import numpy as np

    from ..data.images import load_image

    annotations = Path(annotations)
    meta = json.loads(annotations.read_text())
    names = list(meta["landmarks"])

    def load(paths):
        out, scales = [], []
        for p in paths:
            img = load_image(annotations.parent / p)
            scales.append((side / img.width, side / img.height))
            out.append(torch.from_numpy(np.array(img.resize((side, side)))).permute(2, 0, 1).contiguous())
        return torch.stack(out), scales

    images, scales = load(meta["images"])
    marks = torch.full((len(images), len(names), 2), float("nan"))
    for k, name in enumerate(names):
        points = meta["landmarks"][name]
        if len(points) != len(images):
            raise ValueError(f"landmark {name!r}: {len(points)} entries for {len(images)} images")
        for i, (pt, (sx, sy)) in enumerate(zip(points, scales)):
            if pt is not None:
                marks[i, k] = torch.tensor([pt[0] * sx, pt[1] * sy])
    negatives = load(meta["negatives"])[0] if meta.get("negatives") else None
    return {"images": images, "landmarks": marks, "names": names, "negatives": negatives}
