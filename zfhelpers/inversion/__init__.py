"""Code inversion (Mahendran & Vedaldi 2015) and Feature Map Inversion (Xia et al. 2016,
arXiv 1608.04170), split as in Lucent:

* :mod:`.param` — what is optimised (an image batch in the model's input space);
* :mod:`.codes` — the code modifications ψ of Xia et al. (feature map, random, purposeful);
* :mod:`.objectives` — code, content, style (channel-sum and Gram) and TV terms;
* :mod:`.transforms` — random jitter applied before each forward pass;
* :mod:`.optimize` — the loop: two recipes (the authors' SGD and a modern Adam + TV + jitter),
  batched with per-image stopping, tqdm progress and resumable checkpoints;
* :mod:`.style` — PMCI and Gatys style transfer on the same loop.

One-line use: ``invert_code(model, image, layer="relu3_2", mode="feature_map", channels=[0, 1])``; see
:func:`.optimize.invert` for any target codes."""

from .codes import MODES, feature_map, modify, purposeful, random_modification
from .optimize import RECIPES, InversionResult, Recipe, capture_codes, get_recipe, invert, invert_code, lr_at
from .style import style_transfer

__all__ = [
    "MODES",
    "RECIPES",
    "InversionResult",
    "Recipe",
    "feature_map",
    "capture_codes",
    "get_recipe",
    "invert",
    "invert_code",
    "lr_at",
    "modify",
    "purposeful",
    "random_modification",
    "style_transfer",
]
