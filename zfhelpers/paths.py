"""Where things live. Every path is resolved from the package location or an environment
variable, never from the current working directory (papermill, nbval and JupyterLab all
start kernels in different folders)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: Repository root of an editable install (the folder that holds ``zfhelpers/``).
REPO_ROOT = PACKAGE_DIR.parent


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    """Committed inputs (photos, small checkpoints, annotations)."""
    return _env_path("ZFHELPERS_DATA_DIR", REPO_ROOT / "data")


def figures_dir() -> Path:
    """Where :func:`zfhelpers.notebook.save.save_figure` writes. ``make test`` points it into ``build/``
    so that testing leaves the working tree unchanged."""
    return _env_path("ZFHELPERS_FIGURES_DIR", REPO_ROOT / "figures")


def build_dir() -> Path:
    """Git-ignored scratch space: executed notebooks, test figures, scan checkpoints."""
    return _env_path("ZFHELPERS_BUILD_DIR", REPO_ROOT / "build")


def notebooks_dir() -> Path:
    return REPO_ROOT / "notebooks"


def cache_dir() -> Path:
    """Downloaded wheels and other re-fetchable artefacts (outside the repo)."""
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return _env_path("ZFHELPERS_CACHE_DIR", Path(xdg) / "zfhelpers")


def hub_checkpoints_dir() -> Path:
    """The folder torchvision's weights API reads (``torch.hub.get_dir()/checkpoints``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


#: Set by ``python -m zfhelpers figures --preset NAME`` for the notebooks it runs; unset means the
#: notebook's own defaults (the "quick" preset nbval replays).
PRESET_ENV = "ZFHELPERS_PRESET"
