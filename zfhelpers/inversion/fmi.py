"""Feature Map Inversion of the same filters on several content images (Xia et al. 2016 §2 and
their FMI figure; docs/papers.md §3.2–3.3), with the plain inversion of each layer as control.

One batch per layer holds, for every content image, its plain inversion and one FMI per filter,
so all images of a layer share the optimiser's settings and steps.

**Collapse.** FMI asks filter k to carry the whole layer's energy — far more than k's own share
on the photo — so an inversion that engaged k makes k fire *more* strongly than the photo does.
When k stays below its peak on the photo, the optimiser has not reached k's texture: with k silent
(Φ_k(x) ≤ 0 everywhere) its ReLU passes no gradient at all, and the only way left to lower
‖Φ(x) − ψ‖ is to shrink every other channel, towards the zero code — a flat grey image at low
layers, at deep layers whatever pattern keeps the other channels small. :func:`collapsed` flags an
FMI whose filter peaks lower on the result than on the photo (or is silent on it): a property of
the codes, not a threshold on how the picture looks. Collapsed FMIs stay in every count and
measurement and are marked in the figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import checks
from ..models.zoo import adapt
from .codes import feature_map
from .optimize import Recipe, capture_codes, digest, get_recipe, invert

#: Φ_k counts as silent on a result where it peaks at most this fraction of its peak on the photo.
SILENT = 1e-6


@dataclass
class FMILayer:
    """One layer's inversions: per content image (I), the plain inversion and K filters' FMIs."""

    layer: str
    filters: list[int]
    names: list[str]  # content image names (I)
    display: torch.Tensor  # I×(1+K)×H×W×3 in [0, 1]; index 0 is the plain inversion
    error: torch.Tensor  # I×(1+K) relative code error ‖Φ(x*) − ψ‖ / ‖ψ‖
    share: torch.Tensor  # I×K ⟨Φ(x*), ψ⟩ / ‖ψ‖²: the part of the FMI target the image reproduces
    collapsed: torch.Tensor  # I×K bool: filter peaks lower on its FMI image than on the photo (module doc)
    fires_on_content: torch.Tensor  # I×K bool: the filter fires somewhere on the content photo

    @property
    def plain(self) -> torch.Tensor:
        """I×H×W×3 plain inversions."""
        return self.display[:, 0]

    @property
    def fmi(self) -> torch.Tensor:
        """I×K×H×W×3 FMI images."""
        return self.display[:, 1:]


def collapsed(result_code: torch.Tensor, content_code: torch.Tensor, filters: Sequence[int]) -> torch.Tensor:
    """B bool: filter ``filters[b]`` peaks lower on result ``b`` than on the photo's code ``b`` (B×C×H×W
    codes), or is silent on the result — the collapse described in the module docstring."""
    idx = torch.arange(result_code.shape[0])
    k = torch.as_tensor(list(filters))
    on_result = result_code[idx, k].flatten(1).amax(1)
    on_photo = content_code[idx, k].flatten(1).amax(1)
    return (on_result < on_photo) | (on_result <= SILENT * on_photo.abs().clamp_min(1e-30))


def common_live_filters(model, inputs: torch.Tensor, *, layer: str, n: int) -> list[int]:
    """The first ``n`` filters (index order) of ``layer`` that fire somewhere on *every* input image.

    The paper shows filters 0–4; the edge-tuned offline stand-in has filters that never fire on a
    photo, so the choice is made on the inputs alone (never on how the inversions turn out)."""
    n = checks.positive_int(n, name="n_filters")
    code = capture_codes(model, checks.images(inputs), [layer])[layer]
    live = (code.flatten(2).amax(2) > 0).all(0).nonzero().squeeze(1).tolist()
    if len(live) < n:
        raise checks.InputError(
            f"only {len(live)} filters of {layer} fire on every image; ask for n_filters ≤ {len(live)}"
        )
    return live[:n]


def fmi_layer(
    model,
    inputs: torch.Tensor,
    *,
    layer: str,
    channels: Sequence[int],
    names: Sequence[str] | None = None,
    recipe: str | Recipe = "modern",
    seed: int = 0,
    progress: bool = True,
    checkpoint: Path | None = None,
) -> FMILayer:
    """Plain inversion and FMI of ``channels`` for each image of ``inputs`` (I×3×H×W), one batch."""
    lm, x = adapt(model), checks.images(inputs)
    n_img = x.shape[0]
    code = capture_codes(lm, x, [layer])[layer]
    ks = checks.indices(list(channels), code.shape[1], name="channels")
    k = len(ks)
    fmi_targets = feature_map(code.repeat_interleave(k, 0), torch.tensor(ks * n_img))
    targets = torch.cat([code[:, None], fmi_targets.view(n_img, k, *code.shape[1:])], 1).flatten(0, 1)
    res = invert(
        lm,
        {layer: targets},
        get_recipe(recipe),
        image_shape=tuple(x.shape[-2:]),
        seed=seed,
        progress=progress,
        checkpoint=checkpoint,
        desc=f"FMI {layer}",
    )
    got = capture_codes(lm, res.images, [layer])[layer].view(n_img, 1 + k, *code.shape[1:])
    tg = targets.view(n_img, 1 + k, *code.shape[1:])
    share = (got[:, 1:] * tg[:, 1:]).flatten(2).sum(2) / tg[:, 1:].flatten(2).pow(2).sum(2).clamp_min(1e-30)
    flat_got = got[:, 1:].flatten(0, 1)
    photo = code.repeat_interleave(k, 0)
    return FMILayer(
        layer=layer,
        filters=ks,
        names=list(names or [f"image {i}" for i in range(n_img)]),
        display=res.display.view(n_img, 1 + k, *res.display.shape[1:]),
        error=res.error.view(n_img, 1 + k),
        share=share,
        collapsed=collapsed(flat_got, photo, ks * n_img).view(n_img, k),
        fires_on_content=code[:, ks].flatten(2).amax(2) > 0,
    )


def fmi_study(
    model,
    inputs: torch.Tensor,
    *,
    layers: Sequence[str],
    n_filters: int = 5,
    names: Sequence[str] | None = None,
    recipe: str | Recipe = "modern",
    seed: int = 0,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
) -> dict[str, FMILayer]:
    """:func:`fmi_layer` for each layer on the first ``n_filters`` filters that fire on every input
    (:func:`common_live_filters`). With ``checkpoint_dir``, each layer's run resumes after a kill."""
    lm = adapt(model)
    rec = get_recipe(recipe)
    out = {}
    for layer in layers:
        ks = common_live_filters(lm, inputs, layer=layer, n=n_filters)
        ck = None
        if checkpoint_dir is not None:
            tag = f"{lm.name}_{layer}_{'-'.join(map(str, ks))}_{digest(inputs)}_{rec.tag}_{seed}"
            ck = Path(checkpoint_dir) / f"fmi_{tag}.pt"
        out[layer] = fmi_layer(
            lm, inputs, layer=layer, channels=ks, names=names, recipe=rec, seed=seed, progress=progress, checkpoint=ck
        )
    return out


def summary(study: dict[str, FMILayer]) -> str:
    """One line per layer: the filters, the collapsed FMIs per photo, the plain inversions' errors."""
    lines = []
    for layer, s in study.items():
        bad = "; ".join(
            f"{name}: {', '.join(str(s.filters[j]) for j in s.collapsed[i].nonzero().flatten().tolist()) or 'none'}"
            for i, name in enumerate(s.names)
        )
        err = ", ".join(f"{name} {float(s.error[i, 0]):.2f}" for i, name in enumerate(s.names))
        lines.append(
            f"{layer}: filters {', '.join(map(str, s.filters))} | collapsed FMIs — {bad} | "
            f"plain inversion rel. code error {err}"
        )
    return "\n".join(lines)
