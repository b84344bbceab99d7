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

from ..activations import eval_mode, layer_outputs, unwrap
from ..io import atomic_torch_save
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


#: Outputs of several layers, graph attached, forward stopped at the deepest (re-exported here as
#: the inversion's view of a network: its codes).
features = layer_outputs


@dataclass
class InversionResult:
    images: torch.Tensor  # B×3×H×W in the model's input space (before any denoising)
    display: torch.Tensor  # B×H×W×3 in [0, 1] (denoised if the recipe says so)
    steps: torch.Tensor  # B: steps each image ran
    error: torch.Tensor  # B: final relative code error (code inversions) or final loss
    history: list[torch.Tensor] = field(repr=False)  # per step, B values (nan once an image stopped)
    recipe: Recipe = None


LossFn = Callable[[dict[str, torch.Tensor], torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def optimize(model, layers: Sequence[str], loss_fn: LossFn, x0: torch.Tensor, recipe: str | Recipe = "modern", *,
             seed: int = 0, progress: bool = True, checkpoint: Path | None = None, save_every: int = 50,
             stop_after: int | None = None, desc: str = "inversion") -> InversionResult:  # fmt: skip
    """Minimise ``loss_fn(codes, x, idx) -> (loss per image, metric per image)`` over the images,
    where ``idx`` are the batch indices still running (targets are sliced with it).

    ``stop_after`` ends the call after that many steps, as a kill would (for tests)."""
    recipe = get_recipe(recipe)
    net = unwrap(model)
    b = x0.shape[0]
    gen = torch.Generator().manual_seed(seed)
    x = x0.detach().clone()
    buf1, buf2 = torch.zeros_like(x), torch.zeros_like(x)
    active = torch.ones(b, dtype=torch.bool)
    steps = torch.zeros(b, dtype=torch.long)
    metric = torch.full((b,), float("nan"))
    history: list[torch.Tensor] = []
    start = 0
    key = {"recipe": asdict(recipe), "shape": list(x0.shape), "layers": list(layers), "seed": seed}
    if checkpoint is not None and Path(checkpoint).is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if saved["key"] != repr(key):
            raise ValueError(f"{checkpoint} belongs to another inversion; delete it or pick another path")
        x, buf1, buf2 = saved["x"].to(x0.device), saved["buf1"].to(x0.device), saved["buf2"].to(x0.device)
        active, steps, metric, start = saved["active"], saved["steps"], saved["metric"], saved["step"]
        history = list(saved["history"])
        gen.set_state(saved["generator"])
    bar = tqdm(range(start, recipe.max_steps), desc=desc, disable=not progress, initial=start, total=recipe.max_steps)
    with eval_mode(net):
        for t in bar:
            if not active.any():
                break
            idx = active.nonzero().squeeze(1)
            xa = x[idx].clone().requires_grad_(True)
            inp = jitter(xa, recipe.jitter if t < recipe.jitter_until * recipe.max_steps else 0, gen)
            loss, m = loss_fn(features(model, inp, layers), xa, idx.to(x.device))
            if recipe.tv_weight:
                hw = xa.shape[-1] * xa.shape[-2]
                loss = loss + recipe.tv_weight * objectives.tv(xa) / (hw * recipe.tv_sigma**2)
            (grad,) = torch.autograd.grad(loss.sum(), xa)
            with torch.no_grad():
                prev = x[idx]
                if recipe.optimizer == "sgd":
                    if recipe.clip is not None:
                        grad = grad.clamp(-recipe.clip, recipe.clip)
                    grad = grad + recipe.weight_decay * prev
                    lr = recipe.lr * recipe.lr_factor ** (t // recipe.lr_step)
                    buf1[idx] = recipe.momentum * buf1[idx] - lr * grad
                    new = prev + buf1[idx]
                else:  # Adam with bias correction; lr decays linearly to 10 %
                    grad = grad + recipe.weight_decay * prev
                    buf1[idx] = 0.9 * buf1[idx] + 0.1 * grad
                    buf2[idx] = 0.999 * buf2[idx] + 0.001 * grad * grad
                    n = steps[idx].to(x.dtype).view(-1, 1, 1, 1) + 1
                    mhat = buf1[idx] / (1 - 0.9**n)
                    vhat = buf2[idx] / (1 - 0.999**n)
                    lr = recipe.lr * (1 - 0.9 * t / max(recipe.max_steps - 1, 1))
                    new = prev - lr * mhat / (vhat.sqrt() + 1e-8)
                x[idx] = new
                steps[idx] += 1
                metric[idx] = m.detach().float().cpu()
                row = torch.full((b,), float("nan"))
                row[idx] = m.detach().float().cpu()
                history.append(row)
                if recipe.tol is not None:
                    change = (new - prev).flatten(1).norm(dim=1) / new.flatten(1).norm(dim=1).clamp_min(1e-12)
                    active[idx[(change < recipe.tol).cpu()]] = False
            bar.set_postfix(metric=f"{float(m.detach().mean()):.3g}", running=int(active.sum()))
            done = t + 1
            last = done >= recipe.max_steps or not active.any() or (stop_after is not None and done >= stop_after)
            if checkpoint is not None and (done % save_every == 0 or last):
                atomic_torch_save({"key": repr(key), "x": x.cpu(), "buf1": buf1.cpu(), "buf2": buf2.cpu(),
                                   "active": active, "steps": steps, "metric": metric, "step": done,
                                   "history": history, "generator": gen.get_state()}, checkpoint)  # fmt: skip
            if stop_after is not None and done >= stop_after:
                break
    bar.close()
    return InversionResult(x, torch.empty(0), steps, metric, history, recipe)


def _finish(result: InversionResult, preprocess) -> InversionResult:
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
    recipe = get_recipe(recipe)
    layers = list(targets)
    b = next(iter(targets.values())).shape[0]
    if x0 is None:
        if image_shape is None:
            raise ValueError("pass x0 or image_shape=(H, W)")
        x0 = uniform_init((b, 3, *image_shape), torch.Generator().manual_seed(seed), recipe.init_scale)
    data_term = objectives.normalized_code_loss if recipe.normalized else objectives.code_loss

    def loss_fn(codes, _x, idx):
        loss = sum(data_term(codes[name], targets[name][idx]) for name in layers)
        err = torch.stack([objectives.relative_error(codes[name], targets[name][idx]) for name in layers]).mean(0)
        return loss, err

    result = optimize(model, layers, loss_fn, x0, recipe, seed=seed, progress=progress, checkpoint=checkpoint,
                      stop_after=stop_after, desc=desc)  # fmt: skip
    with torch.no_grad(), eval_mode(unwrap(model)):  # the final error, measured without jitter
        codes = features(model, result.images, layers)
        all_idx = torch.arange(b)
        errors = [objectives.relative_error(codes[n], targets[n][all_idx]) for n in layers]
        result.error = torch.stack(errors).mean(0)
    return _finish(result, model.preprocess)


def invert_code(model, image: torch.Tensor, layer: str, mode: str = "none", *, filters: Sequence[int] | int = 0,
                draws: int = 1, recipe: str | Recipe = "modern", seed: int = 0, style: torch.Tensor | None = None,
                progress: bool = True, checkpoint: Path | None = None) -> InversionResult:  # fmt: skip
    """One call for the paper's modes on one image (1×3×H×W, model input):

    * ``none`` — plain code inversion;
    * ``feature_map`` — FMI, one inversion per entry of ``filters``, all in one batch;
    * ``random`` — RMCI, ``draws`` random modifications in one batch (seeded);
    * ``purposeful`` — the non-optimised purposeful mode with ``style`` (1×3×h×w)."""
    if mode not in _codes.MODES:
        raise ValueError(f"unknown code modification {mode!r}; valid: {', '.join(_codes.MODES)}")
    with torch.no_grad():
        code = features(model, image, [layer])[layer].detach()
    if mode == "feature_map":
        ks = [filters] if isinstance(filters, int) else list(filters)
        target = _codes.feature_map(code.expand(len(ks), -1, -1, -1), torch.tensor(ks))
    elif mode == "random":
        gen = torch.Generator().manual_seed(seed)
        target = _codes.random_modification(code.expand(draws, -1, -1, -1).contiguous(), gen)
    elif mode == "purposeful":
        if style is None:
            raise ValueError("mode 'purposeful' needs style=<1×3×h×w image>")
        with torch.no_grad():
            s_code = features(model, style, [layer])[layer]
        target = _codes.purposeful(code, s_code)
    else:
        target = code.clone()
    return invert(model, {layer: target}, recipe, image_shape=tuple(image.shape[-2:]), seed=seed, progress=progress,
                  checkpoint=checkpoint, desc=f"{mode} {layer}")  # fmt: skip


def lr_at(recipe: Recipe, t: int) -> float:
    """The learning rate a recipe uses at step ``t`` (for plots and docs)."""
    if recipe.optimizer == "sgd":
        return recipe.lr * recipe.lr_factor ** (t // recipe.lr_step)
    return recipe.lr * (1 - 0.9 * t / max(recipe.max_steps - 1, 1))


__all__ = ["RECIPES", "InversionResult", "Recipe", "features", "get_recipe", "invert", "invert_code", "lr_at",
           "optimize"]
