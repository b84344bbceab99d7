"""Fingerprints of what determines a long computation's result, so that a checkpoint is resumed only
by the computation that wrote it (issue #19: a scan checkpoint named after the model was silently
reused after the model's weights changed).

A fingerprint is a small ``{part: digest}`` dict — e.g. model weights, input data, preprocessing,
layers, batching — stored inside the checkpoint. :func:`load_checkpoint` compares it with the
current one and, on any difference, prints which parts differ and returns ``None`` so the caller
starts afresh: never a silent reuse, never a crash over a stale or unreadable file.

Digests (sha256):

* :func:`model_digest` — the bytes, dtype, shape and name of every ``state_dict`` tensor, cached per
  module object and recomputed when any tensor was replaced or modified in place (its version
  counter moved);
* :func:`tensor_digest` — a tensor's bytes, dtype and shape (cached the same way);
* :func:`folder_digest` — a folder's path and, for each file, its relative path, size and mtime;
* :func:`value_digest` — anything else: numbers, strings, lists, dicts, dataclasses, tensors and
  callables (identified by qualified name, bytecode, constants, defaults and closure values)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import os
import sys
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

#: Bump when the meaning of a digest changes, so older checkpoints never match.
VERSION = 1


class _IdCache:
    """``{object: (signature, digest)}`` by identity, dropping entries when objects die (a
    ``WeakKeyDictionary`` compares keys with ``==``, which tensors answer element-wise)."""

    def __init__(self):
        self._entries: dict[int, tuple] = {}

    def get(self, obj, signature) -> str | None:
        entry = self._entries.get(id(obj))
        if entry is not None and entry[0]() is obj and entry[1] == signature:
            return entry[2]
        return None

    def put(self, obj, signature, digest: str) -> None:
        key = id(obj)
        self._entries[key] = (weakref.ref(obj, lambda _ref: self._entries.pop(key, None)), signature, digest)


_MODEL_CACHE = _IdCache()
_TENSOR_CACHE = _IdCache()


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


def _update_tensor(h, t: torch.Tensor) -> None:
    h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(_tensor_bytes(t))


def _signature(t: torch.Tensor) -> tuple:
    """Cheap identity of a tensor's contents: storage, view, dtype and in-place version counter."""
    return (t.data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype, t.device, t._version)


def tensor_digest(t: torch.Tensor) -> str:
    """sha256 of ``t``'s dtype, shape and bytes (cached per tensor object while it is unchanged)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"tensor_digest needs a torch.Tensor, got {type(t).__name__}")
    sig = _signature(t)
    digest = _TENSOR_CACHE.get(t, sig)
    if digest is None:
        h = hashlib.sha256()
        _update_tensor(h, t)
        digest = h.hexdigest()
        _TENSOR_CACHE.put(t, sig, digest)
    return digest


def model_digest(model) -> str:
    """sha256 over the model's ``state_dict`` (names, dtypes, shapes, bytes): two models with equal
    weights share it, any changed weight changes it. Accepts an ``nn.Module`` or a LoadedModel."""
    net = getattr(model, "model", model)
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"model_digest needs an nn.Module or a LoadedModel, got {type(model).__name__}")
    state = net.state_dict(keep_vars=True)
    sig = tuple((name, _signature(t)) for name, t in state.items())
    digest = _MODEL_CACHE.get(net, sig)
    if digest is None:
        h = hashlib.sha256()
        for name, t in state.items():
            h.update(name.encode() + b"\0")
            _update_tensor(h, t)
        digest = h.hexdigest()
        _MODEL_CACHE.put(net, sig, digest)
    return digest


def folder_digest(root: Path, files: Iterable[str] | None = None) -> str:
    """sha256 of a folder's resolved path and, per file (relative path, in the given order; default
    every file below ``root``, sorted), its size and modification time: a renamed, added, removed,
    rewritten or touched file changes it. A single file is fingerprinted the same way."""
    root = Path(root).resolve()
    h = hashlib.sha256(str(root).encode() + b"\0")
    if files is None:
        if root.is_file():
            root, files = root.parent, [root.name]
        else:
            files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    for rel in files:
        st = os.stat(root / rel)
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _describe(obj, depth: int = 0):
    """A JSON-able description of ``obj`` that changes when its value does."""
    if depth > 4:
        return f"<{type(obj).__qualname__}>"
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, torch.Tensor):
        return {"tensor": tensor_digest(obj)}
    if isinstance(obj, torch.nn.Module):
        return {"module": type(obj).__qualname__, "weights": model_digest(obj)}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.dtype | torch.device):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: _describe(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj)}
        return {"dataclass": type(obj).__qualname__, **fields}
    if isinstance(obj, Mapping):
        return {str(k): _describe(v, depth + 1) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, list | tuple):
        return [_describe(v, depth + 1) for v in obj]
    if isinstance(obj, functools.partial):
        return {"partial": _describe(obj.func, depth + 1), "args": _describe(obj.args, depth + 1),
                "kwargs": _describe(obj.keywords, depth + 1)}  # fmt: skip
    if inspect.ismethod(obj):  # a bound method: its function and the object it is bound to
        return {"method": _describe(obj.__func__, depth + 1), "self": _describe(obj.__self__, depth + 1)}
    code = getattr(obj, "__code__", None)
    if code is not None:  # a Python function or lambda: its code and the values it closes over
        cells = [c.cell_contents for c in (obj.__closure__ or ())]
        return {
            "function": f"{obj.__module__}.{obj.__qualname__}",
            "code": hashlib.sha256(code.co_code).hexdigest(),
            "consts": [_describe(c, depth + 1) for c in code.co_consts if not hasattr(c, "co_code")],
            "names": list(code.co_names),
            "defaults": _describe(obj.__defaults__, depth + 1),
            "closure": [_describe(c, depth + 1) for c in cells],
        }
    if callable(obj):  # builtins, bound methods of C types, callable objects without dataclass fields
        return f"<callable {getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}>"
    return f"<{type(obj).__qualname__}>"


def value_digest(obj) -> str:
    """sha256 of :func:`_describe`'s canonical JSON of ``obj``."""
    text = json.dumps(_describe(obj), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def params_digest(**params) -> str:
    """sha256 of keyword parameters (any values :func:`value_digest` describes), order-independent."""
    return value_digest(dict(params))


def fingerprint(**parts) -> dict[str, str]:
    """``{part: digest}``; a value that is already a digest (64 hex characters) is kept as is."""
    out = {"version": str(VERSION)}
    for name, value in parts.items():
        is_digest = isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
        out[name] = value if is_digest else value_digest(value)
    return out


def mismatches(saved: Mapping | None, expected: Mapping) -> list[str]:
    """Names of the parts whose digests differ (missing parts count as different)."""
    saved = saved or {}
    return sorted(name for name in set(saved) | set(expected) if saved.get(name) != expected.get(name))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_checkpoint(path: Path, expected: Mapping[str, str], *, what: str = "checkpoint") -> dict | None:
    """The dict saved at ``path`` when its ``"fingerprint"`` equals ``expected``; otherwise ``None``
    after printing why (other parts, an unreadable file, a file without fingerprint)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say so and start afresh
        _say(f"{what}: {path} is unreadable ({type(exc).__name__}: {exc}); starting afresh")
        return None
    found = saved.get("fingerprint") if isinstance(saved, dict) else None
    diff = mismatches(found, expected)
    if diff:
        why = "has no fingerprint (older format)" if found is None else f"differs in: {', '.join(diff)}"
        _say(f"{what}: {path} was written by another computation ({why}); starting afresh, it will be overwritten")
        return None
    return saved


def save_checkpoint(path: Path, payload: dict, fp: Mapping[str, str]) -> Path:
    """Atomically ``torch.save`` ``payload`` with ``fp`` under the key ``"fingerprint"``."""
    from .io import atomic_torch_save

    return atomic_torch_save({**payload, "fingerprint": dict(fp)}, path)
