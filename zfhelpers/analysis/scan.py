"""Dataset scan for ZF Fig. 2: per channel, the top-k activations over a dataset with at most one
per image (ZF §4: "the top 9 activations"; one per image is the evident intent, papers.md §1.4).

One streaming pass in ``inference_mode``: for each batch, the forward stops at the layer, each
image contributes its strongest position per channel, and a running top-k per channel is merged.
The state is checkpointed atomically every ``save_every`` batches, so a killed scan resumes where it
stopped and ends with the same result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import checks
from ..io import atomic_torch_save
from ..models.capture import capture_detached
from ..models.zoo import adapt
from ..progress import tqdm


@dataclass
class TopK:
    values: torch.Tensor  # C×k, descending
    images: torch.Tensor  # C×k dataset indices (−1 where fewer than k images were seen)
    positions: torch.Tensor  # C×k×2 (y, x) in the layer's map
    layer: str


def _merge(state, values, images, positions, k):
    v = torch.cat([state[0], values], 1)
    i = torch.cat([state[1], images], 1)
    p = torch.cat([state[2], positions], 1)
    top = v.topk(min(k, v.shape[1]), dim=1)
    idx = top.indices
    return top.values, i.gather(1, idx), p.gather(1, idx[..., None].expand(-1, -1, 2))


def _reduce(acts: torch.Tensor, first: int):
    """Per image and channel: the strongest activation, its position, the image's index."""
    best = acts.flatten(2).max(2)
    w = acts.shape[-1]
    pos = torch.stack([best.indices // w, best.indices % w], -1)  # B×C×2
    ids = torch.arange(first, first + acts.shape[0]).view(-1, 1).expand_as(best.values)
    # the running state lives on the CPU (small, and checkpointed), whatever the model's device
    return best.values.T.cpu(), ids.T.contiguous(), pos.transpose(0, 1).cpu().contiguous()


def scan_topk(model, inputs: torch.Tensor, *, layer: str | Sequence[str], k: int = 9, batch_size: int = 64,
              prepare=None, checkpoint: Path | None = None, save_every: int = 20, progress: bool = True,
              stop_after: int | None = None) -> TopK | dict[str, TopK]:  # fmt: skip
    """Top-``k`` (value, image, position) per channel of ``layer`` over ``inputs`` (N×…).

    ``layer`` may be a list: all are scanned in the same pass, which stops at the deepest of them
    (returns ``{layer: TopK}``). Each layer's maps are reduced inside its forward hook, so no
    activation is kept. ``prepare`` maps a slice of ``inputs`` to model-ready tensors (e.g. uint8
    → normalised). ``stop_after`` ends the call after that many batches, as a kill would (tests)."""
    names = [layer] if isinstance(layer, str) else list(layer)
    lm = adapt(model)
    for name in names:
        lm.check_layer(name)
    k = checks.positive_int(k, name="k")
    n = len(inputs)
    if n == 0:
        raise checks.InputError("inputs is empty: nothing to scan")
    key = (names, k, n, batch_size)
    states: dict[str, tuple] = {}
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if (saved["layers"], saved["k"], saved["n"], saved["batch_size"]) != key:
            raise ValueError(f"{checkpoint} belongs to another scan; delete it or pick another path")
        states, start = {name: tuple(saved["state"][name]) for name in names}, saved["next"]
    batches = list(range(start, n, batch_size))
    for b, i in enumerate(tqdm(batches, desc=f"scan {', '.join(names)}", disable=not progress)):
        x = inputs[i : i + batch_size]
        x = x if prepare is None else prepare(x)
        reduced = capture_detached(lm, x, names, reduce=lambda out, first=i: _reduce(out, first))
        for name in names:
            values, images, positions = reduced[name]
            if name not in states:
                c = values.shape[0]
                states[name] = (torch.full((c, 0), float("-inf")), torch.full((c, 0), -1, dtype=torch.long),
                                torch.zeros((c, 0, 2), dtype=torch.long))  # fmt: skip
            states[name] = _merge(states[name], values, images, positions, k)
        done = i + len(x)
        last = done >= n or (stop_after is not None and b + 1 >= stop_after)
        if checkpoint is not None and ((b + 1) % save_every == 0 or last):
            atomic_torch_save({"state": {m: list(v) for m, v in states.items()}, "next": done, "layers": names,
                               "k": k, "n": n, "batch_size": batch_size}, checkpoint)  # fmt: skip
        if stop_after is not None and b + 1 >= stop_after:
            break
    result = {name: TopK(*states[name], name) for name in names}
    return result[layer] if isinstance(layer, str) else result
