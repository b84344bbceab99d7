"""Notebook 00: what this machine can run — library versions, which models each profile can load
(and for which notebook task), where every weight file came from with its verified sha256, and a
figure of the classifier's predictions on the sample photos."""

from __future__ import annotations

import platform

import matplotlib.pyplot as plt
import numpy as np

from ..analysis.stats import binomial_ci
from ..claims.record import Claim
from ..models import trained, weights, zoo


def versions() -> str:
    """One line per library the notebooks depend on."""
    import matplotlib
    import torch
    import torchvision

    from .. import __version__

    return "\n".join([
        f"python {platform.python_version()}  torch {torch.__version__}  torchvision {torchvision.__version__}",
        f"numpy {np.__version__}  matplotlib {matplotlib.__version__}  zfhelpers {__version__}",
        f"CUDA available: {torch.cuda.is_available()} (the notebooks run on the CPU)",
    ])  # fmt: skip


def profiles() -> str:
    """Per profile: each task's model (what ``load_model("", profile, task=...)`` gives) and
    whether its weights are on this machine."""
    lines = []
    for profile in zoo.PROFILES:
        ready = {row["model"]: row["available"] for row in zoo.availability(profile)}
        tasks = ", ".join(f"{task} → {name}" + ("" if ready[name] else " (missing)")
                          for task, name in zoo.TASK_MODELS[profile].items())  # fmt: skip
        lines.append(f"{profile:8} {tasks}")
    return "\n".join(lines)


def weight_provenance(profile: str) -> str:
    """Every zoo model of ``profile``: its weight file's origin and sha256 (verified now), or how to
    get it; then the twins trained here (checked against their manifest)."""
    lines = []
    for row in zoo.availability(profile):
        key = zoo.SPECS[row["model"]].weights
        if not row["available"]:
            lines.append(f"{row['model']}: missing — {row['how']}")
            continue
        info = weights.provenance(key)
        lines.append(f"{row['model']}: {info['origin']}\n  sha256 {info['sha256']}\n  {info['description']}")
    for variant, entry in trained.manifest().items():
        last = entry["epochs"][max(entry["epochs"], key=int)]
        ok = weights.sha256sum(trained.twins_dir() / last["file"]) == last["sha256"]
        lines.append(f"twin {variant}: {last['file']} sha256 matches the manifest: {ok}\n  {entry['description']}")
    return "\n".join(lines)


def predictions_figure(samples, probs, categories: list[str], *, k: int = 3, ncols: int = 4, title: str = ""):
    """The photos in rows of ``ncols``, each titled with its name and top-``k`` classes."""
    n = len(samples)
    nrows = -(-n // ncols)
    cols = min(n, ncols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.5 * cols, 2.45 * nrows + 0.6 + 0.12 * k * nrows),
                             squeeze=False, layout="constrained")  # fmt: skip
    top = probs.topk(k, dim=1)
    for ax in axes.flat:
        ax.axis("off")
    for ax, s, values, indices in zip(axes.flat, samples, top.values, top.indices):
        ax.imshow(s.display)
        preds = "\n".join(f"{categories[i]} {v:.2f}" for v, i in zip(values.tolist(), indices.tolist()))
        ax.set_title(f"{s.name}\n{preds}", fontsize=7.5)
    if title:
        fig.suptitle(title, fontsize=9.5)
    return fig


def recognition_claim(probs, names: list[str], labels: dict[str, int], *, k: int, model: str) -> Claim | None:
    """How many of the photos that have an ImageNet label (``data/images/labels.json``) have it among
    the top ``k`` classes, with a Wilson interval; chance is k/1000. None if no photo has a label."""
    rows = [i for i, name in enumerate(names) if name in labels]
    if not rows:
        return None
    hits = sum(int(labels[names[i]] in probs[i].topk(k).indices.tolist()) for i in rows)
    ci = binomial_ci(hits, len(rows))
    chance = k / probs.shape[1]
    return Claim(
        id=f"00.labelled_photos_in_top{k}",
        statement=f"{model}: share of the labelled sample photos whose label is among the top-{k} classes",
        value=hits / len(rows), ci=ci, n=len(rows), decimals=2, tolerance=1e-9, chance=chance,
        paper=None, verdict="not comparable",
        reason=("the weights recognise the photos (the interval lies above chance): not a random initialisation"
                if ci[0] > chance else "the interval reaches chance: check the weights"),
    )  # fmt: skip
