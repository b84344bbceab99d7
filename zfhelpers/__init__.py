"""zfhelpers — a runnable companion to Zeiler & Fergus (ECCV 2014) and the CNN-visualisation
papers around it. Notebooks in ``notebooks/`` only call this package."""

__version__ = "0.1.0"

from . import notebook  # noqa: E402
from .data.images import ImageLoadError, load_batch, load_image, prepare, sample_images  # noqa: E402
from .models.zoo import PROFILES, LoadedModel, load_model  # noqa: E402
from .notebook.save import save_figure  # noqa: E402

__all__ = [
    "PROFILES",
    "ImageLoadError",
    "LoadedModel",
    "load_batch",
    "load_image",
    "load_model",
    "notebook",
    "prepare",
    "sample_images",
    "save_figure",
]
