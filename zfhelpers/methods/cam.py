"""Class activation maps: CAM, Grad-CAM, Grad-CAM++ and Guided Grad-CAM.

One uniform call, ``method(model, inputs, *, target=…, layer=…) -> CamResult``, batched over
images, with the package's target convention (:mod:`zfhelpers.methods.targets`).

* **CAM** (Zhou et al., CVPR 2016, §2): for a network ending in global average pooling and a
  linear layer, ``M_c = Σ_k w_ck A_k`` with the last conv layer's maps ``A_k``.
* **Grad-CAM** (Selvaraju et al., ICCV 2017, eq. 1–2): ``α_k = mean_ij ∂y_c/∂A_kij``,
  ``M_c = ReLU(Σ_k α_k A_k)``. On a GAP + linear head ``α_k = w_ck / Z``, so Grad-CAM equals
  ``ReLU(CAM) / Z`` — tested as an identity.
* **Grad-CAM++** (Chattopadhyay et al., WACV 2018, eq. 19 with the exponential-score closed form):
  ``a_kij = g² / (2g² + Σ_ab A_kab g³)``, ``w_k = Σ_ij a_kij ReLU(g_ij)``.
* **Guided Grad-CAM** (Selvaraju et al. §3): guided backpropagation × upsampled Grad-CAM.

Maps are returned at the layer's resolution (``maps``) and bilinearly upsampled to the input
(``upsampled``); nothing is normalised unless asked (:func:`normalize`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..models.capture import OUTPUT, capture, capture_detached
from ..models.zoo import adapt
from .targets import resolve_targets

METHODS = ("cam", "gradcam", "gradcampp", "guided_gradcam")


@dataclass
class CamResult:
    maps: torch.Tensor  # N×h×w at the layer's resolution
    upsampled: torch.Tensor  # N×H×W at the input's resolution
    targets: torch.Tensor  # N class indices
    scores: torch.Tensor  # N logits of those classes
    layer: str
    method: str
    guided: torch.Tensor | None = None  # N×3×H×W for guided_gradcam


def default_layer(model) -> str:
    """The model's top conv layer (its ``layer5`` role: ``head`` for MobileNetV2, ``relu5_3`` for
    VGG16, ``relu5`` for AlexNet)."""
    lm = adapt(model)
    if lm.roles.layer5 is None:
        raise checks.InputError(f"{lm.name} has no default CAM layer; pass layer= (one of its layers: "
                                f"{', '.join(list(lm.layers)[-8:])} …)")  # fmt: skip
    return lm.roles.layer5


def _upsample(maps: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _prepare(model, inputs, layer):
    lm = adapt(model)
    x = checks.images(inputs, channels=None)
    return lm, x, lm.check_layer(layer or default_layer(lm))


def _gradients(lm, x, target, layer):
    with torch.enable_grad():
        # The zoo freezes parameters; the input must carry the graph to the layer.
        out = capture(lm, x.detach().requires_grad_(True), [layer, OUTPUT])
        acts, logits = out[layer], out[OUTPUT]
        t = resolve_targets(logits.detach(), target)
        score = logits[torch.arange(x.shape[0], device=logits.device), t]
        (grads,) = torch.autograd.grad(score.sum(), acts)
    return acts.detach(), grads.detach(), t, score.detach()


def gradcam(model, inputs: torch.Tensor, *, target="top1", layer: str | None = None) -> CamResult:
    """Grad-CAM (Selvaraju et al. 2017, eq. 1–2)."""
    lm, x, layer = _prepare(model, inputs, layer)
    acts, grads, t, score = _gradients(lm, x, target, layer)
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    maps = F.relu((alpha * acts).sum(1))
    return CamResult(maps, _upsample(maps, x.shape[-2:]), t, score, layer, "gradcam")


def gradcampp(model, inputs: torch.Tensor, *, target="top1", layer: str | None = None, eps: float = 0.0) -> CamResult:
    """Grad-CAM++ (Chattopadhyay et al. 2018, eq. 19). ``eps`` is added to the denominator of
    ``a_kij``; the paper has none. pytorch-grad-cam uses 1e-6, which dominates when gradients are
    ~1e-3 (as at MobileNetV2's head) and changes the map noticeably; pass ``eps=1e-6`` to reproduce it."""
    lm, x, layer = _prepare(model, inputs, layer)
    acts, grads, t, score = _gradients(lm, x, target, layer)
    g2, g3 = grads.pow(2), grads.pow(3)
    denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g3 + eps
    a = torch.where(grads != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g2))
    weights = (a * F.relu(grads)).sum(dim=(2, 3), keepdim=True)
    maps = F.relu((weights * acts).sum(1))
    return CamResult(maps, _upsample(maps, x.shape[-2:]), t, score, layer, "gradcampp")


def _gap_linear_head(net: nn.Module) -> nn.Linear:
    heads = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if len(heads) != 1:
        raise checks.InputError("CAM needs a network whose only linear layer follows global average pooling "
                                f"(found {len(heads)} linear layers); use gradcam instead")  # fmt: skip
    return heads[0]


def cam(model, inputs: torch.Tensor, *, target="top1", layer: str | None = None) -> CamResult:
    """Zhou et al.'s CAM (2016, §2). Checks that the head really is GAP → linear by recomputing the
    logits from the layer's maps; refuses other architectures rather than returning a wrong map."""
    lm, x, layer = _prepare(model, inputs, layer)
    fc = _gap_linear_head(lm.model)
    out = capture_detached(lm, x, [layer, OUTPUT])
    acts, logits = out[layer], out[OUTPUT]
    if acts.shape[1] != fc.in_features:
        raise checks.InputError(f"layer {layer!r} has {acts.shape[1]} channels, the linear head expects "
                                f"{fc.in_features}")  # fmt: skip
    recomputed = acts.mean(dim=(2, 3)) @ fc.weight.T + fc.bias
    if not torch.allclose(recomputed, logits, atol=1e-3, rtol=1e-4):
        raise checks.InputError(f"the logits are not a linear function of the average of {layer!r}: CAM does not apply")
    t = resolve_targets(logits, target)
    maps = torch.einsum("nk,nkhw->nhw", fc.weight[t], acts)
    score = logits[torch.arange(x.shape[0], device=logits.device), t]
    return CamResult(maps, _upsample(maps, x.shape[-2:]), t, score, layer, "cam")


def guided_gradcam(model, inputs: torch.Tensor, *, target="top1", layer: str | None = None) -> CamResult:
    """Guided backpropagation (Springenberg et al. 2015) × upsampled Grad-CAM (Selvaraju et al. §3)."""
    from .projection import class_projection

    result = gradcam(model, inputs, target=target, layer=layer)
    guided = class_projection(model, inputs, target=result.targets, rule="guided")
    result.guided = guided * result.upsampled[:, None]
    result.method = "guided_gradcam"
    return result


def applicable(model) -> tuple[str, ...]:
    """The methods of :data:`METHODS` that apply to ``model`` (CAM needs a GAP + linear head)."""
    lm = adapt(model)
    return METHODS if lm.spec.cam else tuple(m for m in METHODS if m != "cam")


def run(method: str, model, inputs: torch.Tensor, *, target="top1", layer: str | None = None) -> CamResult:
    """Dispatch by name: one of :data:`METHODS`."""
    table = {"cam": cam, "gradcam": gradcam, "gradcampp": gradcampp, "guided_gradcam": guided_gradcam}
    checks.choice(method, METHODS, name="CAM method")
    return table[method](model, inputs, target=target, layer=layer)


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Per-image min-max scaling to [0, 1] (constant maps become 0)."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    scale = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return (maps - lo.view(-1, *[1] * (maps.dim() - 1))) / scale.view(-1, *[1] * (maps.dim() - 1))


def sobel_baseline(display_images: Sequence) -> torch.Tensor:
    """Edge-magnitude 'explanation' that ignores the model (pytorch-grad-cam ships the same idea):
    any method whose map looks like this is showing edges, not evidence."""
    from scipy import ndimage

    out = []
    for img in display_images:
        gray = torch.as_tensor(img).float().mean(-1).numpy()
        out.append(torch.from_numpy(ndimage.generic_gradient_magnitude(gray, ndimage.sobel)).float())
    return normalize(torch.stack(out))


def random_model_baseline(model, inputs: torch.Tensor, *, target, layer: str | None = None,
                          method: str = "gradcam", seed: int = 0) -> CamResult:  # fmt: skip
    """The same method on a copy of the model with *all* weights re-initialised (Adebayo et al.
    2018's full randomisation): what a map looks like when it cannot know anything. Pass the
    trained model's classes as ``target`` (the random model's own top class means nothing)."""
    from ..models.randomize import randomized_copy

    lm = adapt(model)
    return run(method, randomized_copy(lm, seed), inputs, target=target, layer=layer or default_layer(lm))
