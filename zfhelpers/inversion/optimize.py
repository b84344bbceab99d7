"""The optimisation loop: find images whose codes minimise a per-image objective.

Two recipes (papers.md §3.1, §5.1):

* ``authors`` — Xia et al.'s code: SGD, lr 0.1 × 0.9 every 10 steps, momentum 0.9, each gradient
  element clipped to ±10 (MXNet ``clip_gradient``), weight decay 5e-4 (an L2 prior on x), at most
  1000 steps, stop when ‖x_t − x_{t−1}‖ / ‖x_t‖ < 0.005, then Chambolle TV denoising (0.2);
* ``modern`` — Adam on the normalised data term ‖Φ − ψ‖²/‖ψ‖² with a β = 2 TV prior (Mahendran &
  Vedaldi), 1-pixel jitter for the first half of the steps (then refinement without it), learning
  rate decayed linearly, 200 steps. ``benchmarks/bench_inversion.py`` compares the two per layer.

A batch holds independent problems (no batch statistics in these nets): each image has its own
target and its own stopping step, and finished images leave the batch. Progress is shown with tqdm;
with ``checkpoint`` the state is saved atomically every ``save_every`` steps and a killed run resumes
from there with the same result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from .. import checks
from ..io import atomic_torch_save
from ..models.capture import capture, eval_mode
from ..models.zoo import adapt
from ..progress import tqdm
from . import codes as _codes
from . import objectives
from .param import tv_denoise, uniform_init
from .transforms import jitter


@dataclass(frozen=True)
class Recipe:
    name: str
    optimizer: str  # "sgd" (with momentum, MXNet-style) or "adam"
    lr: float
    max_steps: int
    momentum: float = 0.9
    lr_step: int = 10  # sgd: lr × lr_factor every lr_step steps
    lr_factor: float = 0.9
    clip: float | None = None  # elementwise gradient clip
    weight_decay: float = 0.0
    tol: float | None = None  # per-image relative-change stopping rule
    normalized: bool = False  # data term ‖Φ−ψ‖²/‖ψ‖² instead of ½‖Φ−ψ‖²
    tv_weight: float = 0.0  # × TV(x) / (H·W·tv_sigma²)
    tv_sigma: float = 60.0  # typical pixel deviation in the model's input units (0–255 scale)
    jitter: int = 0
    jitter_until: float = 1.0  # share of max_steps with jitter (the rest refines without it)
    denoise: float | None = None  # post-hoc Chambolle TV weight on the [0, 1] display image
    init_scale: float = 0.1

    def with_(self, **changes) -> Recipe:
        return replace(self, **changes)

    @property
    def tag(self) -> str:
        """Short hash of every setting (for checkpoint file names)."""
        import hashlib

        return hashlib.sha256(repr(asdict(self)).encode()).hexdigest()[:10]


RECIPES = {
    "authors": Recipe("authors", "sgd", lr=0.1, max_steps=1000, clip=10.0, weight_decay=5e-4, tol=0.005,
                      denoise=0.2),
    "modern": Recipe("modern", "adam", lr=8.0, max_steps=200, normalized=True, tv_weight=0.01, jitter=1,
                     jitter_until=0.5),
}  # fmt: skip


def get_recipe(recipe: str | Recipe) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    return RECIPES[recipe]


def lr_at(recipe: Recipe, t: int) -> float:
    """The learning rate a recipe uses at step ``t``: the authors' ×0.9 every 10 steps (SGD), or a
    linear decay to 10 % (Adam)."""
    if recipe.optimizer == "sgd":
        return recipe.lr * recipe.lr_factor ** (t // recipe.lr_step)
    return recipe.lr * (1 - 0.9 * t / max(recipe.max_steps - 1, 1))


@dataclass
class InversionResult:
    images: torch.Tensor  # B×3×H×W in the model's input space (before any denoising)
    display: torch.Tensor  # B×H×W×3 in [0, 1] (denoised if the recipe says so)
    steps: torch.Tensor  # B: steps each image ran
    error: torch.Tensor  # B: final relative code error (code inversions) or final loss
    history: list[torch.Tensor] = field(repr=False)  # per step, B values (nan once an image stopped)
    recipe: Recipe = None


LossFn = Callable[[dict[str, torch.Tensor], torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class _State:
    """Everything a resumed run needs: the images, optimiser buffers, who is still running."""

    x: torch.Tensor
    buf1: torch.Tensor
    buf2: torch.Tensor
    active: torch.Tensor
    steps: torch.Tensor
    metric: torch.Tensor
    history: list[torch.Tensor]
    step: int
    generator: torch.Generator

    @classmethod
    def fresh(cls, x0: torch.Tensor, seed: int) -> _State:
        b = x0.shape[0]
        x = x0.detach().clone()
        return cls(x, torch.zeros_like(x), torch.zeros_like(x), torch.ones(b, dtype=torch.bool),
                   torch.zeros(b, dtype=torch.long), torch.full((b,), float("nan")), [], 0,
                   torch.Generator().manual_seed(seed))  # fmt: skip

    def save(self, path: Path, key: str) -> None:
        atomic_torch_save({"key": key, "x": self.x.cpu(), "buf1": self.buf1.cpu(), "buf2": self.buf2.cpu(),
                           "active": self.active, "steps": self.steps, "metric": self.metric, "step": self.step,
                           "history": self.history, "generator": self.generator.get_state()}, path)  # fmt: skip

    @classmethod
    def load(cls, path: Path, key: str, device) -> _State:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved["key"] != key:
            raise ValueError(f"{path} belongs to another inversion; delete it or pick another path")
        gen = torch.Generator()
        gen.set_state(saved["generator"])
        return cls(saved["x"].to(device), saved["buf1"].to(device), saved["buf2"].to(device), saved["active"],
                   saved["steps"], saved["metric"], list(saved["history"]), saved["step"], gen)  # fmt: skip


def _sgd_step(recipe: Recipe, t: int, prev, grad, st: _State, idx) -> torch.Tensor:
    """The authors' MXNet SGD: element-wise clip, weight decay as an L2 prior, momentum."""
    if recipe.clip is not None:
        grad = grad.clamp(-recipe.clip, recipe.clip)
    grad = grad + recipe.weight_decay * prev
    st.buf1[idx] = recipe.momentum * st.buf1[idx] - lr_at(recipe, t) * grad
    return prev + st.buf1[idx]


def _adam_step(recipe: Recipe, t: int, prev, grad, st: _State, idx) -> torch.Tensor:
    """Adam with bias correction, per image (each has its own step count)."""
    grad = grad + recipe.weight_decay * prev
    st.buf1[idx] = 0.9 * st.buf1[idx] + 0.1 * grad
    st.buf2[idx] = 0.999 * st.buf2[idx] + 0.001 * grad * grad
    n = st.steps[idx].to(prev.dtype).view(-1, 1, 1, 1) + 1
    mhat, vhat = st.buf1[idx] / (1 - 0.9**n), st.buf2[idx] / (1 - 0.999**n)
    return prev - lr_at(recipe, t) * mhat / (vhat.sqrt() + 1e-8)


def _loss_and_grad(lm, layers, loss_fn, recipe: Recipe, t: int, st: _State, idx):
    xa = st.x[idx].clone().requires_grad_(True)
    inp = jitter(xa, recipe.jitter if t < recipe.jitter_until * recipe.max_steps else 0, st.generator)
    loss, metric = loss_fn(capture(lm, inp, layers), xa, idx.to(st.x.device))
    if recipe.tv_weight:
        hw = xa.shape[-1] * xa.shape[-2]
        loss = loss + recipe.tv_weight * objectives.tv(xa) / (hw * recipe.tv_sigma**2)
    (grad,) = torch.autograd.grad(loss.sum(), xa)
    return grad, metric.detach().float().cpu()


def _apply(recipe: Recipe, t: int, st: _State, idx, grad, metric) -> None:
    with torch.no_grad():
        prev = st.x[idx]
        new = (_sgd_step if recipe.optimizer == "sgd" else _adam_step)(recipe, t, prev, grad, st, idx)
        st.x[idx] = new
        st.steps[idx] += 1
        st.metric[idx] = metric
        row = torch.full((st.x.shape[0],), float("nan"))
        row[idx] = metric
        st.history.append(row)
        if recipe.tol is not None:
            change = (new - prev).flatten(1).norm(dim=1) / new.flatten(1).norm(dim=1).clamp_min(1e-12)
            st.active[idx[(change < recipe.tol).cpu()]] = False


def optimize(model, layers: Sequence[str], loss_fn: LossFn, x0: torch.Tensor, recipe: str | Recipe = "modern", *,
             seed: int = 0, progress: bool = True, checkpoint: Path | None = None, save_every: int = 50,
             stop_after: int | None = None, desc: str = "inversion") -> InversionResult:  # fmt: skip
    """Minimise ``loss_fn(codes, x, idx) -> (loss per image, metric per image)`` over the images,
    where ``idx`` are the batch indices still running (targets are sliced with it).

    ``stop_after`` ends the call after that many steps, as a kill would (for tests)."""
    recipe, lm = get_recipe(recipe), adapt(model)
    key = repr({"recipe": asdict(recipe), "shape": list(x0.shape), "layers": list(layers), "seed": seed})
    resume = checkpoint is not None and Path(checkpoint).is_file()
    st = _State.load(checkpoint, key, x0.device) if resume else _State.fresh(x0, seed)
    bar = tqdm(range(st.step, recipe.max_steps), desc=desc, disable=not progress, initial=st.step,
               total=recipe.max_steps)  # fmt: skip
    with eval_mode(lm.model):
        for t in bar:
            if not st.active.any():
                break
            idx = st.active.nonzero().squeeze(1)
            grad, metric = _loss_and_grad(lm, layers, loss_fn, recipe, t, st, idx)
            _apply(recipe, t, st, idx, grad, metric)
            bar.set_postfix(metric=f"{float(metric.mean()):.3g}", running=int(st.active.sum()))
            st.step = t + 1
            last = st.step >= recipe.max_steps or not st.active.any() or st.step == stop_after
            if checkpoint is not None and (st.step % save_every == 0 or last):
                st.save(checkpoint, key)
            if st.step == stop_after:
                break
    bar.close()
    return InversionResult(st.x, torch.empty(0), st.steps, st.metric, st.history, recipe)


def finish(result: InversionResult, preprocess) -> InversionResult:
    """Fill ``result.display``: images in [0, 1], TV-denoised when the recipe says so."""
    from .param import to_display

    display = to_display(result.images, preprocess)
    if result.recipe.denoise:
        display = tv_denoise(display, result.recipe.denoise).clamp(0, 1)
    result.display = display
    return result


def invert(model, targets: dict[str, torch.Tensor], recipe: str | Recipe = "modern", *, x0: torch.Tensor | None = None,
           image_shape: tuple[int, int] | None = None, seed: int = 0, progress: bool = True,
           checkpoint: Path | None = None, stop_after: int | None = None,
           desc: str = "inversion") -> InversionResult:  # fmt: skip
    """Code inversion: images whose codes at ``targets``' layers match the targets (B×C×H×W each;
    several layers are summed). ``x0`` defaults to the authors' U(−0.1, 0.1) start of
    ``image_shape``. ``model`` is a LoadedModel (its preprocess turns results into images)."""
    recipe, lm = get_recipe(recipe), adapt(model)
    layers = list(targets)
    b = next(iter(targets.values())).shape[0]
    if x0 is None:
        if image_shape is None:
            raise checks.InputError("pass x0 or image_shape=(H, W)")
        x0 = uniform_init((b, 3, *image_shape), torch.Generator().manual_seed(seed), recipe.init_scale)
    data_term = objectives.normalized_code_loss if recipe.normalized else objectives.code_loss

    def loss_fn(codes, _x, idx):
        loss = sum(data_term(codes[name], targets[name][idx]) for name in layers)
        err = torch.stack([objectives.relative_error(codes[name], targets[name][idx]) for name in layers]).mean(0)
        return loss, err

    result = optimize(lm, layers, loss_fn, x0, recipe, seed=seed, progress=progress, checkpoint=checkpoint,
                      stop_after=stop_after, desc=desc)  # fmt: skip
    codes = capture_codes(lm, result.images, layers)  # the final error, measured without jitter
    result.error = torch.stack([objectives.relative_error(codes[n], targets[n]) for n in layers]).mean(0)
    return finish(result, lm.preprocess)


def capture_codes(model, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The codes Φ_l(x) of ``images`` at ``layers`` (no graph)."""
    from ..models.capture import capture_detached

    return capture_detached(model, images, list(layers))


def invert_code(model, inputs: torch.Tensor, *, layer: str, mode: str = "none", channels=0, draws: int = 1,
                recipe: str | Recipe = "modern", seed: int = 0, style: torch.Tensor | None = None,
                progress: bool = True, checkpoint: Path | None = None) -> InversionResult:  # fmt: skip
    """One call for the paper's modes on one image (1×3×H×W, model input):

    * ``none`` — plain code inversion;
    * ``feature_map`` — FMI, one inversion per entry of ``channels``, all in one batch;
    * ``random`` — RMCI, ``draws`` random modifications in one batch (seeded);
    * ``purposeful`` — the non-optimised purposeful mode with ``style`` (1×3×h×w)."""
    lm = adapt(model)
    x = checks.images(inputs, single=True)
    checks.choice(mode, _codes.MODES, name="code modification")
    code = capture_codes(lm, x, [layer])[layer]
    style_code = capture_codes(lm, checks.images(style, name="style"), [layer])[layer] if style is not None else None
    target = _codes.modify(code, mode, channels=channels, draws=draws, generator=torch.Generator().manual_seed(seed),
                           style=style_code)  # fmt: skip
    return invert(lm, {layer: target}, recipe, image_shape=tuple(x.shape[-2:]), seed=seed, progress=progress,
                  checkpoint=checkpoint, desc=f"{mode} {layer}")  # fmt: skip
