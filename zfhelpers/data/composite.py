"""Two photos side by side as one input (the two-object test pictures of notebooks 07 and 10), and
where the labelled object lies in each photo (``data/images/objects.json``).

A composite is named ``"chelsea|coffee"``: each photo is resized and centre-cropped as the model
expects, then the crops are put next to each other (224×448 for the ImageNet models) — the
networks here end in global average pooling, so they take the wider input whole."""

from __future__ import annotations

import json

import numpy as np
import torch

from .images import Sample, image_labels, images_dir, prepare

SEPARATOR = "|"


def parts(name: str) -> list[str]:
    """``"chelsea|coffee"`` → ``["chelsea", "coffee"]``; a plain name → ``[name]``."""
    out = [p.strip() for p in str(name).split(SEPARATOR)]
    if any(not p for p in out):
        raise ValueError(
            f"bad composite name {name!r}: write photo names joined by '{SEPARATOR}', e.g. 'chelsea|coffee'"
        )
    return out


def prepare_any(name: str, preprocess) -> Sample:
    """A photo (:func:`zfhelpers.data.images.prepare`) or a side-by-side composite of photos."""
    names = parts(name)
    if len(names) == 1:
        return prepare(names[0], preprocess)
    samples = [prepare(n, preprocess) for n in names]
    return Sample(SEPARATOR.join(names), torch.cat([s.tensor for s in samples], dim=3),
                  np.concatenate([s.display for s in samples], axis=1))  # fmt: skip


def _boxes() -> dict[str, list[float]]:
    raw = json.loads((images_dir() / "objects.json").read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def object_box(name: str, side: int, target: int | None = None) -> tuple[int, int, int, int]:
    """The labelled object's box ``(y0, y1, x0, x1)`` in pixels of the model input (crops of
    ``side`` pixels). For a composite, the box of the photo whose label is ``target`` (shifted to
    its place in the composite); a clear error when no photo or box matches."""
    names, boxes, labels = parts(name), _boxes(), image_labels()
    if len(names) == 1:
        chosen = 0
    else:
        hits = [i for i, n in enumerate(names) if labels.get(n) == target]
        if len(hits) != 1:
            raise ValueError(f"class {target} is the label of {len(hits)} photos of {name!r}; labelled: "
                             f"{', '.join(f'{n} {labels[n]}' for n in names if n in labels) or 'none'}")  # fmt: skip
        chosen = hits[0]
    photo = names[chosen]
    if photo not in boxes:
        raise ValueError(f"no object box for {photo!r} in data/images/objects.json; boxes: {', '.join(sorted(boxes))}")
    y0, y1, x0, x1 = (round(f * side) for f in boxes[photo])
    return y0, y1, x0 + chosen * side, x1 + chosen * side


def label_of(name: str, model_top: int | None = None, scores=None) -> int:
    """The 'true class' of a photo (``labels.json``); for a composite, ``model_top`` (the
    network's own top class on the composite) when it is the label of one of its photos, else,
    given the network's ``scores`` (logits), the label of its photos that scores highest — the
    example still asks "which object does the network see?" when its top class is a third one."""
    names, labels = parts(name), image_labels()
    if len(names) == 1:
        if names[0] not in labels:
            raise ValueError(
                f"{names[0]!r} has no class in data/images/labels.json; labelled: {', '.join(sorted(labels))}"
            )
        return labels[names[0]]
    own = [labels[n] for n in names if n in labels]
    if model_top is not None and model_top in own:
        return model_top
    if scores is not None and own:
        return max(own, key=lambda c: float(scores.flatten()[c]))
    raise ValueError(f"the top class of {name!r} ({model_top}) is none of its photos' labels {own}")


def source_label(names) -> str:
    """Where the photos come from, for figure footers: committed photos by name ("chelsea,
    coffee (data/images)"), user files by their path; composites as "a | b side by side"."""
    from .images import resolve_image

    paths = [resolve_image(photo) for name in names for photo in parts(name)]
    where = sorted({"data/images" if p.parent == images_dir() else str(p) for p in paths})
    shown = [n.replace(SEPARATOR, " | ") + (" side by side" if SEPARATOR in n else "") for n in names]
    return f"{', '.join(shown)} ({'; '.join(where)})"
