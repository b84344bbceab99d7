"""Image folders, streamed: ZF scan the ImageNet validation set (50 000 images, Fig. 2) and the
training set (1.3 M, Fig. 4), far more than fits in memory as one tensor.

:class:`ImageFiles` lists every image file under a folder — class folders as torchvision's
``ImageFolder`` expects (``ROOT/class/x.jpg``), a flat folder, or any nesting — sorted by relative
path. An image's **index** is its position in that order, the same on every process, so shards of a
distributed scan and a single process agree on it. Paths are packed into one byte array plus
offsets rather than a list of Python strings: forked DataLoader workers would otherwise copy the
list page by page as they touch reference counts, and their memory would grow with the dataset.

An item is the image decoded (PIL, any mode made RGB as :func:`zfhelpers.data.images.load_image`
does), its shorter side resized and centre-cropped — :func:`zfhelpers.data.images.prepare` without
the normalisation — as a uint8 3×crop×crop tensor. :meth:`ImageFiles.to_model_input` normalises a
batch on whatever device it is on, so workers decode and resize while the batches that cross to
the model (and a GPU) stay four times smaller than float ones.

:func:`loader` wraps a range of indices in a ``DataLoader`` whose seeded workers decode in parallel;
a file that cannot be read comes back as an error entry naming it, never as a worker crash."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL.Image import DecompressionBombError
from torchvision.transforms.v2 import functional as TF  # imported here, once: forked workers inherit it

from ..checks import InputError
from .images import IMAGE_SUFFIXES, ImageLoadError, load_image


class _Packed:
    """An immutable sequence of strings stored as one uint8 array and int64 offsets."""

    def __init__(self, strings: Sequence[str]):
        encoded = [s.encode() for s in strings]
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self.offsets[1:])
        self.blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.blob[self.offsets[i] : self.offsets[i + 1]].tobytes().decode()

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))


def list_images(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under ``root`` (recursively; hidden files and folders
    are ignored), sorted. Suffixes: :data:`zfhelpers.data.images.IMAGE_SUFFIXES`, any case."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"data folder not found: {root} (pass a folder of images, e.g. ImageNet val in class folders)")
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        for name in names:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                found.append((rel / name).as_posix())
    if not found:
        raise InputError(f"no image files in {root} (looked for {', '.join(IMAGE_SUFFIXES)}, in sub-folders too)")
    return sorted(found)


def decode(path: Path, resize: int, crop: int) -> torch.Tensor:
    """uint8 3×crop×crop: RGB, shorter side resized to ``resize`` (antialiased), centre crop."""
    t = TF.pil_to_tensor(load_image(path))
    return TF.center_crop(TF.resize(t, [resize], antialias=True), [crop])


class ImageFiles(torch.utils.data.Dataset):
    """The image files under ``root`` (or the given relative ``files``, in that order), decoded to
    uint8 tensors at the size ``preprocess`` (a :class:`zfhelpers.models.zoo.Preprocess`) asks for.

    ``files[i]`` is image ``i`` (uint8 3×H×W); indexing with a list, a tensor of indices or a slice
    gives a stacked batch N×3×H×W, so :func:`zfhelpers.analysis.top9.project_topk` can fetch the
    winners of a scan by index as it does from an in-memory tensor."""

    def __init__(self, root: Path, preprocess, files: Sequence[str] | None = None):
        self.root = Path(root).resolve()
        self.preprocess = preprocess
        self._paths = _Packed(list_images(self.root) if files is None else list(files))
        self._digest: str | None = None

    def __len__(self) -> int:
        return len(self._paths)

    def relpath(self, i: int) -> str:
        """Image ``i``'s path relative to the root (POSIX separators)."""
        return self._paths[int(i)]

    def relpaths(self) -> Iterator[str]:
        return iter(self._paths)

    def path(self, i: int) -> Path:
        return self.root / self.relpath(i)

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` decoded, resized and cropped; :class:`ImageLoadError` naming the file."""
        return decode(self.path(i), self.preprocess.resize, self.preprocess.crop)

    def __getitem__(self, index):
        if isinstance(index, slice):
            index = range(*index.indices(len(self)))
        if isinstance(index, torch.Tensor):
            index = index.flatten().tolist() if index.dim() else int(index)
        if isinstance(index, int | np.integer):
            if not -len(self) <= index < len(self):
                raise IndexError(f"image index {index} out of range for {len(self)} images")
            return self.load(int(index) % len(self))
        return torch.stack([self[i] for i in index])

    def to_model_input(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 N×3×H×W (on any device) → normalised float, as the model expects."""
        return self.preprocess.normalize(batch.float() / 255)

    def digest(self) -> str:
        """Fingerprint of the data: root path, relative paths, sizes and mtimes (cached)."""
        if self._digest is None:
            from ..fingerprint import folder_digest

            self._digest = folder_digest(self.root, self.relpaths())
        return self._digest

    def subset(self, n: int) -> ImageFiles:
        """``n`` images evenly spread over the sorted list (every class of an ImageFolder, not the
        first few), in order; all of them when ``n`` ≥ len."""
        total = len(self)
        if n >= total:
            return self
        picks = [(i * total) // n for i in range(n)]
        return ImageFiles(self.root, self.preprocess, [self.relpath(i) for i in picks])


class _Decoding(torch.utils.data.Dataset):
    """Item ``j`` of a range of image indices → (index, uint8 image or None, error or None)."""

    def __init__(self, files: ImageFiles, indices: range):
        self.files, self.indices = files, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int):
        i = self.indices[j]
        try:
            return i, self.files.load(i), None
        except (ImageLoadError, OSError, ValueError, DecompressionBombError) as exc:
            # reported by the main process, by name (a worker that raised would end the scan with a traceback)
            return i, None, f"{self.files.relpath(i)}: {exc}"


class _Collate:
    """Stack the readable images; keep the unreadable ones as (index, message)."""

    def __init__(self, crop: int):
        self.crop = crop

    def __call__(self, items):
        ok = [(i, t) for i, t, err in items if err is None]
        bad = [(i, err) for i, _, err in items if err is not None]
        ids = torch.tensor([i for i, _ in ok], dtype=torch.long)
        x = torch.stack([t for _, t in ok]) if ok else torch.empty(0, 3, self.crop, self.crop, dtype=torch.uint8)
        return ids, x, bad


def _seed_worker(_worker_id: int) -> None:
    # DataLoader seeds torch per worker (from its generator); seed the other generators from it
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (the legacy global generator is the one third-party code draws from)


def loader(files: ImageFiles, indices: range, *, batch_size: int, workers: int = 0, pin_memory: bool = False,
           seed: int = 0) -> torch.utils.data.DataLoader:  # fmt: skip
    """Batches ``(indices, uint8 N×3×H×W, [(index, error), …])`` over ``indices`` in order.

    ``workers`` processes decode in parallel (each a fork holding only the packed path list, never
    the model); ``pin_memory`` for fast copies to a GPU."""
    kwargs = {"prefetch_factor": 4, "worker_init_fn": _seed_worker} if workers > 0 else {}
    return torch.utils.data.DataLoader(
        _Decoding(files, indices), batch_size=batch_size, shuffle=False, num_workers=workers,
        collate_fn=_Collate(files.preprocess.crop), pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed), **kwargs,
    )  # fmt: skip
