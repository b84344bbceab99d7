"""Training the twins (ZF §3) with checkpoints on a ZF-like schedule, resumable after a kill.

ZF's recipe, kept: SGD with momentum 0.9, learning rate 1e-2, mini-batch 128, dropout 0.5 in
fc6/fc7, biases 0, filter-RMS renormalisation to radius 0.1 after every step.
Changed: the initial weights above the first layer. ZF draw all from N(0, 0.01²) (``init="zf"``);
through eight weight layers that shrinks the signal ~10⁴-fold, and on these twins the loss is still
2.302 (chance) after 80 steps. He-normal everywhere (``init="he"``) learns (69 % test accuracy in
the same 80 steps) but leaves conv1 full of its initial noise: upsampled Fashion-MNIST has no high
frequencies, so nothing trains them away (91 % of the layer-1 filter energy above 1/8 cycle/pixel).
The default ``init="zf_conv1"`` keeps ZF's N(0, 0.01²) for conv1 and uses He-normal above it:
70 % after 80 steps, and 37 % high-frequency energy.
Scaled: epochs (ZF: 70) and the checkpoint schedule (ZF Fig. 4 shows epochs 1, 2, 5, 10, 20, 30,
40, 64)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..fingerprint import model_digest, params_digest, tensor_digest
from ..io import atomic_torch_save
from ..progress import tqdm
from .twins import make_twin, renormalize_filters


@dataclass
class TrainConfig:
    arch: str = "zf"
    epochs: int = 10
    schedule: tuple[int, ...] = (1, 2, 3, 5, 7, 10)
    batch_size: int = 128
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    renorm_radius: float | None = 0.1  # None switches ZF's renormalisation off (Fig. 6a)
    train_subset: int | None = None  # first N training images (None: all 60 000)
    init: str = "zf_conv1"  # "zf_conv1", "he" or "zf" (N(0, 0.01²) everywhere, ZF §3)
    seed: int = 0
    history: list = field(default_factory=list, compare=False)


INITS = ("zf_conv1", "he", "zf")


def init_weights_(model: nn.Module, scheme: str = "zf_conv1") -> None:
    """Biases 0; weights N(0, 1e-2²) as in ZF §3 (``"zf"``), He-normal (``"he"``), or ZF's for the
    first convolution and He-normal above it (``"zf_conv1"``, see the module docstring)."""
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; valid: {', '.join(INITS)}")
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            if scheme == "zf" or (scheme == "zf_conv1" and m is first):
                nn.init.normal_(m.weight, 0.0, 1e-2)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500, prepare=None) -> float:
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size] if prepare is None else prepare(x[i : i + batch_size])
            correct += int((model(xb).argmax(1) == y[i : i + batch_size]).sum())
    return correct / len(x)


def run_fingerprint(config: dict, model: nn.Module, train_data, test_data, prepare=None) -> str:
    """What determines a training run's result: every configuration value, the initial weights
    (architecture and initialisation code included), both data sets and the input mapping."""
    name = None if prepare is None else f"{prepare.__module__}.{getattr(prepare, '__qualname__', repr(prepare))}"
    return params_digest(config=config, init=model_digest(model), prepare=name,
                         train=[tensor_digest(t) for t in train_data],
                         test=[tensor_digest(t) for t in test_data])  # fmt: skip


def resumable_state(last: Path, fingerprint: str) -> dict | None:
    """The checkpoint ``last`` if it was written by a run with this fingerprint, else None — with a
    message on stderr when a checkpoint is there but belongs to another run (never silently reused)."""
    if not last.is_file():
        return None
    try:
        state = torch.load(last, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable (truncated by a full disk, another format): start afresh
        print(f"{last}: unreadable checkpoint ({type(exc).__name__}: {exc}); training starts afresh", file=sys.stderr)
        return None
    found = state.get("fingerprint") if isinstance(state, dict) else None
    if found == fingerprint:
        return state
    why = (
        "has no fingerprint (written by an older version)"
        if found is None
        else (f"was written for other settings or data (fingerprint {found[:12]}, this run {fingerprint[:12]})")
    )
    print(f"{last} {why}; training starts afresh and will overwrite it", file=sys.stderr)
    return None


def train(
    cfg: TrainConfig,
    out_dir: Path,
    train_data,
    test_data,
    *,
    progress: bool = True,
    stop_after: int | None = None,
    prepare=None,
) -> dict:
    """Train (or resume) and write ``{arch}_epoch{E:03d}.pt`` at the schedule's epochs plus a
    ``{arch}_last.pt`` after every epoch. ``*_data`` are (inputs, labels); ``prepare`` maps a batch
    of inputs to model-ready tensors on the fly (e.g. :func:`zfhelpers.data.fashion.to_model_input`, so
    that 60 000 upsampled images never sit in memory at once).

    Resuming: if ``{arch}_last.pt`` exists with the same fingerprint (:func:`run_fingerprint`: the
    configuration, the initial weights, the training and test data and ``prepare``), training
    continues after its epoch with the same optimiser state and RNG state, so a killed run loses at
    most the epoch in progress and ends with the same weights as an uninterrupted one. A checkpoint
    with another fingerprint is never reused: training starts afresh and says why. ``stop_after``
    ends this call after that epoch, as a kill would (for tests and for splitting long runs)."""
    out_dir = Path(out_dir)
    last = out_dir / f"{cfg.arch}_last.pt"
    key = {k: v for k, v in asdict(cfg).items() if k != "history"}
    torch.manual_seed(cfg.seed)
    model = make_twin(cfg.arch)
    init_weights_(model, cfg.init)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    start, history = 1, []
    generator = torch.Generator().manual_seed(cfg.seed)
    x_train, y_train = train_data
    if cfg.train_subset:
        x_train, y_train = x_train[: cfg.train_subset], y_train[: cfg.train_subset]
    fp = run_fingerprint(key, model, (x_train, y_train), test_data, prepare)
    state = resumable_state(last, fp)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start, history = state["epoch"] + 1, json.loads(state["history"])
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(start, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        batches = range(0, len(order), cfg.batch_size)
        total = 0.0
        for i in tqdm(batches, desc=f"{cfg.arch} epoch {epoch}/{cfg.epochs}", disable=not progress, leave=False):
            idx = order[i : i + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            xb = x_train[idx] if prepare is None else prepare(x_train[idx])
            loss = loss_fn(model(xb), y_train[idx])
            loss.backward()
            opt.step()
            if cfg.renorm_radius is not None:
                renormalize_filters(model, cfg.renorm_radius)
            total += loss.item() * len(idx)
        acc = evaluate(model, *test_data, prepare=prepare)
        history.append({"epoch": epoch, "loss": total / len(x_train), "test_accuracy": acc})
        if epoch in cfg.schedule or epoch == cfg.epochs:
            atomic_torch_save({"model": model.state_dict(), "epoch": epoch, "config": json.dumps(key),
                               "fingerprint": fp}, out_dir / f"{cfg.arch}_epoch{epoch:03d}.pt")  # fmt: skip
        atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                           "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                           "config": json.dumps(key), "history": json.dumps(history), "fingerprint": fp},
                          last)  # fmt: skip
        if stop_after is not None and epoch >= stop_after:
            break
    return {"model": model, "history": history}
