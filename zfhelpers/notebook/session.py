"""A notebook run: seeds, the preset that produced its outputs, its figures and its results file.

``run = zfhelpers.notebook.start("07_occlusion", globals())`` right after the parameters cell;
then ``run.save_figure(...)`` for every figure and ``run.claim(...)`` for every measured statement.
The results file (:mod:`zfhelpers.claims.record`) is rewritten atomically after each claim, so a
run that stops half-way leaves the claims it measured and nothing half-written. Under
``python -m zfhelpers figures`` both go to a staging folder (:func:`zfhelpers.notebook.save.output_dir`)
that is published only when the notebook succeeds."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from ..claims.record import Claim, Results
from ..paths import PRESET_ENV
from . import save

_NOT_PARAMETERS = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def setup(seed: int = 0) -> None:
    """Seed Python, NumPy and torch; show inline figures as JPEG.

    The saved figures in ``figures/`` are lossless PNG; the copies embedded in the committed
    notebooks are previews, and JPEG keeps the notebooks a few hundred kB instead of megabytes."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds legacy global-state users (e.g. scipy, skimage)
    torch.manual_seed(seed)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # not in a kernel
        return
    set_matplotlib_formats("jpeg", pil_kwargs={"quality": 80})


def parameters(namespace: dict) -> dict:
    """The notebook's parameters: the plain values (str, number, bool, list, dict, None) defined so
    far, which right after the parameters cell are exactly its assignments."""
    plain = (str, int, float, bool, list, tuple, dict, type(None))
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in _NOT_PARAMETERS and isinstance(v, plain)}  # fmt: skip


class NotebookRun:
    """What one execution of a numbered notebook produced."""

    def __init__(self, notebook: str, params: dict, preset: str):
        self.notebook, self.preset, self.params = notebook, preset, params
        self.profile = str(params.get("profile", "offline"))
        self.results = Results(notebook, self.profile, preset, params=params)

    @property
    def results_dir(self) -> Path:
        return save.output_dir() / "results"

    def describe(self, *, model: str, data: str) -> None:
        """Name the model and data the results come from (stored in the results file)."""
        self.results.model, self.results.data = model, data
        self.results.save(self.results_dir)

    def save_figure(self, fig, name: str, *, model: str, data: str, **kwargs) -> list[Path]:
        paths = save.save_figure(fig, name, model=model, data=data, **kwargs)
        if name not in self.results.figures:
            self.results.figures.append(name)
        if not self.results.model:
            self.results.model, self.results.data = model, data
        self.results.save(self.results_dir)
        return paths

    def claim(self, claim: Claim) -> Claim:
        """Record a measured statement (built by the package's analysis functions)."""
        self.results.add(claim)
        self.results.save(self.results_dir)
        return claim


def start(notebook: str, namespace: dict, *, seed: int | None = None) -> NotebookRun:
    """Seed everything, record the parameters and say which preset produced these outputs."""
    params = parameters(namespace)
    setup(int(params.get("seed", 0) if seed is None else seed))
    preset = os.environ.get(PRESET_ENV, "quick")
    where = ("the notebook's defaults" if preset == "quick"
             else f"`python -m zfhelpers figures --preset {preset}`")  # fmt: skip
    print(f"{notebook}: preset '{preset}' ({where}); profile {params.get('profile', 'offline')}; "
          f"measured claims go to <figures>/results/{notebook}.{params.get('profile', 'offline')}.json")  # fmt: skip
    return NotebookRun(notebook, params, preset)
