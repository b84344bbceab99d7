"""One call at the top of every notebook: seeds and light inline figures."""

from __future__ import annotations

import random

import numpy as np
import torch


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
