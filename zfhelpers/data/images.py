"""Images: committed sample photos and robust loading into model-ready tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..paths import data_dir

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


class ImageLoadError(ValueError):
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


def to_rgb_uint8(image: Image.Image) -> np.ndarray:
    """Any PIL image → H×W×3 uint8 RGB.

    Grayscale is replicated, alpha is composited over white, and 16-bit or float images are
    rescaled by their type's range (not by their own min/max, which would change contrast)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(image).astype(np.float64)
        top = 65535.0 if arr.max() > 255 or image.mode.startswith("I;16") else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if image.mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        arr = np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def load_image(src: str | Path) -> Image.Image:
    """Open a sample name or path as an 8-bit RGB PIL image; clear errors for bad files."""
    path = resolve_image(src)
    try:
        with Image.open(path) as im:
            im.load()
            arr = to_rgb_uint8(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageLoadError(f"cannot read image {path}: {exc}") from exc
    return Image.fromarray(arr, mode="RGB")


@dataclass
class Sample:
    """A preprocessed image: ``tensor`` (1×3×H×W, model-ready) and ``display`` (H×W×3 in [0, 1])."""

    name: str
    tensor: torch.Tensor
    display: np.ndarray


def prepare(src: str | Path | Image.Image, preprocess, name: str | None = None) -> Sample:
    """Resize the shorter side, centre-crop and normalise as the model expects."""
    from torchvision.transforms.v2 import functional as TF

    if isinstance(src, Image.Image):
        image, name = src.convert("RGB"), name or "image"
    else:
        image, name = load_image(src), name or Path(str(src)).stem
    t = TF.pil_to_tensor(image)
    t = TF.resize(t, [preprocess.resize], antialias=True)
    t = TF.center_crop(t, [preprocess.crop])
    rgb01 = t.float() / 255.0
    return Sample(name, preprocess.normalize(rgb01)[None], rgb01.permute(1, 2, 0).numpy())


def load_batch(sources, preprocess) -> tuple[torch.Tensor, list[Sample]]:
    """Stack several images into one N×3×H×W batch."""
    samples = [prepare(s, preprocess) for s in sources]
    return torch.cat([s.tensor for s in samples]), samples
