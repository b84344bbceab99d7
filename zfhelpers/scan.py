"""Dataset scan for ZF Fig. 2: per channel, the top-k activations over a dataset with at most one
per image (ZF §4: "the top 9 activations"; one per image is the evident intent, papers.md §1.4).

One streaming pass in ``inference_mode``: for each batch, the forward stops at the layer, each
image contributes its strongest position per channel, and a running top-k per channel is merged.
The state is checkpointed atomically every ``save_every`` batches, so a killed scan resumes where it
stopped and ends with the same result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .activations import eval_mode, resolve_layer, unwrap
from .backprop import forward_to
from .io import atomic_torch_save


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


def scan_topk(model, layer: str, inputs: torch.Tensor, *, k: int = 9, batch_size: int = 64, prepare=None,
              checkpoint: Path | None = None, save_every: int = 20, progress: bool = True,
              stop_after: int | None = None) -> TopK:  # fmt: skip
    """Top-``k`` (value, image, position) per channel of ``layer`` over ``inputs`` (N×…).

    ``prepare`` maps a slice of ``inputs`` to model-ready tensors (e.g. uint8 → normalised).
    ``stop_after`` ends the call after that many batches, as a kill would (for tests)."""
    net, module = unwrap(model), resolve_layer(model, layer)
    n = len(inputs)
    state, start = None, 0
    if checkpoint is not None and Path(checkpoint).is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if (saved["layer"], saved["k"], saved["n"], saved["batch_size"]) != (layer, k, n, batch_size):
            raise ValueError(f"{checkpoint} belongs to another scan; delete it or pick another path")
        state, start = (saved["values"], saved["images"], saved["positions"]), saved["next"]
    batches = list(range(start, n, batch_size))
    for b, i in enumerate(tqdm(batches, desc=f"scan {layer}", disable=not progress)):
        x = inputs[i : i + batch_size]
        x = x if prepare is None else prepare(x)
        with eval_mode(net), torch.inference_mode():
            acts = forward_to(net, module, x)
        flat = acts.flatten(2)  # B×C×(HW)
        best = flat.max(2)
        w = acts.shape[-1]
        pos = torch.stack([best.indices // w, best.indices % w], -1)  # B×C×2
        ids = torch.arange(i, i + len(x)).view(-1, 1).expand_as(best.values)
        # the running state lives on the CPU (small, and checkpointed), whatever the model's device
        values, images, positions = best.values.T.cpu(), ids.T, pos.transpose(0, 1).cpu()
        if state is None:
            c = values.shape[0]
            state = (torch.full((c, 0), float("-inf")), torch.full((c, 0), -1, dtype=torch.long),
                     torch.zeros((c, 0, 2), dtype=torch.long))  # fmt: skip
        state = _merge(state, values, images.contiguous(), positions.contiguous(), k)
        done = i + len(x)
        last = done >= n or (stop_after is not None and b + 1 >= stop_after)
        if checkpoint is not None and ((b + 1) % save_every == 0 or last):
            atomic_torch_save({"values": state[0], "images": state[1], "positions": state[2], "next": done,
                               "layer": layer, "k": k, "n": n, "batch_size": batch_size}, checkpoint)  # fmt: skip
        if stop_after is not None and b + 1 >= stop_after:
            break
    return TopK(state[0], state[1], state[2], layer)
