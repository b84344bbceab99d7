"""Exercises of notebooks 05, 07, 08 and 10: invariance curves, occlusion, correspondence and class
activation maps written by hand, each checked against the package on small inputs, plus one prediction
to make before the notebook reveals the answer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import CheckResult, exercise, solution


class _TinyGap(nn.Module):
    """conv-ReLU-conv-ReLU, global average pooling, one linear layer (CAM applies)."""

    def __init__(self, classes: int = 5):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()
        )
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _tiny_two_layer_head() -> nn.Sequential:
    """conv-ReLU-pool, then two linear layers: CAM does not apply, Grad-CAM does."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(6 * 8 * 8, 10), nn.ReLU(), nn.Linear(10, 4)).eval()  # fmt: skip


def _image(*shape, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _close(a, b, atol=1e-5) -> bool:
    a, b = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    return a.shape == b.shape and torch.allclose(a, b, atol=atol, rtol=1e-4)


# --------------------------------------------------------------------------- 05 invariance
def _shift(x: torch.Tensor, amount: float) -> torch.Tensor:
    from ..analysis.invariance import transform

    return transform(x, "translate", amount)


@exercise("05.distance_curve", notebook="05_invariance", title="A Fig. 5 distance curve by hand (ZF §4)")
def check_distance_curve(student) -> CheckResult:
    """``student(features, x, amounts, shift)``: ``features(x)`` gives one feature vector per image
    (N×D), ``shift(x, a)`` shifts the images vertically by ``a`` pixels → the N×T matrix of Euclidean
    distances between the features of the original and of the shifted images. Compared with
    :func:`zfhelpers.analysis.invariance.invariance_curves` on a tiny network."""
    from ..analysis.invariance import invariance_curves
    from ..models.zoo import adapt

    net, x = _TinyGap().eval(), _image(3, 3, 16, 16, seed=5)
    amounts = [-4.0, -2.0, 0.0, 2.0, 4.0]

    def features(batch):
        with torch.no_grad():
            return net.features(batch).flatten(1)

    got = student(features, x.clone(), list(amounts), _shift)
    ref = invariance_curves(adapt(net), x, [0, 0, 0], "translate", amounts, low="features.1", high="features.3")
    ref = torch.as_tensor(ref.d_high)
    got = torch.as_tensor(got, dtype=torch.float32)
    if _close(got, ref, atol=1e-4):
        return CheckResult(True, "your distances equal zfhelpers.invariance's layer-7-style curve")
    if got.shape == ref.T.shape and got.shape != ref.shape:
        return CheckResult(False, f"shape {tuple(got.shape)}, expected {tuple(ref.shape)}: one row per image")
    if _close(got, ref**2, atol=1e-3):
        return CheckResult(False, "these are squared distances: ZF plot the Euclidean distance — take the square root")
    return CheckResult(False, "the distances differ: ‖features(shift(x, a)) − features(x)‖ per image and amount")


def _squared_curve(features, x, amounts, shift):
    base = features(x)
    return torch.stack([((features(shift(x, a)) - base) ** 2).sum(1) for a in amounts], 1)


@solution("05.distance_curve", mistake=_squared_curve)
def distance_curve(features, x, amounts, shift):
    base = features(x)
    return torch.stack([(features(shift(x, a)) - base).norm(dim=1) for a in amounts], 1)


@exercise("05.kept_share", notebook="05_invariance", title="The share of p(true class) a photo keeps (05's claims)")
def check_kept_share(student) -> CheckResult:
    """``student(amounts, p, identity)``: the amounts of one transformation, p(true class) at each
    and the identity amount (0, or 1 for zoom) → the mean over the non-identity amounts of
    p(amount) / p(identity), each ratio capped at 1. Compared with
    :func:`zfhelpers.analysis.invariance.retained`."""
    import numpy as np

    from ..analysis.invariance import retained

    amounts = np.array([0.0, 30.0, 60.0, 90.0, 120.0, 150.0])
    p = np.array([0.6, 0.7, 0.3, 0.05, 0.45, 0.9])  # two angles where p rises above the original's
    got = float(student(amounts.copy(), p.copy(), 0.0))
    ref = retained("rotate", amounts, p)
    if abs(got - ref) < 1e-6:
        return CheckResult(True, f"share kept = {got:.3f}, as zfhelpers.invariance.retained computes it")
    if abs(got - float((p[1:] / p[0]).mean())) < 1e-6:
        return CheckResult(
            False, "cap each ratio at 1: an amount where p rises must not make up for one where it falls"
        )
    if abs(got - float(np.minimum(p / p[0], 1).mean())) < 1e-6:
        return CheckResult(False, "you averaged over the identity too (always 1): leave it out")
    return CheckResult(False, f"share kept = {got:.3f}, expected {ref:.3f}: mean of min(p(a) / p(identity), 1)")


@solution(
    "05.kept_share",
    mistake=lambda amounts, p, identity: float((p[amounts != identity] / p[amounts == identity][0]).mean()),
)
def kept_share(amounts, p, identity):
    import numpy as np

    base = p[np.isclose(amounts, identity)][0]
    others = p[~np.isclose(amounts, identity)]
    return float(np.minimum(others / base, 1.0).mean())


# --------------------------------------------------------------------------- 07 occlusion
@exercise("07.occlusion_loop", notebook="07_occlusion", title="The occlusion loop by hand (ZF Fig. 7d)")
def check_occlusion_loop(student) -> CheckResult:
    """``student(model, x, size, stride, fill, target)`` returns the gy×gx map of p(target) with a
    ``size``×``size`` square of ``fill`` at every position ``0, stride, 2·stride, …`` (rows, then
    columns); compared with :func:`zfhelpers.methods.occlusion.occlusion` on a 16×24 image."""
    from ..methods.occlusion import occlusion

    net, x = _TinyGap().eval(), _image(1, 3, 16, 24)
    got = student(net, x.clone(), 8, 4, 0.0, 2)
    ref = occlusion(net, x, target=2, size=8, stride=4, fill=0.0)
    if _close(got, ref.prob):
        return CheckResult(True, "your loop reproduces zfhelpers.occlusion's p(target) map")
    got = torch.as_tensor(got)
    if got.shape == ref.prob.T.shape and got.shape != ref.prob.shape:
        return CheckResult(
            False, f"shape {tuple(got.shape)}, expected {tuple(ref.prob.shape)}: rows (y) first, then columns (x)"
        )
    if got.shape != ref.prob.shape:
        return CheckResult(
            False,
            f"shape {tuple(got.shape)}, expected {tuple(ref.prob.shape)}: one value per window position "
            "0, stride, … with the window inside the image",
        )
    logits = _logit_loop(net, x, 8, 4, 0.0, 2)
    if _close(got, logits.detach()):
        return CheckResult(False, "these are the class scores (logits): ZF plot the probability — apply softmax")
    return CheckResult(False, "the map differs; occlude a copy of the image each time (the original must stay intact)")


def _occluded(x: torch.Tensor, y: int, x0: int, size: int, fill: float) -> torch.Tensor:
    out = x.clone()
    out[..., y : y + size, x0 : x0 + size] = fill
    return out


def _logit_loop(model, x, size, stride, fill, target):
    _, _, h, w = x.shape
    with torch.no_grad():
        return torch.stack([torch.stack([model(_occluded(x, y, x0, size, fill))[0, target]
                                         for x0 in range(0, w - size + 1, stride)])
                            for y in range(0, h - size + 1, stride)])  # fmt: skip


@solution("07.occlusion_loop", mistake=_logit_loop)
def occlusion_loop(model, x, size, stride, fill, target):
    _, _, h, w = x.shape
    rows = []
    with torch.no_grad():
        for y in range(0, h - size + 1, stride):
            row = []
            for x0 in range(0, w - size + 1, stride):
                row.append(model(_occluded(x, y, x0, size, fill)).softmax(1)[0, target])
            rows.append(torch.stack(row))
    return torch.stack(rows)


@exercise("07.predict_switch", notebook="07_occlusion", title="Predict: who wins when the cup is covered?")
def check_predict_switch(student) -> CheckResult:
    """``student()`` returns the ImageNet class name (e.g. ``"tabby"``) that MobileNetV2 ranks first
    on the chelsea|coffee composite once the whole cup (its box in ``data/images/objects.json``) is
    covered by a grey square."""
    guess = str(student()).strip().lower()
    answer, p = _covered_cup_winner()
    if guess == answer.lower():
        return CheckResult(True, f"right: with the cup covered, '{answer}' wins (p = {p:.2f}) — the label switches")
    if guess == "espresso":
        return CheckResult(False, "no: covering the cup removes the espresso evidence; look at the other half")
    return CheckResult(False, f"not '{guess}': look at what else is in the picture (the notebook reveals it next)")


def _covered_cup_winner() -> tuple[str, float]:
    from ..data.composite import object_box, prepare_any
    from ..models.zoo import load_model

    lm = load_model("mobilenet_v2")
    s = prepare_any("chelsea|coffee", lm.preprocess)
    y0, y1, x0, x1 = object_box("chelsea|coffee", lm.preprocess.crop, target=967)  # 967: espresso
    x = s.tensor.clone()
    x[..., y0:y1, x0:x1] = 0.0  # the dataset mean, mid grey
    with torch.inference_mode():
        p = lm.model(x).softmax(1)[0]
    return lm.categories[int(p.argmax())], float(p.max())


@solution("07.predict_switch", mistake=lambda: "espresso")
def predict_switch():
    # the other object of the composite: the cat's photo is labelled 'Egyptian cat'
    return "Egyptian cat"


# --------------------------------------------------------------------------- 08 correspondence
@exercise("08.delta_from_signs", notebook="08_correspondence", title="Δ of Table 1 from sign vectors (ZF §4.3)")
def check_delta(student) -> CheckResult:
    """``student(eps)`` takes the n×D feature changes ε = x − x̃ of n images and returns Δ: the
    fraction of dimensions whose signs differ, averaged over the ordered pairs i ≠ j (sign 0 is its
    own sign). Compared with :func:`zfhelpers.analysis.correspondence.consistency`."""
    from ..analysis.correspondence import consistency

    g = torch.Generator().manual_seed(3)
    eps = torch.randn(5, 200, generator=g) * (torch.rand(5, 200, generator=g) > 0.4)  # ~40 % exact zeros
    got = float(student(eps.clone()))
    ref = consistency(eps)[0]
    if abs(got - ref) < 1e-6:
        return CheckResult(True, f"Δ = {got:.4f}, as zfhelpers.analysis.correspondence computes it")
    s = torch.sign(eps)
    with_diag = float(torch.stack([(s[i] != s[j]).float().mean() for i in range(5) for j in range(5)]).mean())
    if abs(got - with_diag) < 1e-6:
        return CheckResult(False, "you included the pairs i = j (always 0): average over i ≠ j only")
    b = eps > 0
    binary = float(torch.stack([(b[i] != b[j]).float().mean() for i in range(5) for j in range(5) if i != j]).mean())
    if abs(got - binary) < 1e-6:
        return CheckResult(False, "you compared ε > 0, which treats an unchanged dimension (ε = 0) as negative: "
                                  "use torch.sign, whose 0 is a sign of its own")  # fmt: skip
    return CheckResult(False, f"Δ = {got:.4f}, expected {ref:.4f}: mean over ordered pairs of the fraction of "
                              "dimensions with different signs")  # fmt: skip


def _delta_positive_only(eps):
    b = eps > 0
    n = len(b)
    return torch.stack([(b[i] != b[j]).float().mean() for i in range(n) for j in range(n) if i != j]).mean()


@solution("08.delta_from_signs", mistake=_delta_positive_only)
def delta_from_signs(eps):
    s = torch.sign(eps)
    n = s.shape[0]
    pairs = [(s[i] != s[j]).float().mean() for i in range(n) for j in range(n) if i != j]
    return torch.stack(pairs).mean()


@exercise("08.independent_chance", notebook="08_correspondence", title="The chance line of Δ (ZF §4.3)")
def check_independent_chance(student) -> CheckResult:
    """``student(eps)``: the n×D feature changes of n images → the Δ expected if each image's signs
    were drawn independently with its own frequencies of −, 0 and +: the mean over the pairs i < j
    of 1 − Σ_s p_i(s) p_j(s). Compared with
    :func:`zfhelpers.analysis.correspondence.independent_chance`."""
    from ..analysis.correspondence import independent_chance

    g = torch.Generator().manual_seed(4)
    eps = torch.randn(5, 300, generator=g) * (torch.rand(5, 300, generator=g) > torch.linspace(0.2, 0.7, 5)[:, None])
    got = float(student(eps.clone()))
    ref = independent_chance(eps)
    if abs(got - ref) < 1e-6:
        return CheckResult(True, f"chance Δ = {got:.4f}: not 0.5 once unchanged features (sign 0) are common")
    if abs(got - 0.5) < 1e-9:
        return CheckResult(False, "0.5 holds only for fair ±1 signs; here many features do not change (sign 0)")
    s = torch.sign(eps)
    two = torch.stack([(s == v).float().mean(1) for v in (-1.0, 1.0)], 1).numpy()
    i, j = torch.triu_indices(5, 5, 1).numpy()
    if abs(got - float((1 - two @ two.T)[i, j].mean())) < 1e-6:
        return CheckResult(False, "two images that both leave a feature unchanged agree on it: count sign 0 too")
    return CheckResult(False, f"chance Δ = {got:.4f}, expected {ref:.4f}: mean over i < j of 1 − Σ_s p_i(s) p_j(s)")


@solution("08.independent_chance", mistake=lambda eps: 0.5)
def independent_chance(eps):
    s = torch.sign(eps)
    freq = torch.stack([(s == v).float().mean(1) for v in (-1.0, 0.0, 1.0)], 1)  # n×3
    agree = freq @ freq.T
    i, j = torch.triu_indices(len(s), len(s), 1)
    return float((1 - agree[i, j]).mean())


# --------------------------------------------------------------------------- 10 CAM
def _acts_and_head(net: _TinyGap, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.features(x)


@exercise("10.cam_from_weights", notebook="10_cam", title="CAM from the classifier's weights (Zhou et al. §2)")
def check_cam(student) -> CheckResult:
    """``student(acts, weight, target)``: the last conv maps ``acts`` (N×K×h×w), the linear layer's
    ``weight`` (classes×K) and one class per image (N) → the N×h×w class activation maps.
    Compared with :func:`zfhelpers.methods.cam.cam` on a tiny GAP network."""
    from ..methods.cam import cam

    net, x = _TinyGap().eval(), _image(2, 3, 12, 12)
    target = torch.tensor([1, 3])
    got = student(_acts_and_head(net, x), net.fc.weight.detach().clone(), target.clone())
    ref = cam(net, x, target=target, layer="features.3").maps
    if _close(got, ref):
        return CheckResult(True, "your maps equal zfhelpers.cam's: M_c = Σ_k w_ck A_k")
    if _close(got, F.relu(ref)):
        return CheckResult(False, "you applied a ReLU: CAM keeps the negative evidence (the ReLU belongs to Grad-CAM)")
    if _close(got, ref / (ref.shape[-1] * ref.shape[-2])):
        return CheckResult(False, "you divided by the number of positions: CAM is the plain weighted sum")
    return CheckResult(False, "the maps differ: weight each map A_k by the target class's row of the weight matrix")


def _relu_cam(acts, weight, target):
    return F.relu(torch.einsum("nk,nkhw->nhw", weight[target], acts))


@solution("10.cam_from_weights", mistake=_relu_cam)
def cam_from_weights(acts, weight, target):
    return torch.einsum("nk,nkhw->nhw", weight[target], acts)


@exercise(
    "10.gradcam_by_hand", notebook="10_cam", title="Grad-CAM from activations and gradients (Selvaraju et al. eq. 1–2)"
)
def check_gradcam(student) -> CheckResult:
    """``student(acts, grads)``: a conv layer's maps A (N×K×h×w) and the gradients ∂y_c/∂A of the
    target class's score → the N×h×w Grad-CAM maps. Compared with
    :func:`zfhelpers.methods.cam.gradcam` on a tiny network with two linear layers (CAM does not
    apply there)."""
    from ..methods.cam import gradcam

    net, x = _tiny_two_layer_head(), _image(2, 3, 16, 16)
    target = torch.tensor([0, 2])
    xg = x.clone().requires_grad_(True)
    acts = net[:2](xg)
    score = net[2:](acts)[torch.arange(2), target].sum()
    (grads,) = torch.autograd.grad(score, acts)
    got = student(acts.detach().clone(), grads.detach().clone())
    ref = gradcam(net, x, target=target, layer="1").maps
    if _close(got, ref):
        return CheckResult(True, "your maps equal zfhelpers.gradcam's: ReLU(Σ_k mean(∂y/∂A_k) A_k)")
    raw = ((grads.mean(dim=(2, 3), keepdim=True)) * acts.detach()).sum(1)
    if _close(got, raw):
        return CheckResult(False, "missing the final ReLU: Grad-CAM keeps only the positive evidence")
    if _close(got, F.relu((grads * acts.detach()).sum(1))):
        return CheckResult(
            False, "you weighted each position by its own gradient: α_k is the gradient averaged over space"
        )
    return CheckResult(False, "the maps differ: α_k = spatial mean of the gradients, map = ReLU(Σ_k α_k A_k)")


@solution("10.gradcam_by_hand", mistake=lambda acts, grads: (grads.mean(dim=(2, 3), keepdim=True) * acts).sum(1))
def gradcam_by_hand(acts, grads):
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return F.relu((alpha * acts).sum(1))
