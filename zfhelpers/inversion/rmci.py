"""Random modification of code, inverted (RMCI; Xia et al. 2016 §3 and their RMCI figure,
docs/papers.md §3.2), in the two readings side by side, one batch per layer:

* ``paper`` — the paper's text: energy reallocated at random while every neuron keeps its on/off
  state (positive rates; :func:`.codes.random_modification`);
* ``release`` — the authors' code: rates from N(3, 1000²), signed and near-singular, so about half
  the channels get negative targets that no ReLU output can reach."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import checks
from ..models.zoo import adapt
from .codes import RMCI_VARIANTS, random_modification
from .optimize import Recipe, capture_codes, digest, get_recipe, invert

VARIANT_LABELS = {"paper": "paper's text (on/off kept)", "release": "authors' release, N(3, 1000²)"}


@dataclass
class RMCILayer:
    """One layer's RMCI images: V variants × D seeded draws."""

    layer: str
    variants: list[str]
    display: torch.Tensor  # V×D×H×W×3 in [0, 1]
    error: torch.Tensor  # V×D relative code error ‖Φ(x*) − ψ‖ / ‖ψ‖
    share: torch.Tensor  # V×D ⟨Φ(x*), ψ⟩ / ‖ψ‖²: the part of the target the image reproduces
    negative: torch.Tensor  # V×D share of live channels with a negative (unreachable) target


def rmci_layer(
    model,
    inputs: torch.Tensor,
    *,
    layer: str,
    draws: int = 2,
    variants: Sequence[str] = RMCI_VARIANTS,
    recipe: str | Recipe = "modern",
    seed: int = 0,
    progress: bool = True,
    checkpoint: Path | None = None,
) -> RMCILayer:
    """``draws`` random modifications of one image's code (1×3×H×W) per variant, inverted as one batch;
    draw d of every variant uses the same seeded generator state."""
    lm, x = adapt(model), checks.images(inputs, single=True)
    draws = checks.positive_int(draws, name="draws")
    for v in variants:
        checks.choice(v, RMCI_VARIANTS, name="RMCI variant")
    code = capture_codes(lm, x, [layer])[layer]
    many = code.expand(draws, -1, -1, -1).contiguous()
    targets = torch.cat([random_modification(many, torch.Generator().manual_seed(seed), variant=v) for v in variants])
    res = invert(
        lm,
        {layer: targets},
        get_recipe(recipe),
        image_shape=tuple(x.shape[-2:]),
        seed=seed,
        progress=progress,
        checkpoint=checkpoint,
        desc=f"RMCI {layer}",
    )
    got = capture_codes(lm, res.images, [layer])[layer]
    share = (got * targets).flatten(1).sum(1) / targets.flatten(1).pow(2).sum(1).clamp_min(1e-30)
    live = code.flatten(2).sum(2) > 0  # 1×C
    negative = (targets.flatten(2).amin(2) < 0)[:, live[0]].double().mean(1)
    shape = (len(variants), draws)
    return RMCILayer(
        layer,
        list(variants),
        res.display.view(*shape, *res.display.shape[1:]),
        res.error.view(shape),
        share.view(shape),
        negative.view(shape),
    )


def rmci_study(
    model,
    inputs: torch.Tensor,
    *,
    layers: Sequence[str],
    draws: int = 2,
    variants: Sequence[str] = RMCI_VARIANTS,
    recipe: str | Recipe = "modern",
    seed: int = 0,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
    name: str = "image",
) -> dict[str, RMCILayer]:
    """:func:`rmci_layer` for each layer (resumable per layer with ``checkpoint_dir``)."""
    lm, rec = adapt(model), get_recipe(recipe)
    out = {}
    for layer in layers:
        ck = None
        if checkpoint_dir is not None:
            tag = f"{lm.name}_{name}_{layer}_{'-'.join(variants)}_{draws}_{digest(inputs)}_{rec.tag}_{seed}"
            ck = Path(checkpoint_dir) / f"rmci_{tag}.pt"
        out[layer] = rmci_layer(
            lm,
            inputs,
            layer=layer,
            draws=draws,
            variants=variants,
            recipe=rec,
            seed=seed,
            progress=progress,
            checkpoint=ck,
        )
    return out
