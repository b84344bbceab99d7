"""zfhelpers — a runnable companion to Zeiler & Fergus (ECCV 2014) and the CNN-visualisation
papers around it. Notebooks in ``notebooks/`` only call this package.

Every method has one signature, ``method(model, inputs, *, layer=…, target=…, channels=…)``:
``model`` is a zoo :class:`LoadedModel` or any ``torch.nn.Module``; ``target`` is a class (an int,
``"top1"``…``"topK"``, or one per image); ``channels`` are feature maps of ``layer``
(:mod:`zfhelpers.methods.targets`). Sub-packages: ``models``, ``data``, ``methods``, ``analysis``,
``inversion``, ``graph``, ``notebook``."""

__version__ = "0.2.0"

from . import notebook  # noqa: E402
from .analysis.scan import scan_topk  # noqa: E402
from .checks import InputError  # noqa: E402
from .data.images import ImageLoadError, load_batch, load_image, prepare, sample_images  # noqa: E402
from .inversion import invert_code, style_transfer  # noqa: E402
from .methods.cam import cam, gradcam, gradcampp, guided_gradcam  # noqa: E402
from .methods.mirror import mirror_project  # noqa: E402
from .methods.occlusion import occlusion  # noqa: E402
from .methods.projection import Projector, channel_projection, class_projection, unit_projection  # noqa: E402
from .methods.rules import BackpropRules  # noqa: E402
from .models.capture import capture, capture_detached, eval_mode  # noqa: E402
from .models.zoo import PROFILES, LoadedModel, adapt, load_model  # noqa: E402
from .notebook.save import save_figure  # noqa: E402

__all__ = [
    "PROFILES",
    "BackpropRules",
    "ImageLoadError",
    "InputError",
    "LoadedModel",
    "Projector",
    "adapt",
    "cam",
    "capture",
    "capture_detached",
    "channel_projection",
    "class_projection",
    "eval_mode",
    "gradcam",
    "gradcampp",
    "guided_gradcam",
    "invert_code",
    "load_batch",
    "load_image",
    "load_model",
    "mirror_project",
    "notebook",
    "occlusion",
    "prepare",
    "sample_images",
    "save_figure",
    "scan_topk",
    "style_transfer",
    "unit_projection",
]
