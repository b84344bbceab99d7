"""Dataset scan for ZF Fig. 2 and Fig. 4: per channel, the top-k activations over a dataset with at
most one per image (ZF §4: "the top 9 activations"; one per image is the evident intent, papers.md §1.4).

One streaming pass without autograd: for each batch the forward stops at the deepest scanned
layer, each image contributes its strongest position per channel (the first in row-major order
where a map has several equal maxima), and a running top-k per channel is merged. Entries are
ranked by **value descending, then image index ascending** (:data:`ORDER`) — a total order, since an
image appears at most once per channel — so the result does not depend on how the data were cut
into batches or shards: merging per-shard top-k lists (:func:`merge_topk`) gives exactly the
single-pass result.

Inputs are an in-memory tensor (N×…, :func:`scan_topk`) or an image folder streamed through
DataLoader workers (:class:`zfhelpers.data.folders.ImageFiles`, :func:`scan_files`; a shard of it
per process under ``torchrun``, see :mod:`zfhelpers.distributed`). The state is checkpointed
atomically every ``save_every`` batches, keyed by a fingerprint of everything that determines the
result (:mod:`zfhelpers.fingerprint`: model weights, data, preprocessing, layers, k, batching,
shard), so a killed scan resumes where it stopped and ends with the same result, and a checkpoint
of another scan is never reused."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import checks, fingerprint
from ..data.folders import ImageFiles, loader
from ..models.capture import capture_detached
from ..models.zoo import adapt
from ..progress import tqdm

#: How entries are ranked everywhere (single pass, shards, merges, result files).
ORDER = "value descending, then image index ascending"
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TopK:
    values: torch.Tensor  # C×k, in ORDER
    images: torch.Tensor  # C×k dataset indices (−1 where fewer than k images were seen)
    positions: torch.Tensor  # C×k×2 (y, x) in the layer's map
    layer: str


@dataclass
class FileScan:
    """What :func:`scan_files` found in its shard: ``tops`` per layer (image indices into the whole
    :class:`ImageFiles`), the unreadable files it skipped, how many images the shard holds and how
    many of them a checkpoint had already covered."""

    tops: dict[str, TopK]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    images: int = 0
    resumed: int = 0


def _ranked(values: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Per row, the column order of :data:`ORDER` (two stable sorts: by image, then by value)."""
    by_image = images.argsort(dim=1, stable=True)
    by_value = values.gather(1, by_image).argsort(dim=1, descending=True, stable=True)
    return by_image.gather(1, by_value)


def _merge(state, values, images, positions, k):
    v = torch.cat([state[0], values], 1)
    i = torch.cat([state[1], images], 1)
    p = torch.cat([state[2], positions], 1)
    idx = _ranked(v, i)[:, :k]
    return v.gather(1, idx), i.gather(1, idx), p.gather(1, idx[..., None].expand(-1, -1, 2))


def _empty(channels: int):
    return (torch.full((channels, 0), float("-inf")), torch.full((channels, 0), -1, dtype=torch.long),
            torch.zeros((channels, 0, 2), dtype=torch.long))  # fmt: skip


def _padded(state, k: int, layer: str) -> TopK:
    """The state as a :class:`TopK` of exactly ``k`` columns (−inf / −1 where fewer images)."""
    v, i, p = state
    missing = k - v.shape[1]
    if missing > 0:
        v = torch.cat([v, torch.full((v.shape[0], missing), float("-inf"))], 1)
        i = torch.cat([i, torch.full((i.shape[0], missing), -1, dtype=torch.long)], 1)
        p = torch.cat([p, torch.zeros((p.shape[0], missing, 2), dtype=torch.long)], 1)
    return TopK(v, i, p, layer)


def merge_topk(parts: Sequence[TopK], k: int | None = None) -> TopK:
    """The top-``k`` of several scans of disjoint images (shards), ranked by :data:`ORDER`: equal to
    one scan of all of them. Padding entries (image −1) are dropped before merging."""
    if not parts:
        raise checks.InputError("merge_topk needs at least one TopK")
    k = k or parts[0].values.shape[1]
    filled = [p for p in parts if p.values.shape[0] > 0] or list(parts)  # an empty shard knows no channels
    state = _empty(filled[0].values.shape[0])
    for part in filled:
        keep = part.images >= 0
        if not bool(keep.all()):  # padding only ever sits at the end of a row
            width = int(keep.sum(1).min())
            part = TopK(part.values[:, :width], part.images[:, :width], part.positions[:, :width], part.layer)
        state = _merge(state, part.values, part.images, part.positions, k)
    return _padded(state, k, parts[0].layer)


def _reduce(acts: torch.Tensor, ids: torch.Tensor):
    """Per image and channel: the strongest activation, its position, the image's index."""
    best = acts.flatten(2).max(2)
    w = acts.shape[-1]
    pos = torch.stack([best.indices // w, best.indices % w], -1)  # B×C×2
    # the running state lives on the CPU in float32 (small, checkpointed), whatever the model's device
    values = best.values.T.float().cpu()
    return values, ids.view(1, -1).expand_as(values).contiguous(), pos.transpose(0, 1).cpu().contiguous()


def _device(lm) -> torch.device:
    return next(lm.model.parameters(), torch.empty(0)).device


def _autocast(device: torch.device, autocast: str | None):
    if autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST[checks.choice(autocast, list(AUTOCAST),
                                                                                name="autocast")])  # fmt: skip


def _stream(lm, names: list[str], batches: Iterable, states: dict, *, k: int, prepare: Callable | None,
            channels_last: bool, autocast: str | None, save: Callable[[int], None] | None, save_every: int,
            stop_after: int | None) -> None:  # fmt: skip
    """Run ``batches`` of ``(image indices, inputs, images done after it)`` through the model,
    merging into ``states`` in place; ``save(done)`` every ``save_every`` batches and at the end."""
    device = _device(lm)
    done, b = None, 0
    for b, (ids, x, done) in enumerate(batches, 1):
        if len(x):
            x = x.to(device, non_blocking=True)
            x = x if prepare is None else prepare(x)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, autocast):
                reduced = capture_detached(lm, x, names, reduce=lambda out, ids=ids: _reduce(out, ids))
            for name in names:
                values, images, positions = reduced[name]
                if name not in states:
                    states[name] = _empty(values.shape[0])
                states[name] = _merge(states[name], values, images, positions, k)
        stop = stop_after is not None and b >= stop_after
        if save is not None and (b % save_every == 0 or stop):
            save(done)
        if stop:
            return
    if save is not None and done is not None and b % save_every != 0:
        save(done)


def _check(model, layer, k):
    names = [layer] if isinstance(layer, str) else list(layer)
    if not names:
        raise checks.InputError("no layers to scan; pass at least one layer name")
    lm = adapt(model)
    for name in names:
        lm.check_layer(name)
    return lm, names, checks.positive_int(k, name="k")


def _resume(checkpoint, fp, names, what):
    saved = None if checkpoint is None else fingerprint.load_checkpoint(checkpoint, fp, what=what)
    if saved is None:
        return {}, 0, []
    return {name: tuple(saved["state"][name]) for name in names if name in saved["state"]}, int(saved["next"]), [
        (int(i), str(m)) for i, m in saved.get("skipped", [])]  # fmt: skip


def scan_topk(model, inputs, *, layer: str | Sequence[str], k: int = 9, batch_size: int = 64, prepare=None,
              checkpoint: Path | None = None, save_every: int = 20, progress: bool = True,
              stop_after: int | None = None, workers: int = 0, channels_last: bool = False,
              autocast: str | None = None) -> TopK | dict[str, TopK]:  # fmt: skip
    """Top-``k`` (value, image, position) per channel of ``layer`` over ``inputs``: an N×… tensor,
    or an :class:`ImageFiles` folder (streamed through ``workers`` DataLoader processes; see
    :func:`scan_files` for shards and unreadable files).

    ``layer`` may be a list: all are scanned in the same pass, which stops at the deepest of them
    (returns ``{layer: TopK}``). Each layer's maps are reduced inside its forward hook, so no
    activation is kept. ``prepare`` maps a slice of ``inputs`` to model-ready tensors on the model's
    device (e.g. uint8 → normalised; for folders the default normalises as the files' preprocess
    says). ``channels_last`` / ``autocast`` (``"bf16"``, ``"fp16"``) speed up GPUs; autocast changes
    values by ~1e-2 relative, so near-ties may rank differently. ``stop_after`` ends the call after
    that many batches, as a kill would (tests)."""
    if isinstance(inputs, ImageFiles):
        res = scan_files(model, inputs, layer=layer, k=k, batch_size=batch_size, prepare=prepare,
                         checkpoint=checkpoint, save_every=save_every, progress=progress, stop_after=stop_after,
                         workers=workers, channels_last=channels_last, autocast=autocast)  # fmt: skip
        return res.tops[layer] if isinstance(layer, str) else res.tops
    lm, names, k = _check(model, layer, k)
    batch_size = checks.positive_int(batch_size, name="batch_size")
    n = len(inputs)
    if n == 0:
        raise checks.InputError("inputs is empty: nothing to scan")
    fp = None
    if checkpoint is not None:
        fp = fingerprint.fingerprint(model=fingerprint.model_digest(lm), data=fingerprint.tensor_digest(inputs),
                                     preprocessing=(prepare, channels_last, autocast, _device(lm).type), layers=names,
                                     k=k, batching=batch_size)  # fmt: skip
    states, start, _ = _resume(checkpoint, fp, names, what=f"scan {', '.join(names)}")

    def save(done):
        fingerprint.save_checkpoint(checkpoint, {"state": {m: list(v) for m, v in states.items()}, "next": done}, fp)

    with tqdm(total=n, initial=start, unit="img", desc=f"scan {', '.join(names)}", disable=not progress) as bar:
        batches = _tensor_batches(inputs, start, batch_size, bar)
        _stream(lm, names, batches, states, k=k, prepare=prepare, channels_last=channels_last,
                autocast=autocast, save=save if checkpoint is not None else None, save_every=save_every,
                stop_after=stop_after)  # fmt: skip
    result = {name: _padded(states[name], k, name) for name in names if name in states}
    return result[layer] if isinstance(layer, str) else result


def _tensor_batches(inputs, start: int, batch_size: int, bar) -> Iterator:
    for i in range(start, len(inputs), batch_size):
        x = inputs[i : i + batch_size]
        yield torch.arange(i, i + len(x)), x, i + len(x)
        bar.update(len(x))


def shard_range(n: int, rank: int, world: int) -> range:
    """Images of shard ``rank`` of ``world``: contiguous, sizes differing by at most one."""
    return range(rank * n // world, (rank + 1) * n // world)


def scan_files(model, files: ImageFiles, *, layer: str | Sequence[str], k: int = 9, batch_size: int = 64,
               prepare=None, checkpoint: Path | None = None, save_every: int = 50, progress: bool = True,
               stop_after: int | None = None, workers: int = 0, shard: tuple[int, int] = (0, 1),
               channels_last: bool = False, autocast: str | None = None, skip_unreadable: bool = False,
               seed: int = 0) -> FileScan:  # fmt: skip
    """:func:`scan_topk` over shard ``shard = (rank, world)`` of an image folder, decoded by
    ``workers`` seeded DataLoader processes (pinned memory when the model is on a GPU).

    An unreadable file stops the scan with an :class:`zfhelpers.data.images.ImageLoadError` naming it;
    with ``skip_unreadable`` it is skipped with a warning and listed in ``FileScan.skipped``. The
    checkpoint (one per shard) resumes after the last saved batch, with the same batch boundaries."""
    lm, names, k = _check(model, layer, k)
    batch_size = checks.positive_int(batch_size, name="batch_size")
    rank, world = shard
    indices = shard_range(len(files), rank, world)
    prepare = prepare or files.to_model_input
    device = _device(lm)
    fp = None
    if checkpoint is not None:
        fp = fingerprint.fingerprint(model=fingerprint.model_digest(lm), data=files.digest(),
                                     preprocessing=(files.preprocess, prepare, channels_last, autocast, device.type),
                                     layers=names, k=k, batching=batch_size, shard=[rank, world])  # fmt: skip
    what = f"scan {', '.join(names)}" + (f" (rank {rank} of {world})" if world > 1 else "")
    states, start, skipped = _resume(checkpoint, fp, names, what)

    def save(done):
        payload = {"state": {m: list(v) for m, v in states.items()}, "next": done, "skipped": skipped}
        fingerprint.save_checkpoint(checkpoint, payload, fp)

    dl = loader(files, indices[start:], batch_size=batch_size, workers=workers, pin_memory=device.type == "cuda",
                seed=seed)  # fmt: skip
    with tqdm(total=len(indices), initial=start, unit="img", desc=what, disable=not progress) as bar:
        batches = _file_batches(dl, start, skipped, skip_unreadable, bar)
        _stream(lm, names, batches, states, k=k, prepare=prepare, channels_last=channels_last,
                autocast=autocast, save=save if checkpoint is not None else None, save_every=save_every,
                stop_after=stop_after)  # fmt: skip
    tops = {name: _padded(states.get(name, _empty(0)), k, name) for name in names}
    return FileScan(tops, skipped, len(indices), start)


def _file_batches(dl, start: int, skipped: list, skip_unreadable: bool, bar) -> Iterator:
    from ..data.images import ImageLoadError

    done = start
    for ids, x, bad in dl:
        for i, message in bad:
            if not skip_unreadable:
                raise ImageLoadError(f"cannot read image {message} (pass skip_unreadable / --skip-unreadable "
                                     "to skip such files)")  # fmt: skip
            bar.write(f"warning: skipping unreadable image {message}")
            skipped.append((int(i), message))
        done += len(ids) + len(bad)
        yield ids, x, done
        bar.update(len(ids) + len(bad))
