"""The one way figures leave a notebook: :func:`save_figure`.

Deterministic names (``NN_slug``), a provenance stamp on the figure itself (model and data), the
same provenance in the PNG text chunks and PDF info, no timestamps, and atomic writes (a crash
never leaves a half-written file under ``figures/``).

Staging: when ``ZFHELPERS_STAGING_DIR`` is set (``python -m zfhelpers figures`` sets it per notebook),
figures and the results file go there instead, and the CLI moves them into ``figures/`` with
:func:`publish` only when the notebook succeeded — a failed run leaves none of its new figures and
keeps the old ones."""

from __future__ import annotations

import json
import numbers
import os
import re
import shutil
from pathlib import Path

from ..checks import InputError
from ..io import atomic_write
from ..paths import figures_dir

NAME_RE = re.compile(r"^\d{2}_[a-z0-9][a-z0-9_\-]*$")
FORMATS = ("png", "pdf")
STAGING_ENV = "ZFHELPERS_STAGING_DIR"
MANIFEST_ENV = "ZFHELPERS_MANIFEST"
DPI_RANGE = (10, 1200)
#: Largest saved canvas (width × height pixels at ``dpi``): beyond it savefig takes minutes or fails
#: with MemoryError, and no figure here needs it (a 16×10 in figure at 600 dpi is 58 Mpx).
MAX_PIXELS = 100_000_000


def output_dir() -> Path:
    """Where figures and results files are written now: the staging folder of a CLI run, else
    :func:`zfhelpers.paths.figures_dir`."""
    staging = os.environ.get(STAGING_ENV)
    return Path(staging) if staging else figures_dir()


def publish(staging: Path, dest: Path | None = None) -> list[Path]:
    """Move every file under ``staging`` to the same place under ``dest`` (default ``figures/``),
    each by an atomic rename, then remove ``staging``. Returns the destination paths."""
    staging, dest = Path(staging), Path(dest) if dest else figures_dir()
    moved = []
    for path in sorted(p for p in staging.rglob("*") if p.is_file() and not p.name.endswith(".part")):
        target = dest / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        moved.append(target)
    shutil.rmtree(staging, ignore_errors=True)
    return moved


def check_dpi(fig, dpi) -> float:
    """``dpi`` is a number in :data:`DPI_RANGE` and the canvas stays under :data:`MAX_PIXELS`."""
    lo, hi = DPI_RANGE
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not lo <= dpi <= hi:
        raise InputError(f"dpi must be a number in {lo}..{hi}, got {dpi!r}")
    w, h = fig.get_size_inches()
    pixels = w * h * dpi * dpi
    if pixels > MAX_PIXELS:
        raise InputError(f"dpi {dpi} makes this {w:.3g}×{h:.3g} in figure {pixels / 1e6:.0f} Mpx; "
                         f"the limit is {MAX_PIXELS / 1e6:.0f} Mpx (lower dpi)")  # fmt: skip
    return float(dpi)


def save_figure(
    fig,
    name: str,
    *,
    model: str,
    data: str,
    params: dict | None = None,
    formats: tuple[str, ...] = FORMATS,
    dpi: int = 100,
    stamp: bool = True,
) -> list[Path]:
    """Save ``fig`` as ``figures/<name>.png`` (and ``.pdf``); return the written paths.

    ``model`` and ``data`` are required: every figure says what produced it
    (:func:`zfhelpers.data.images.source_label` names the images). ``name`` must look like
    ``01_feature_maps`` (notebook number + slug); ``dpi`` is checked by :func:`check_dpi`."""
    from .. import __version__

    if not NAME_RE.match(name):
        raise ValueError(f"figure name {name!r} must match NN_slug (lower case), e.g. '01_feature_maps'")
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"unsupported formats {bad or formats}; valid: {', '.join(FORMATS)}")
    if not model or not data:
        raise ValueError("save_figure needs non-empty model= and data= (every figure says what made it)")
    check_dpi(fig, dpi)

    if stamp:
        # Just below the figure's bottom edge; bbox_inches="tight" grows the canvas to include it,
        # so it never overlaps tick labels.
        fig.text(0.995, -0.03, f"model: {model}  |  data: {data}", ha="right", va="top",
                 fontsize=6.5, color="0.35")  # fmt: skip
    description = json.dumps({"model": model, "data": data, "params": params or {}}, sort_keys=True,
                             default=str)  # fmt: skip
    out = output_dir()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        extra = {}
        if fmt == "png":
            meta = {"Title": name, "Software": f"zfhelpers {__version__}", "Description": description}
            extra["pil_kwargs"] = {"optimize": True}
        else:
            meta = {"Title": name, "Creator": f"zfhelpers {__version__}", "Subject": description,
                    "CreationDate": None}  # fmt: skip
        atomic_write(
            path,
            lambda tmp, fmt=fmt, meta=meta, extra=extra: fig.savefig(
                tmp, format=fmt, dpi=dpi, metadata=meta, bbox_inches="tight", **extra
            ),
        )
        written.append(path)
    manifest = os.environ.get(MANIFEST_ENV)
    if manifest:  # the figures CLI collects these for its closing summary (one manifest per run)
        with open(manifest, "a") as fh:
            fh.write(json.dumps({"name": name, "files": [p.name for p in written], "model": model,
                                 "data": data}) + "\n")  # fmt: skip
    return written
