"""Shared helpers for the benchmark scripts: timing and a fixed set of inputs."""

from __future__ import annotations

import platform
import time

import torch


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls (after the caller's warm-up) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def side_by_side(fns: dict, repeat: int = 3) -> dict:
    """Best wall time and last result of each function in ``fns`` (name -> callable), called in
    turn ``repeat`` times round-robin, so that a machine whose speed drifts (a shared VM) slows
    every contender alike; the caller warms each up first."""
    best = {name: (float("inf"), None) for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            out = fn()
            best[name] = (min(best[name][0], time.perf_counter() - start), out)
    return best


def machine() -> str:
    """The machine in words, with the vector instructions torch dispatches to (AVX2 vs AVX-512
    kernels change the ratios; see README.md)."""
    isa = torch.backends.cpu.get_cpu_capability()
    return (f"{platform.processor() or platform.machine()} ({isa}), {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}")  # fmt: skip


def sample_batch(preprocess, n: int, size: int) -> torch.Tensor:
    """n distinct inputs from the committed photos: each photo and its mirror image, resized."""
    import torch.nn.functional as F

    import zfhelpers

    names = zfhelpers.sample_images()
    x, _ = zfhelpers.load_batch(names, preprocess)
    x = torch.cat([x, x.flip(-1)])
    while x.shape[0] < n:
        x = torch.cat([x, x.roll(17, dims=-1)])
    return F.interpolate(x[:n], size=(size, size), mode="bilinear", align_corners=False)


def result(name: str, ratio: float, goal: float) -> None:
    """One figure of merit in the form ``run.py`` collects: ``RESULT <name> <ratio> goal <goal>``
    (higher is better; the goal is met when ratio >= goal)."""
    print(f"RESULT {name} {ratio:.2f} goal {goal:g}", flush=True)
