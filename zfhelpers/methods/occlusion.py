"""Occlusion sensitivity (ZF §4.2, Fig. 7), all panels from one batched pass.

A square of ``fill`` (default 0 in normalised units = the dataset mean, i.e. mid grey) slides over
the image. For every occluder position one forward pass gives, at once:

* (b) the summed activation of one feature map (by default the map of ``layer`` that is strongest
  on the unoccluded image — ZF use layer 5);
* (d) the probability of the target class (by default the unoccluded top-1);
* (e) the most probable class.

By default the positions run incrementally (:mod:`zfhelpers.methods.incremental`, after Krypton, SIGMOD
2019): the unoccluded image is run once and, per position, only the part of each layer that the
occluder reaches is re-computed — equal to the plain batched pass (``method="plain"``, kept as
the reference) up to float rounding. For a model without a classifier (e.g. the HED VGG16 conv
stack) only panel (b) exists; pass ``layer``.

Window positions follow Captum's convention: ``0, stride, 2·stride, …`` until the window reaches
the far edge, the last window clipped to the image, so every pixel is covered. ZF state no size,
stride or grey level; they are parameters here and printed on the figures."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from .. import checks
from ..models.capture import OUTPUT, capture_detached, eval_mode
from ..models.zoo import adapt
from ..progress import tqdm
from .incremental import IncrementalOcclusion, Unsupported
from .targets import resolve_targets

METHODS = ("incremental", "plain")
#: positions per batch: the incremental path's boxes are small, so larger batches pay off
DEFAULT_BATCH = {"incremental": 64, "plain": 8}


@dataclass
class OcclusionResult:
    prob: torch.Tensor | None  # gy×gx: p(target) with the occluder at each position (None: no classifier)
    top_class: torch.Tensor | None  # gy×gx: argmax class
    top_prob: torch.Tensor | None  # gy×gx: its probability
    feature_sum: torch.Tensor | None  # gy×gx: Σ over space of the chosen map
    ys: list[int]  # window top rows
    xs: list[int]  # window left columns
    size: tuple[int, int]
    stride: tuple[int, int]
    fill: float
    target: int | None
    base_prob: float | None
    layer: str | None
    channel: int | None
    base_feature_sum: float | None

    def to_pixels(self, grid: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Per-pixel mean of a per-window value over the windows that cover each pixel — the form
        Captum's ``Occlusion`` returns."""
        total = grid.new_zeros(height, width)
        count = grid.new_zeros(height, width)
        for i, y in enumerate(self.ys):
            for j, x in enumerate(self.xs):
                total[y : y + self.size[0], x : x + self.size[1]] += grid[i, j]
                count[y : y + self.size[0], x : x + self.size[1]] += 1
        return total / count.clamp_min(1)


def _pair(v, name: str) -> tuple[int, int]:
    out = (int(v), int(v)) if isinstance(v, int | float) else tuple(int(a) for a in v)
    if len(out) != 2:
        raise ValueError(f"{name} must be an int or (height, width), got {v!r}")
    return out


def window_positions(length: int, size: int, stride: int) -> list[int]:
    """Top-left offsets along one axis: Captum's ``ceil((L - s) / stride) + 1`` steps."""
    if size > length:
        raise ValueError(f"occluder size {size} is larger than the image side {length}")
    if stride <= 0:
        raise ValueError(f"stride must be a positive integer, got {stride}")
    if stride > size and size < length:
        raise ValueError(f"stride {stride} > occluder size {size} would leave pixels never occluded")
    steps = math.ceil((length - size) / stride) + 1
    return [k * stride for k in range(steps)]


def occluded_batch(x: torch.Tensor, cells: list[tuple[int, int]], size, fill: float) -> torch.Tensor:
    """Copies of the 1×C×H×W image ``x``, one per (y, x) cell, with the window filled."""
    batch = x.repeat(len(cells), 1, 1, 1)
    for b, (y, x0) in enumerate(cells):
        batch[b, :, y : y + size[0], x0 : x0 + size[1]] = fill
    return batch


def occlusion(
    model,
    inputs: torch.Tensor,
    *,
    target=None,
    layer: str | None = None,
    channels=None,
    size=32,
    stride=16,
    fill: float = 0.0,
    method: str = "incremental",
    batch_size: int | None = None,
    channels_last: bool = True,
    progress: bool = False,
) -> OcclusionResult:
    """All of ZF Fig. 7's maps for one image (1×C×H×W, normalised), in batches.

    ``target``: the class of panel (d) (package convention; default the unoccluded top-1).
    ``layer=None`` skips panel (b); ``channels`` is the one feature map summed there (an int, or
    None for the map strongest on the unoccluded image). ``method`` is ``"incremental"`` (default; falls
    back to ``"plain"`` with a warning for models ``torch.fx`` cannot run incrementally) or
    ``"plain"``: one full forward per position. ``batch_size`` positions run at once (default 64
    incremental, 8 plain: small batches stay in cache on a 2-core CPU). ``channels_last`` runs the
    plain batches in NHWC layout — the model's parameters are converted for the call and restored
    afterwards — ~1.5× faster for MobileNetV2's depthwise convolutions on CPU; the incremental path
    builds its crops channels-last itself."""
    checks.choice(method, METHODS, name="occlusion method")
    lm = adapt(model)
    x = checks.images(inputs, channels=None, single=True)
    net = lm.model
    size, stride = _pair(size, "size"), _pair(stride, "stride")
    height, width = x.shape[-2:]
    ys = window_positions(height, size[0], stride[0])
    xs = window_positions(width, size[1], stride[1])
    if layer is not None:
        lm.check_layer(layer)
    fmt = torch.channels_last if channels_last and method == "plain" else torch.contiguous_format
    with eval_mode(net), _parameter_layout(net, fmt), torch.inference_mode():
        engine = _engine(method, lm, x.contiguous(memory_format=fmt), layer, fmt)
        cells = torch.cartesian_prod(torch.tensor(ys), torch.tensor(xs)).to(x.device)
        maps = _maps(engine, cells, (len(ys), len(xs)), size, fill, target, channels, layer is not None,
                     batch_size or DEFAULT_BATCH[method], progress)  # fmt: skip
    return OcclusionResult(ys=ys, xs=xs, size=size, stride=stride, fill=fill, layer=layer, **maps)


@contextmanager
def _parameter_layout(net: torch.nn.Module, fmt: torch.memory_format) -> Iterator[None]:
    """4-D parameters in ``fmt`` for the body; each one's layout is restored afterwards."""
    if fmt == torch.contiguous_format:
        yield
        return
    formats = {p: p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters() if p.dim() == 4}
    net.to(memory_format=fmt)
    try:
        yield
    finally:  # the caller's parameter layout is restored
        net.to(memory_format=torch.contiguous_format)
        for p, was_cl in formats.items():
            if was_cl:
                p.data = p.data.contiguous(memory_format=torch.channels_last)


def _engine(method: str, lm, x: torch.Tensor, layer: str | None, fmt: torch.memory_format):
    if method == "incremental":
        try:
            return IncrementalOcclusion(lm.model, x, lm.module(layer) if layer is not None else None)
        except Unsupported as exc:
            warnings.warn(f"incremental occlusion is not available for this model ({exc}); "
                          "using the plain batched pass", stacklevel=3)  # fmt: skip
    return PlainOcclusion(lm, x, layer, fmt)


class PlainOcclusion:
    """The reference: one full forward pass per occluder position, batched. Same interface as
    :class:`zfhelpers.methods.incremental.IncrementalOcclusion`."""

    def __init__(self, lm, x: torch.Tensor, layer: str | None = None,
                 memory_format: torch.memory_format = torch.contiguous_format):  # fmt: skip
        self.lm, self.x, self.layer, self.memory_format = lm, x, layer, memory_format
        out = capture_detached(lm, x, [OUTPUT] if layer is None else [layer, OUTPUT])
        self.base_output, self.base_layer = out[OUTPUT], out.get(layer)

    @torch.inference_mode()
    def run(self, rows: torch.Tensor, cols: torch.Tensor, size: tuple[int, int], fill: float, *,
            logits: bool = True, channel: int | None = None) -> tuple[torch.Tensor | None, ...]:  # fmt: skip
        """Outputs and channel sums of the marked layer for the occluded copies (see IncrementalOcclusion.run)."""
        cells = list(zip(rows.tolist(), cols.tolist()))
        batch = occluded_batch(self.x, cells, size, fill).contiguous(memory_format=self.memory_format)

        def reduce(out):  # the chosen map's sums inside the hook (no map is kept), logits as they are
            return out[:, channel].flatten(1).sum(1) if out.dim() == 4 else out

        wanted = ([OUTPUT] if logits else []) + ([self.layer] if channel is not None else [])
        out = capture_detached(self.lm, batch, wanted, reduce=reduce)
        return out.get(OUTPUT), out.get(self.layer) if channel is not None else None


def _maps(engine, cells, grid, size, fill, target, channel, want_layer, batch_size, progress) -> dict:
    """Panels (b), (d), (e) over the grid of window positions, from one engine."""
    base_out, base_layer = engine.base_output, engine.base_layer
    classifier = isinstance(base_out, torch.Tensor) and base_out.dim() == 2
    if not classifier and not want_layer:
        shape = tuple(base_out.shape) if isinstance(base_out, torch.Tensor) else type(base_out).__name__
        raise ValueError(f"the model's output ({shape}) is not a vector of class scores, so only panel (b) "
                         "exists: pass layer= to choose the feature map")  # fmt: skip
    base_prob = None
    if classifier:
        base = base_out.softmax(1)[0]
        target = int(resolve_targets(base_out, target)[0])
        base_prob = float(base[target])
    base_sum = None
    if want_layer:
        base_sums = base_layer[0].flatten(1).sum(1)
        channel = int(base_sums.argmax()) if channel is None else checks.index(channel, len(base_sums), name="channels")
        base_sum = float(base_sums[channel])
    probs, tops, top_p, sums = [], [], [], []
    for start in tqdm(range(0, len(cells), batch_size), desc="occlusion", disable=not progress):
        chunk = cells[start : start + batch_size]
        out, s = engine.run(chunk[:, 0], chunk[:, 1], size, fill, logits=classifier,
                            channel=channel if want_layer else None)  # fmt: skip
        if classifier:
            p = out.softmax(1)
            probs.append(p[:, target])
            best = p.max(1)
            tops.append(best.indices)
            top_p.append(best.values)
        if want_layer:
            sums.append(s)

    def as_grid(parts):  # maps are small: returned on the CPU whatever the model's device
        return torch.cat(parts).view(grid).cpu() if parts else None

    return dict(prob=as_grid(probs), top_class=as_grid(tops), top_prob=as_grid(top_p), feature_sum=as_grid(sums),
                target=target if classifier else None, base_prob=base_prob, channel=channel if want_layer else None,
                base_feature_sum=base_sum)  # fmt: skip
