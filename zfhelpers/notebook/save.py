"""The one way figures leave a notebook: :func:`save_figure`.

Deterministic names (``NN_slug``), a provenance stamp on the figure itself (model and data), the
same provenance in the PNG text chunks and PDF info, no timestamps, and atomic writes (a crash
never leaves a half-written file under ``figures/``)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..io import atomic_write
from ..paths import figures_dir

NAME_RE = re.compile(r"^\d{2}_[a-z0-9][a-z0-9_\-]*$")
FORMATS = ("png", "pdf")


def _stamp(fig, text: str) -> None:
    """The provenance line just below the figure's bottom edge (bbox_inches="tight" grows the
    canvas to include it, so it never overlaps tick labels), wrapped to the figure's width: a line
    wider than the figure would widen the saved image and leave a blank margin beside the plots."""
    import textwrap

    label = fig.text(0.995, -0.03, text, ha="right", va="top", fontsize=6.5, color="0.35")
    get_renderer = getattr(fig.canvas, "get_renderer", None)
    if get_renderer is None:
        return
    width = label.get_window_extent(get_renderer()).width
    available = 0.98 * fig.get_figwidth() * fig.dpi
    if width > available:
        label.set_text("\n".join(textwrap.wrap(text, max(20, int(len(text) * available / width)))))


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

    ``model`` and ``data`` are required: every figure says what produced it. ``name`` must look
    like ``01_feature_maps`` (notebook number + slug)."""
    from .. import __version__

    if not NAME_RE.match(name):
        raise ValueError(f"figure name {name!r} must match NN_slug (lower case), e.g. '01_feature_maps'")
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"unsupported formats {bad or formats}; valid: {', '.join(FORMATS)}")
    if not model or not data:
        raise ValueError("save_figure needs non-empty model= and data= (every figure says what made it)")

    if stamp:
        _stamp(fig, f"model: {model}  |  data: {data}")
    description = json.dumps({"model": model, "data": data, "params": params or {}}, sort_keys=True,
                             default=str)  # fmt: skip
    out = figures_dir()
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
        atomic_write(path, lambda tmp, fmt=fmt, meta=meta, extra=extra: fig.savefig(
            tmp, format=fmt, dpi=dpi, metadata=meta, bbox_inches="tight", **extra))
        written.append(path)
    manifest = os.environ.get("ZFHELPERS_MANIFEST")
    if manifest:  # the figures CLI collects these for its closing summary
        with open(manifest, "a") as fh:
            fh.write(json.dumps({"name": name, "files": [str(p) for p in written], "model": model,
                                 "data": data}) + "\n")  # fmt: skip
    return written
