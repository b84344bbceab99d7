"""Fingerprints of what determines a result, so that resumable state is never reused for other inputs.

A checkpoint (scan, inversion, training, graph) stores the fingerprint of its model weights, its
data and every parameter; resuming compares them and starts afresh on a mismatch. Each function
returns a sha256 hex digest; digests of digests combine them (:func:`params_digest` takes them as
parameters)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn


def _hash_tensor(h, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
    # uint8 view: every dtype (bfloat16, bool, complex) hashes by its bytes, not by its values
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def tensor_digest(t: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes (device and strides do not matter)."""
    h = hashlib.sha256()
    _hash_tensor(h, t)
    return h.hexdigest()


def model_digest(module: nn.Module) -> str:
    """sha256 of a module's state dict (parameter and buffer names, dtypes, shapes, bytes).

    Accepts a zoo ``LoadedModel`` too (its ``.model`` is hashed)."""
    module = getattr(module, "model", module)
    h = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        h.update(name.encode() + b"\0")
        if isinstance(value, torch.Tensor):
            _hash_tensor(h, value)
        else:  # extra state (rare): hashed by its text form
            h.update(repr(value).encode())
    return h.hexdigest()


def folder_digest(path) -> str:
    """sha256 of a data folder's listing: every file's relative path, size and mtime (not contents:
    a dataset of thousands of images is fingerprinted in milliseconds; an edited file changes its
    mtime). A single file is fingerprinted the same way."""
    root = Path(path).resolve()
    h = hashlib.sha256(str(root).encode() + b"\0")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for p in files:
        st = os.stat(p)
        rel = p.name if p == root else str(p.relative_to(root))
        h.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def params_digest(**params) -> str:
    """sha256 of keyword parameters as canonical JSON (sorted keys; tuples as lists; other objects
    by ``str``). Tensors are replaced by their :func:`tensor_digest`."""

    def plain(v):
        if isinstance(v, torch.Tensor):
            return {"tensor": tensor_digest(v)}
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v

    text = json.dumps(plain(params), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
