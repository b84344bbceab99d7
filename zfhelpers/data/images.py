"""Images: committed sample photos and one conversion path from any image — a name, a path, a PIL
image, a NumPy array, a tensor — to model-ready tensors that remember their source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .. import checks
from ..checks import InputError
from ..paths import REPO_ROOT, data_dir

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


class ImageLoadError(InputError):
    """An image file is missing, unreadable or of an unsupported kind."""


def images_dir() -> Path:
    return data_dir() / "images"


def sample_images() -> list[str]:
    """Names of the committed photos (see ``data/README.md`` for sources and licences)."""
    return sorted(p.stem for p in images_dir().iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def image_labels() -> dict[str, int]:
    """ImageNet class index of the sample photos that have one (``data/images/labels.json``)."""
    import json

    raw = json.loads((images_dir() / "labels.json").read_text())
    return {k: int(v[0]) for k, v in raw.items() if not k.startswith("_")}


def resolve_image(src: str | Path) -> Path:
    """A sample name (``"chelsea"``) or a path to an image file."""
    if not str(src).strip():
        raise ImageLoadError(
            f"empty image name; valid names: {', '.join(sample_images())} (or a path to an image file)"
        )
    path = Path(src)
    if path.suffix == "" and not path.exists():
        matches = [p for p in images_dir().glob(f"{src}.*") if p.suffix.lower() in IMAGE_SUFFIXES]
        if not matches:
            raise ImageLoadError(
                f"no sample image named {src!r}; valid names: {', '.join(sample_images())} "
                "(or pass a path to an image file)"
            )
        return matches[0]
    if not path.is_file():
        raise ImageLoadError(f"image file not found: {path}")
    return path


# --------------------------------------------------------------------------- one conversion path
# Every image — a sample name, a path, a PIL image, a NumPy array or a tensor — becomes a 3×H×W
# tensor through `to_rgb`: uint8 when the source has 8 bits, else float in [0, 1]. Grey is
# replicated, alpha is composited over white, 16-bit values are scaled by 65535 (their type's range,
# not their own min/max, which would change contrast).
_RANGE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.bool_): 1.0}


def _pil_array(image: Image.Image) -> np.ndarray:
    """A PIL image as an H×W[×C] array of its own bit depth (the files' conventions decoded here)."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    elif mode == "I":  # 32-bit integer: PIL's form of some 16-bit files; 8-bit values stay 8-bit
        arr = np.asarray(image)
        return arr.astype(np.uint16) if arr.max(initial=0) > 255 else arr.astype(np.uint8)
    elif mode == "F":  # float files hold 0..1 or 0..255
        arr = np.asarray(image, dtype=np.float32)
        return arr / 255.0 if np.isfinite(arr).all() and arr.max(initial=0) > 1.0 else arr
    elif mode not in ("1", "L", "LA", "RGB", "RGBA"):  # CMYK, YCbCr, LAB, HSV, RGBX ...
        image = image.convert("RGB")
    return np.asarray(image)


def _as_float01(arr: np.ndarray, what: str) -> np.ndarray:
    """H×W×C float32 in [0, 1] from an integer, bool or float array (checked, never clipped)."""
    if arr.dtype in _RANGE:
        return arr.astype(np.float32) / _RANGE[arr.dtype]
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{what} has dtype {arr.dtype}; use uint8 (0..255), uint16 (0..65535) or float (0..1)")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"{what} contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        hint = ("it looks normalised; pass the image in [0, 1], or use the tensor itself as model input"
                if lo < 0 else "divide 0..255 data by 255")  # fmt: skip
        raise InputError(f"{what} holds float values in {lo:.3g}..{hi:.3g}; float images must be in [0, 1] ({hint})")
    return arr


def _hwc(arr: np.ndarray, what: str, layout: str) -> np.ndarray:
    """H×W[×C] → H×W×C with C in 1..4, or a clear error (a C×H×W array gets the transpose hint)."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        shape = "×".join(map(str, arr.shape))
        hint = "; it looks C×H×W: use arr.transpose(1, 2, 0)" if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) else ""
        raise InputError(f"{what} has shape {shape}; expected {layout} with 1, 3 or 4 channels{hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{what} is empty (shape {'×'.join(map(str, arr.shape))})")
    return arr


def _compose(arr: np.ndarray, what: str) -> torch.Tensor:
    """H×W×C array → 3×H×W tensor: uint8 stays uint8 (bit-exact with the files), the rest float [0, 1]."""
    arr = _hwc(arr, what, "H×W or H×W×C")
    channels = arr.shape[-1]
    if arr.dtype == np.uint8 and channels in (1, 3):
        return torch.from_numpy(np.ascontiguousarray(np.repeat(arr, 3 // channels, axis=2))).permute(2, 0, 1)
    x = _as_float01(arr, what)
    if channels in (2, 4):  # grey/RGB + alpha, composited over white
        alpha = x[..., -1:]
        x = x[..., :-1] * alpha + (1.0 - alpha)
    x = np.repeat(x, 3 // x.shape[-1], axis=2)
    if arr.dtype == np.uint8:  # 8-bit with alpha: back to 8 bits, rounded
        return torch.from_numpy(np.ascontiguousarray(np.round(x * 255.0).astype(np.uint8))).permute(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)


def _tensor_to_hwc(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise InputError(f"a tensor image must be C×H×W (or 1×C×H×W), got a batch of {t.shape[0]}; "
                             "use load_batch(list(tensor)) for several")  # fmt: skip
        t = t[0]
    if t.dim() == 3:
        if t.shape[0] not in (1, 2, 3, 4):
            hint = "; it looks H×W×C: use t.permute(2, 0, 1)" if t.shape[-1] in (1, 3, 4) else ""
            raise InputError(f"tensor image has shape {tuple(t.shape)}; expected C×H×W with 1, 3 or 4 channels{hint}")
        t = t.permute(1, 2, 0)
    elif t.dim() != 2:
        raise InputError(f"tensor image has shape {tuple(t.shape)}; expected C×H×W, 1×C×H×W or H×W")
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def to_rgb(src) -> tuple[torch.Tensor, str, str]:
    """Any image → (3×H×W tensor, name, source label). The one conversion path of the package.

    ``src``: a sample name (``"chelsea"``), a path, a PIL image (any mode: 1, L, LA, P, PA, RGB, RGBA,
    I;16, I, F, CMYK …), a NumPy array (H×W or H×W×C with C = 1, 3, 4; uint8, uint16, bool or float
    in [0, 1]) or a tensor (C×H×W, 1×C×H×W or H×W, same dtypes). The tensor is uint8 for 8-bit
    sources, float in [0, 1] otherwise."""
    if isinstance(src, str | Path):
        path = resolve_image(src)
        try:
            with Image.open(path) as im:
                im.load()
                arr = _pil_array(im)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ImageLoadError(f"cannot read image {path}: {exc}") from exc
        return _compose(arr, f"image {path}"), Path(path).stem, _path_label(src, path)
    if isinstance(src, Image.Image):
        filename = getattr(src, "filename", "") or ""
        name = Path(filename).stem if filename else "image"
        return _compose(_pil_array(src), "PIL image"), name, filename or f"PIL image ({src.mode})"
    if isinstance(src, np.ndarray):
        return _compose(src, "array"), "array", "array"
    if isinstance(src, torch.Tensor):
        return _compose(_tensor_to_hwc(src), "tensor"), "tensor", "tensor"
    raise InputError(f"an image must be a sample name ({', '.join(sample_images())}), a path, a PIL image, "
                     f"a NumPy array or a tensor; got {type(src).__name__}")  # fmt: skip


def _path_label(src, path: Path) -> str:
    """A sample name is labelled by its file under the data folder; a path as the user gave it."""
    if Path(src) == path:
        return str(src)
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def to_rgb_uint8(image) -> np.ndarray:
    """Any image (see :func:`to_rgb`) → H×W×3 uint8 RGB."""
    t = to_rgb(image)[0]
    if t.dtype != torch.uint8:
        t = (t * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
    return t.permute(1, 2, 0).numpy()


def load_image(src) -> Image.Image:
    """Open a sample name or path (or convert any image, see :func:`to_rgb`) as an 8-bit RGB PIL image."""
    return Image.fromarray(to_rgb_uint8(src), mode="RGB")


@dataclass
class Sample:
    """A preprocessed image: ``tensor`` (1×3×H×W, model-ready), ``display`` (H×W×3 in [0, 1]) and
    ``source``, where it came from (``data/images/chelsea.jpg``, a path as given, ``array``…)."""

    name: str
    tensor: torch.Tensor
    display: np.ndarray
    source: str = ""


def prepare(src, preprocess, name: str | None = None) -> Sample:
    """Resize the shorter side, centre-crop and normalise as the model expects.

    ``src`` is anything :func:`to_rgb` takes; ``preprocess`` a zoo ``Preprocess`` (or a
    ``LoadedModel``, whose preprocessing is used)."""
    from torchvision.transforms.v2 import functional as TF

    preprocess = getattr(preprocess, "preprocess", preprocess)
    t, default_name, source = to_rgb(src)
    t = TF.resize(t, [preprocess.resize], antialias=True)
    t = TF.center_crop(t, [preprocess.crop])
    rgb01 = t.float() / 255.0 if t.dtype == torch.uint8 else t.clamp(0.0, 1.0)
    return Sample(name or default_name, preprocess.normalize(rgb01)[None], rgb01.permute(1, 2, 0).numpy(), source)


def load_batch(sources, preprocess) -> tuple[torch.Tensor, list[Sample]]:
    """Stack several images (a list of anything :func:`prepare` takes) into one N×3×H×W batch."""
    if isinstance(sources, np.ndarray | torch.Tensor) and sources.ndim == 4:
        sources = list(sources)
    hint = f"give at least one image, e.g. ['chelsea'] (sample names: {', '.join(sample_images())})"
    sources = checks.nonempty(sources, name="images", hint=hint)
    samples = [prepare(s, preprocess) for s in sources]
    return torch.cat([s.tensor for s in samples]), samples


def source_label(samples) -> str:
    """A figure footer's ``data=``: where the images came from.

    Sample photos are folded as ``chelsea, coffee (data/images)``; any other source is named as it
    was given (a path, ``array``, ``tensor``, ``PIL image (RGBA)``)."""
    samples = [samples] if isinstance(samples, Sample) else list(samples)
    folder = str(images_dir().resolve().relative_to(REPO_ROOT)) if _in_repo(images_dir()) else str(images_dir())
    prefix = folder + "/"
    if samples and all(s.source.startswith(prefix) for s in samples):
        return ", ".join(s.name for s in samples) + f" ({folder})"
    return ", ".join(s.source or s.name for s in samples)


def _in_repo(path: Path) -> bool:
    try:
        path.resolve().relative_to(REPO_ROOT)
    except ValueError:
        return False
    return True
