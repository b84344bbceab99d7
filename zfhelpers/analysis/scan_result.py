"""The result file of a folder scan (``python -m zfhelpers scan … --out RESULT.json``), and reading it
back for the top-9 projection figure (ZF Fig. 2; :func:`zfhelpers.analysis.top9.project_topk`).

Per layer and channel it lists the ``k`` entries — activation value, image path relative to the
scanned folder, (y, x) in the layer's map — ranked by value descending, then image path ascending
(:data:`zfhelpers.analysis.scan.ORDER`: the image index is the position in the sorted path list).
Nothing in it depends on how many processes ran the scan. ``docs/scanning.md`` documents every key."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checks import InputError
from ..data.folders import ImageFiles
from ..io import atomic_write
from .scan import TopK

FORMAT = "zfhelpers-scan"
VERSION = 1


def result_document(tops: dict[str, TopK], files: ImageFiles, *, model: str, model_digest: str, k: int,
                    batch_size: int, skipped: list[tuple[int, str]] = ()) -> dict:  # fmt: skip
    """The JSON-able result of a scan of ``files`` (``tops`` index images in ``files``)."""
    pre = files.preprocess
    layers = {}
    for name, top in tops.items():
        rows = []
        for c in range(top.values.shape[0]):
            rows.append([{"value": float(v), "image": files.relpath(i), "y": int(p[0]), "x": int(p[1])}
                         for v, i, p in zip(top.values[c].tolist(), top.images[c].tolist(), top.positions[c].tolist())
                         if i >= 0])  # fmt: skip
        layers[name] = {"channels": top.values.shape[0], "top": rows}
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": {"name": model, "weights_sha256": model_digest},
        "data": {
            "root": str(files.root),
            "images": len(files),
            "digest": files.digest(),
            "skipped": [message for _, message in sorted(skipped)],
        },
        "preprocess": {"resize": pre.resize, "crop": pre.crop, "mean": list(pre.mean), "std": list(pre.std)},
        "k": k,
        "batch_size": batch_size,
        "order": "value descending, then image path ascending",
        "layers": layers,
    }


def write_scan_result(path: Path, document: dict) -> Path:
    """Write ``document`` atomically (never a half-written file at ``path``)."""
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(_dumps(document)))


def _dumps(document: dict) -> str:
    """Indented JSON with one line per channel (k entries), so the file reads as a table."""
    head = json.dumps({k: v for k, v in document.items() if k != "layers"}, indent=1, allow_nan=False)
    blocks = []
    for name, layer in document["layers"].items():
        rows = ",\n".join("   " + json.dumps(row, allow_nan=False) for row in layer["top"])
        blocks.append(f'  {json.dumps(name)}: {{"channels": {layer["channels"]}, "top": [\n{rows}\n  ]}}')
    return head[:-2] + ',\n "layers": {\n' + ",\n".join(blocks) + "\n }\n}\n"


@dataclass
class ScanResult:
    """A loaded result: ``tops[layer]`` index ``images``, the scan's winners only (sorted paths)."""

    tops: dict[str, TopK]
    images: ImageFiles
    model: str
    k: int
    document: dict

    @property
    def prepare(self):
        """uint8 batch → the model's input (pass as ``prepare`` to ``project_topk``)."""
        return self.images.to_model_input


def load_scan_result(path: Path, root: Path | None = None) -> ScanResult:
    """Read a RESULT.json; ``root`` overrides the scanned folder (moved data). The returned
    ``images`` hold only the winning files, so ``project_topk(lm, res.tops[layer], channels,
    res.images, prepare=res.prepare)`` re-decodes just those."""
    from ..models.zoo import Preprocess

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read scan result {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f'{path} is not a zfhelpers scan result (no "format": "{FORMAT}")')
    if doc.get("version") != VERSION:
        raise InputError(f"{path}: scan result version {doc.get('version')}, this code reads version {VERSION}")
    k = int(doc["k"])
    paths = sorted({e["image"] for layer in doc["layers"].values() for row in layer["top"] for e in row})
    index = {p: i for i, p in enumerate(paths)}
    pre = doc["preprocess"]
    preprocess = Preprocess(resize=pre["resize"], crop=pre["crop"], mean=tuple(pre["mean"]), std=tuple(pre["std"]))
    files = ImageFiles(Path(root) if root else Path(doc["data"]["root"]), preprocess, files=paths)
    tops = {}
    for name, layer in doc["layers"].items():
        c = layer["channels"]
        values = torch.full((c, k), -math.inf)
        images = torch.full((c, k), -1, dtype=torch.long)
        positions = torch.zeros((c, k, 2), dtype=torch.long)
        for ch, row in enumerate(layer["top"]):
            for j, e in enumerate(row):
                values[ch, j], images[ch, j] = e["value"], index[e["image"]]
                positions[ch, j, 0], positions[ch, j, 1] = e["y"], e["x"]
        tops[name] = TopK(values, images, positions, name)
    return ScanResult(tops, files, doc["model"]["name"], k, doc)
