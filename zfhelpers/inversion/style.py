"""Style transfer on the inversion loop (Xia et al. §3, docs/papers.md §3.2): PMCI, whose style term
matches each layer's **channel sums** Φ1, and Gatys et al.'s **Gram matrices** ΦΦᵀ, with the
authors' weights (α = 10 content at relu2_2, β = 1 style) and the same optimiser, so the two can be
compared side by side.

Style layers: the paper's text uses relu1_1 … relu5_1 (:data:`STYLE_LAYERS`); the authors' release
defaults to relu1_1 … relu4_1 (:data:`STYLE_LAYERS_RELEASE`). :func:`compare_styles` runs every
(painting, method) pair as one batch and records, per step, each image's relative error of its own
style statistic — Gatys' Gram error curve shows whether it converged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import checks
from ..models.zoo import adapt
from . import objectives
from .optimize import InversionResult, Recipe, capture_codes, digest, finish, get_recipe, optimize
from .param import uniform_init

METHODS = ("pmci", "gatys")
STATISTICS = {"pmci": "channel sums", "gatys": "Gram matrices"}
CONTENT_LAYER = "relu2_2"
#: The paper's style layers (its text includes relu5_1).
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: The authors' release's default (``vis_style.py``), which stops at relu4_1.
STYLE_LAYERS_RELEASE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
STYLE_LAYER_SETS = {"paper": STYLE_LAYERS, "release": STYLE_LAYERS_RELEASE}
#: The authors' style script: the same SGD as inversion, with weight decay 5e-3.
STYLE_RECIPE = get_recipe("authors").with_(name="authors-style", weight_decay=5e-3)


def style_recipe(recipe: str | Recipe, steps: int | None = None) -> Recipe:
    """The style-transfer form of a recipe: ``authors`` becomes their style script's SGD (weight
    decay 5e-3, :data:`STYLE_RECIPE`); ``modern`` drops the jitter — Gram matrices and channel sums
    are sums over positions, so a 1-px shift barely changes them, while it keeps the error curve
    from settling (Gatys et al. used no jitter either). ``steps`` overrides the step count."""
    rec = get_recipe(recipe)
    if rec.name == "authors":
        rec = STYLE_RECIPE
    elif rec.jitter:
        rec = rec.with_(name=f"{rec.name}-style", jitter=0)
    return rec.with_(max_steps=steps) if steps is not None else rec


def style_layers(which: str | Sequence[str]) -> tuple[str, ...]:
    """``"paper"``, ``"release"`` or an explicit list of layers."""
    if isinstance(which, str):
        return STYLE_LAYER_SETS[checks.choice(which, tuple(STYLE_LAYER_SETS), name="style layer set")]
    return tuple(which)


def statistic(method: str, code: torch.Tensor) -> torch.Tensor:
    """The style statistic a method matches: B×C channel sums (PMCI) or B×C×C Gram matrices (Gatys)."""
    checks.choice(method, METHODS, name="style method")
    return objectives.channel_sums(code) if method == "pmci" else objectives.gram(code)


def _loss(method: str, codes, p, stats, content_layer, layers, alpha, beta):
    """Per-image loss of one method (the authors' normalisations) and its own-statistic error."""
    if method == "pmci":
        c_loss = objectives.content_loss(codes[content_layer], p)
        s_loss = sum(objectives.channel_sum_style_loss(codes[n], stats[n]) for n in layers)
    else:
        c_loss = objectives.code_loss(codes[content_layer], p)
        s_loss = sum(objectives.gram_style_loss(codes[n], stats[n]) for n in layers)
    err = torch.stack([objectives.relative_error(statistic(method, codes[n]), stats[n]) for n in layers]).mean(0)
    return alpha * c_loss + beta * s_loss, err


def _run(
    model,
    content,
    style_codes,
    methods,
    *,
    alpha,
    beta,
    content_layer,
    layers,
    recipe,
    seed,
    progress,
    checkpoint,
    desc,
) -> InversionResult:
    """One batch: image b has content ``content``, style statistics of ``style_codes[b]`` and method
    ``methods[b]``; the history records each image's own-statistic relative error."""
    recipe = get_recipe(recipe)
    with torch.no_grad():
        p = capture_codes(model, content, [content_layer])[content_layer]
    stats = {m: {n: statistic(m, style_codes[n]).detach() for n in layers} for m in dict.fromkeys(methods)}
    rows = {m: torch.tensor([i for i, mm in enumerate(methods) if mm == m]) for m in dict.fromkeys(methods)}

    def loss_fn(codes, _x, idx):
        order, losses, errs = [], [], []
        for m, members in rows.items():
            keep = torch.isin(idx.cpu(), members).nonzero().squeeze(1).to(idx.device)
            if len(keep):
                sub = {n: c[keep] for n, c in codes.items()}
                target = {n: s[idx[keep]] for n, s in stats[m].items()}
                l_m, e_m = _loss(m, sub, p.expand(len(keep), -1, -1, -1), target, content_layer, layers, alpha, beta)
                order.append(keep)
                losses.append(l_m)
                errs.append(e_m)
        order = torch.cat(order)
        back = torch.empty_like(order)
        back[order] = torch.arange(len(order), device=order.device)
        return torch.cat(losses)[back], torch.cat(errs)[back]

    # one start image for the whole batch: every (painting, method) pair starts from the same pixels
    x0 = uniform_init((1, *content.shape[1:]), torch.Generator().manual_seed(seed), recipe.init_scale)
    x0 = x0.expand(len(methods), -1, -1, -1).contiguous()
    result = optimize(
        model,
        [content_layer, *layers],
        loss_fn,
        x0.to(content.device),
        recipe,
        seed=seed,
        progress=progress,
        checkpoint=checkpoint,
        desc=desc,
    )
    return finish(result, adapt(model).preprocess)


def style_transfer(
    model,
    content: torch.Tensor,
    style: torch.Tensor,
    method: str = "pmci",
    *,
    alpha: float = 10.0,
    beta: float = 1.0,
    content_layer: str = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    recipe: str | Recipe = STYLE_RECIPE,
    seed: int = 0,
    progress: bool = True,
    checkpoint=None,
) -> InversionResult:
    """An image with ``content``'s relu2_2 code (1×3×H×W) and ``style``'s statistics (1×3×h×w, any
    size); ``method``: ``"pmci"`` (channel sums) or ``"gatys"`` (Gram). As in the authors' script,
    the PMCI content term is divided by M and Gatys' is not. ``result.history`` holds the relative
    error of the method's own statistic per step (mean over style layers)."""
    checks.choice(method, METHODS, name="style method")
    lm = adapt(model)
    content, style = checks.images(content, name="content", single=True), checks.images(style, name="style")
    with torch.no_grad():
        s_codes = capture_codes(lm, style[:1], list(style_layers))
    return _run(
        lm,
        content,
        s_codes,
        [method],
        alpha=alpha,
        beta=beta,
        content_layer=content_layer,
        layers=list(style_layers),
        recipe=recipe,
        seed=seed,
        progress=progress,
        checkpoint=checkpoint,
        desc=f"{method} style transfer",
    )


@dataclass
class StyleComparison:
    """PMCI beside Gatys for each painting: results, and each statistic's relative error per layer."""

    paintings: list[str]
    methods: tuple[str, ...]
    layers: tuple[str, ...]
    display: dict[tuple[str, str], torch.Tensor]  # (painting, method) → H×W×3
    curves: dict[tuple[str, str], torch.Tensor]  # (painting, method) → own-statistic error per step
    errors: dict[tuple[str, str, str], torch.Tensor]  # (painting, method or "content", statistic) → per layer
    steps: int


def statistic_errors(
    model, images: torch.Tensor, style: torch.Tensor, layers: Sequence[str]
) -> dict[str, torch.Tensor]:
    """``{"pmci": B×L, "gatys": B×L}``: relative error ‖stat(x) − stat(style)‖ / ‖stat(style)‖ of the
    channel sums and of the Gram matrices of ``images`` against one ``style`` image, per layer."""
    with torch.no_grad():
        got = capture_codes(model, images, list(layers))
        ref = capture_codes(model, style, list(layers))
    return {
        m: torch.stack(
            [
                objectives.relative_error(statistic(m, got[n]), statistic(m, ref[n]).expand_as(statistic(m, got[n])))
                for n in layers
            ],
            1,
        )
        for m in METHODS
    }


def compare_styles(
    model,
    content: torch.Tensor,
    styles: dict[str, torch.Tensor],
    *,
    methods=("gatys", "pmci"),
    layers: str | Sequence[str] = "paper",
    alpha: float = 10.0,
    beta: float = 1.0,
    content_layer: str = CONTENT_LAYER,
    recipe: str | Recipe = STYLE_RECIPE,
    seed: int = 0,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
) -> StyleComparison:
    # long: PMCI and Gatys run on identical settings in one place
    """Every (painting, method) of ``styles`` (name → 1×3×h×w) on ``content`` (1×3×H×W) as one batch
    with the same start image, then both statistics' errors of every result and of the content
    photo itself (the starting gap) against each painting."""
    lm = adapt(model)
    content = checks.images(content, name="content", single=True)
    layers = style_layers(layers)
    for m in methods:
        checks.choice(m, METHODS, name="style method")
    names = list(styles)
    pairs = [(p, m) for p in names for m in methods]
    checkpoint = None
    if checkpoint_dir is not None:
        rec = get_recipe(recipe)
        data = digest(content, *(styles[p] for p in names))
        tag = f"{lm.name}_{'-'.join(names)}_{'-'.join(methods)}_{len(layers)}_{data}_{rec.tag}_{seed}"
        checkpoint = Path(checkpoint_dir) / f"styles_{tag}.pt"
    with torch.no_grad():
        per = {p: capture_codes(lm, checks.images(s, name=f"style {p}")[:1], list(layers)) for p, s in styles.items()}
    s_codes = {n: torch.cat([per[p][n] for p, _ in pairs]) for n in layers}
    res = _run(
        lm,
        content,
        s_codes,
        [m for _, m in pairs],
        alpha=alpha,
        beta=beta,
        content_layer=content_layer,
        layers=list(layers),
        recipe=recipe,
        seed=seed,
        progress=progress,
        checkpoint=checkpoint,
        desc="PMCI and Gatys",
    )
    hist = torch.stack(res.history)
    errors = {}
    for p in names:
        idx = [i for i, (pp, _) in enumerate(pairs) if pp == p]
        errs = statistic_errors(lm, torch.cat([res.images[idx], content]), styles[p][:1], layers)
        for j, who in enumerate([*(pairs[i][1] for i in idx), "content"]):
            for m in METHODS:
                errors[p, who, m] = errs[m][j]
    return StyleComparison(
        names,
        tuple(methods),
        layers,
        {pm: res.display[i] for i, pm in enumerate(pairs)},
        {pm: hist[:, i] for i, pm in enumerate(pairs)},
        errors,
        len(hist),
    )
