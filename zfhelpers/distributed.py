"""A folder scan on one process or many (``torchrun``), with the same result file either way.

``python -m zfhelpers scan …`` runs :func:`run_scan` in one process; under ``torchrun
--nproc-per-node N -m zfhelpers scan …`` each of the N processes (ranks) reads ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` from the environment, joins a process group (gloo on CPUs, NCCL
on GPUs, one GPU per rank), scans its contiguous shard of the sorted file list with its own
DataLoader workers and its own checkpoint, then all ranks all-gather their per-shard top-k and rank
0 merges them into the global top-k (:func:`zfhelpers.analysis.scan.merge_topk`, ranked by value
then image index, so the merge equals the single-process scan) and writes RESULT.json.

A killed run is rerun with the same command: each rank resumes from its checkpoint
(``<checkpoint_dir>/rank<r>-of-<N>.pt``, keyed by a fingerprint that includes the shard). Ranks that
finished wait in the all-gather for those still scanning, up to :data:`GATHER_TIMEOUT`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from . import fingerprint
from .analysis.scan import merge_topk, scan_files
from .analysis.scan_result import result_document, write_scan_result
from .checks import InputError
from .data.folders import ImageFiles

#: How long a finished rank waits for the others (a resumed rank may have hours left).
GATHER_TIMEOUT = timedelta(hours=48)


@dataclass(frozen=True)
class Rank:
    """This process's place in the run (``world == 1``: no process group)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0


def env_rank() -> Rank:
    """The rank ``torchrun`` describes in the environment (one process when it does not)."""

    def get(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError as exc:
            raise InputError(f"environment variable {name}={os.environ[name]!r} is not an integer") from exc

    world = get("WORLD_SIZE", 1)
    r = Rank(get("RANK", 0), world, get("LOCAL_RANK", 0), get("LOCAL_WORLD_SIZE", world))
    if not (world >= 1 and 0 <= r.rank < world and 0 <= r.local_rank < r.local_world):
        raise InputError(f"inconsistent RANK={r.rank} / WORLD_SIZE={world} / LOCAL_RANK={r.local_rank}")
    return r


@contextmanager
def process_group(device_type: str) -> Iterator[Rank]:
    """Join the ``torchrun`` process group (gloo for CPU, NCCL for CUDA) for the body; leave it after."""
    r = env_rank()
    if r.world == 1:
        yield r
        return
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(r.local_rank)
    dist.init_process_group(backend, timeout=GATHER_TIMEOUT)
    try:
        yield replace(r, backend=backend)
    finally:
        dist.destroy_process_group()


def all_gather(obj, r: Rank) -> list:
    """Every rank's ``obj`` (picklable), in rank order."""
    if r.world == 1:
        return [obj]
    out = [None] * r.world
    dist.all_gather_object(out, obj)
    return out


def resolve_device(device: str, r: Rank) -> torch.device:
    """``auto`` → this rank's GPU when CUDA is available, else the CPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"unknown device {device!r}; valid: auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but torch sees no CUDA GPU here; use --device cpu or auto")
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", r.local_rank % torch.cuda.device_count())


def default_workers(r: Rank, device: torch.device) -> int:
    """DataLoader workers per rank: this rank's share of the CPUs, less one for the forward pass on
    a CPU; at most 8 (decode keeps up with a GPU's forward of small layers well before that)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cpus // r.local_world)
    return min(8, share if device.type == "cuda" else max(1, share - 1))


@dataclass
class ScanRun:
    """Rank 0's view of a finished scan: the result document, the slowest rank's scan time and the
    images this call scanned (fewer than the folder holds when it resumed from checkpoints)."""

    document: dict
    seconds: float
    images: int


def rank_checkpoint(folder: Path, r: Rank) -> Path:
    return Path(folder) / f"rank{r.rank:03d}-of-{r.world:03d}.pt"


def run_scan(lm, data: Path, *, layers: Sequence[str], k: int, out: Path, batch_size: int = 64,
             workers: int | None = None, device: str = "auto", channels_last: bool = False,
             autocast: str | None = None, skip_unreadable: bool = False, checkpoint_dir: Path | None = None,
             progress: bool = True, stop_after: int | None = None) -> ScanRun | None:  # fmt: skip
    """Scan the image folder ``data`` with ``lm`` (moved to this rank's device) and write ``out``.

    Returns a :class:`ScanRun` on rank 0 (None on the other ranks, and when ``stop_after`` ended
    the scan early, as a kill would)."""
    with process_group(resolve_device(device, env_rank()).type) as r:
        dev = resolve_device(device, r)
        lm.model.to(dev)
        if channels_last:
            lm.model.to(memory_format=torch.channels_last)
        files = ImageFiles(data, lm.preprocess)
        if len(set(all_gather(files.digest(), r))) > 1:
            raise InputError(f"the ranks see different files under {data}; every rank must read the same folder")
        start = time.perf_counter()
        res = scan_files(lm, files, layer=list(layers), k=k, batch_size=batch_size, workers=default_workers(r, dev)
                         if workers is None else workers, shard=(r.rank, r.world), channels_last=channels_last,
                         autocast=autocast, skip_unreadable=skip_unreadable, stop_after=stop_after,
                         checkpoint=None if checkpoint_dir is None else rank_checkpoint(checkpoint_dir, r),
                         progress=progress and r.main)  # fmt: skip
        if stop_after is not None:
            return None
        parts = all_gather((res.tops, res.skipped, time.perf_counter() - start, res.images - res.resumed), r)
        run = None
        if r.main:
            tops = {name: merge_topk([p[0][name] for p in parts], k) for name in layers}
            skipped = sorted(s for p in parts for s in p[1])
            document = result_document(tops, files, model=lm.name, model_digest=fingerprint.model_digest(lm), k=k,
                                       batch_size=batch_size, skipped=skipped)  # fmt: skip
            write_scan_result(out, document)
            run = ScanRun(document, max(p[2] for p in parts), sum(p[3] for p in parts))
        if r.world > 1:
            dist.barrier()  # every rank returns once the file is in place
        return run
