"""Style transfer on the inversion loop (Xia et al. §3, papers.md §3.2): PMCI, whose style term
matches each layer's **channel sums** Φ1, and Gatys et al.'s **Gram matrices** ΦΦᵀ, with the
authors' weights (α = 10 content at relu2_2, β = 1 style at relu1_1 … relu4_1) and the same
optimiser, so the two can be compared side by side."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import checks
from ..models.zoo import adapt
from . import objectives
from .optimize import Recipe, capture_codes, finish, get_recipe, optimize
from .param import uniform_init

METHODS = ("pmci", "gatys")
CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: The authors' style script: the same SGD as inversion, with weight decay 5e-3.
STYLE_RECIPE = get_recipe("authors").with_(name="authors-style", weight_decay=5e-3)


def style_transfer(model, content: torch.Tensor, style: torch.Tensor, method: str = "pmci", *,
                   alpha: float = 10.0, beta: float = 1.0, content_layer: str = CONTENT_LAYER,
                   style_layers: Sequence[str] = STYLE_LAYERS, recipe: str | Recipe = STYLE_RECIPE,
                   seed: int = 0, progress: bool = True, checkpoint=None):  # fmt: skip
    """Images (B = content batch) with ``content``'s relu2_2 code and ``style``'s statistics.

    ``method``: ``"pmci"`` (channel sums) or ``"gatys"`` (Gram). As in the authors' script, the
    PMCI content term is divided by M and Gatys' is not. ``style`` is 1×3×h×w (any size)."""
    checks.choice(method, METHODS, name="style method")
    recipe = get_recipe(recipe)
    layers = [content_layer, *style_layers]
    with torch.no_grad():
        p = capture_codes(model, content, [content_layer])[content_layer]
        s_codes = capture_codes(model, style, list(style_layers))
        stats = {n: (objectives.channel_sums if method == "pmci" else objectives.gram)(s_codes[n]).detach()
                 for n in style_layers}  # fmt: skip

    def loss_fn(codes, _x, idx):
        if method == "pmci":
            c_loss = objectives.content_loss(codes[content_layer], p[idx])
            s_loss = sum(
                objectives.channel_sum_style_loss(codes[n], stats[n].expand(len(idx), -1)) for n in style_layers
            )
        else:
            c_loss = objectives.code_loss(codes[content_layer], p[idx])
            s_loss = sum(objectives.gram_style_loss(codes[n], stats[n].expand(len(idx), -1, -1)) for n in style_layers)
        return alpha * c_loss + beta * s_loss, alpha * c_loss + beta * s_loss

    x0 = uniform_init(content.shape, torch.Generator().manual_seed(seed), recipe.init_scale)
    result = optimize(model, layers, loss_fn, x0, recipe, seed=seed, progress=progress, checkpoint=checkpoint,
                      desc=f"{method} style transfer")  # fmt: skip
    return finish(result, adapt(model).preprocess)
