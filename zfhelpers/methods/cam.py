"""Class activation maps: CAM, Grad-CAM, Grad-CAM++ and Guided Grad-CAM.

One uniform call, ``method(model, x, target, layer=...) -> CamResult``, batched over images with
one target class per image (an int for all, a sequence, or ``"top1"`` … ``"top5"``).

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

from ..models.capture import eval_mode, resolve_layer, unwrap

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
    """The last spatial layer before the head (``head`` for MobileNetV2, ``relu5_3`` for VGG16,
    ``relu5`` for AlexNet)."""
    if hasattr(model, "showcase") and model.showcase:
        return model.showcase[-1]
    raise ValueError("pass layer= for models outside the zoo")


def resolve_targets(logits: torch.Tensor, target) -> torch.Tensor:
    """int | sequence of ints | "topK" (K-th most probable class of each image)."""
    n = logits.shape[0]
    if isinstance(target, str):
        if not (target.startswith("top") and target[3:].isdigit() and int(target[3:]) >= 1):
            raise ValueError(f"target must be a class index, a list of them, or 'top1'..'topK'; got {target!r}")
        rank = int(target[3:])
        return logits.topk(rank, dim=1).indices[:, rank - 1]
    t = torch.as_tensor(target, dtype=torch.long).flatten()
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"{t.numel()} targets for {n} images")
    if (t < 0).any() or (t >= logits.shape[1]).any():
        raise ValueError(f"target classes must be in 0..{logits.shape[1] - 1}")
    return t.clone()


def _forward(model, x, layer):
    """Forward with the layer's output kept in the graph; returns (activations, logits)."""
    net, module = unwrap(model), resolve_layer(model, layer)
    store: dict = {}

    def keep(_m, _i, out):
        store["a"] = out

    handle = module.register_forward_hook(keep)
    try:
        logits = net(x)
    finally:
        handle.remove()
    return store["a"], logits


def _upsample(maps: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _gradients(model, x, target, layer):
    with eval_mode(unwrap(model)), torch.enable_grad():
        # The zoo freezes parameters; the input must carry the graph to the layer.
        acts, logits = _forward(model, x.detach().requires_grad_(True), layer)
        t = resolve_targets(logits.detach(), target)
        score = logits[torch.arange(x.shape[0]), t]
        (grads,) = torch.autograd.grad(score.sum(), acts)
    return acts.detach(), grads.detach(), t, score.detach()


def gradcam(model, x: torch.Tensor, target="top1", layer: str | None = None) -> CamResult:
    layer = layer or default_layer(model)
    acts, grads, t, score = _gradients(model, x, target, layer)
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    maps = F.relu((alpha * acts).sum(1))
    return CamResult(maps, _upsample(maps, x.shape[-2:]), t, score, layer, "gradcam")


def gradcampp(model, x: torch.Tensor, target="top1", layer: str | None = None, *, eps: float = 0.0) -> CamResult:
    """Grad-CAM++. ``eps`` is added to the denominator of ``a_kij``; the paper has none.
    pytorch-grad-cam uses 1e-6, which dominates when gradients are ~1e-3 (as at MobileNetV2's
    head) and changes the map noticeably; pass ``eps=1e-6`` to reproduce it."""
    layer = layer or default_layer(model)
    acts, grads, t, score = _gradients(model, x, target, layer)
    g2, g3 = grads.pow(2), grads.pow(3)
    denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g3 + eps
    a = torch.where(grads != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g2))
    weights = (a * F.relu(grads)).sum(dim=(2, 3), keepdim=True)
    maps = F.relu((weights * acts).sum(1))
    return CamResult(maps, _upsample(maps, x.shape[-2:]), t, score, layer, "gradcampp")


def _gap_linear_head(net: nn.Module) -> nn.Linear:
    heads = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if len(heads) != 1:
        raise ValueError("CAM needs a network whose only linear layer follows global average pooling "
                         f"(found {len(heads)} linear layers); use gradcam instead")  # fmt: skip
    return heads[0]


def cam(model, x: torch.Tensor, target="top1", layer: str | None = None) -> CamResult:
    """Zhou et al.'s CAM. Checks that the head really is GAP → linear by recomputing the logits
    from the layer's maps; refuses other architectures rather than returning a wrong map."""
    layer = layer or default_layer(model)
    net = unwrap(model)
    fc = _gap_linear_head(net)
    with torch.inference_mode():
        acts, logits = _forward(model, x, layer)
        if acts.shape[1] != fc.in_features:
            raise ValueError(f"layer {layer!r} has {acts.shape[1]} channels, the linear head expects {fc.in_features}")
        recomputed = acts.mean(dim=(2, 3)) @ fc.weight.T + fc.bias
        if not torch.allclose(recomputed, logits, atol=1e-3, rtol=1e-4):
            raise ValueError(f"the logits are not a linear function of the average of {layer!r}: CAM does not apply")
        t = resolve_targets(logits, target)
        maps = torch.einsum("nk,nkhw->nhw", fc.weight[t], acts)
    score = logits[torch.arange(x.shape[0]), t]
    return CamResult(maps.clone(), _upsample(maps.clone(), x.shape[-2:]), t, score.clone(), layer, "cam")


def guided_gradcam(model, x: torch.Tensor, target="top1", layer: str | None = None) -> CamResult:
    from .backprop import attribute

    result = gradcam(model, x, target, layer)
    guided = attribute(model, x, result.targets, "guided")
    result.guided = guided * result.upsampled[:, None]
    result.method = "guided_gradcam"
    return result


def run(method: str, model, x: torch.Tensor, target="top1", layer: str | None = None) -> CamResult:
    """Dispatch by name: one of :data:`METHODS`."""
    table = {"cam": cam, "gradcam": gradcam, "gradcampp": gradcampp, "guided_gradcam": guided_gradcam}
    if method not in table:
        raise ValueError(f"unknown CAM method {method!r}; valid: {', '.join(METHODS)}")
    return table[method](model, x, target, layer)


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


def random_model_baseline(model, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
                          method: str = "gradcam", seed: int = 0) -> CamResult:  # fmt: skip
    """The same method on a copy of the model with *all* weights re-initialised (Adebayo et al.
    2018's full randomisation): what a map looks like when it cannot know anything."""
    import copy

    from ..analysis.sanity import _reinit

    layer = layer or default_layer(model)
    clone = copy.copy(model) if hasattr(model, "model") else None
    net = copy.deepcopy(unwrap(model))
    _reinit(net, seed)
    net.eval()
    if clone is not None:
        clone.model = net
        return run(method, clone, x, targets, layer)
    return run(method, net, x, targets, layer)
