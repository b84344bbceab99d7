"""Atomic writes: a crash or a kill never leaves a half-written file at the destination.

Temporary files are named ``.<name>.p<pid>.<random>.part`` beside their destination: a kill leaves
one behind, and :func:`clean_stale_parts` removes those whose process is gone."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

PART_SUFFIX = ".part"
_PID_RE = re.compile(r"\.p(\d+)\.[^.]*\.part$")


def part_prefix(path: Path) -> str:
    """The temporary-name prefix of ``path`` for this process (see the module docstring)."""
    return f".{Path(path).name}.p{os.getpid()}."


def atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=part_prefix(path), suffix=PART_SUFFIX)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_torch_save(obj, path: Path) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def pid_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (or we may not signal it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def part_owner(path: Path) -> int | None:
    """The process id written into a temporary name by :func:`atomic_write`, if any."""
    m = _PID_RE.search(Path(path).name)
    return int(m.group(1)) if m else None


def is_stale(path: Path, before: float) -> bool:
    """A ``.part`` file or folder whose writer is gone: its process id is dead, or it carries no
    process id (older names, other tools) and was last modified before ``before`` (epoch seconds)."""
    pid = part_owner(path)
    if pid is not None:
        return pid != os.getpid() and not pid_alive(pid)
    try:
        return path.lstat().st_mtime < before
    except FileNotFoundError:
        return False


def clean_stale_parts(folders: Iterable[Path], *, before: float | None = None, recursive: bool = True) -> list[Path]:
    """Remove the ``*.part`` files and folders that killed runs left in ``folders``; return them.

    ``before`` (default: now) protects a part without a process id that is younger than it."""
    before = time.time() if before is None else before
    removed = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        found = folder.rglob(f"*{PART_SUFFIX}") if recursive else folder.glob(f"*{PART_SUFFIX}")
        for path in sorted(found):
            if not os.path.lexists(path):
                continue  # inside a stale folder removed just before
            if not path.name.startswith(".") or not is_stale(path, before):
                continue  # only our hidden temporaries; a user's visible "x.part" is left alone
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
