"""Occlusion sensitivity (ZF §4.2, Fig. 7), all panels from one batched pass.

A square of ``fill`` (default 0 in normalised units = the dataset mean, i.e. mid grey) slides over
the image. For every occluder position one forward pass gives, at once:

* (b) the summed activation of one feature map (by default the map of ``layer`` that is strongest
  on the unoccluded image — ZF use layer 5);
* (d) the probability of the target class (by default the unoccluded top-1);
* (e) the most probable class.

Window positions follow Captum's convention: ``0, stride, 2·stride, …`` until the window reaches
the far edge, the last window clipped to the image, so every pixel is covered. ZF state no size,
stride or grey level; they are parameters here and printed on the figures."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import checks
from ..models.capture import OUTPUT, capture_detached, eval_mode
from ..models.zoo import adapt
from ..progress import tqdm
from .targets import resolve_targets


@dataclass
class OcclusionResult:
    prob: torch.Tensor  # gy×gx: p(target) with the occluder at each position
    top_class: torch.Tensor  # gy×gx: argmax class
    top_prob: torch.Tensor  # gy×gx: its probability
    feature_sum: torch.Tensor | None  # gy×gx: Σ over space of the chosen map
    ys: list[int]  # window top rows
    xs: list[int]  # window left columns
    size: tuple[int, int]
    stride: tuple[int, int]
    fill: float
    target: int
    base_prob: float
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
    batch_size: int = 8,
    channels_last: bool = True,
    progress: bool = False,
) -> OcclusionResult:
    """All of ZF Fig. 7's maps for one image (1×C×H×W, normalised), in batches.

    ``target``: the class of panel (d) (package convention; default the unoccluded top-1).
    ``layer=None`` skips panel (b); ``channels`` is the one feature map summed there (an int, or
    None for the map strongest on the unoccluded image). ``channels_last`` runs the batches in NHWC
    layout — the model's parameters are converted for the call and restored afterwards — which on
    CPU is ~1.5× faster for MobileNetV2's depthwise convolutions; results agree to float rounding.
    Small batches (8) stay in cache and beat large ones on a 2-core CPU."""
    lm = adapt(model)
    x = checks.images(inputs, channels=None, single=True)
    net = lm.model
    size, stride = _pair(size, "size"), _pair(stride, "stride")
    height, width = x.shape[-2:]
    ys = window_positions(height, size[0], stride[0])
    xs = window_positions(width, size[1], stride[1])
    cells = [(y, x0) for y in ys for x0 in xs]
    if layer is not None:
        lm.check_layer(layer)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    formats = {p: p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters() if p.dim() == 4}
    with eval_mode(net):
        net.to(memory_format=fmt)
        try:
            return _run(lm, x.contiguous(memory_format=fmt), cells, ys, xs, size, stride, fill, target,
                        layer, channels, batch_size, progress, fmt)  # fmt: skip
        finally:  # the caller's parameter layout is restored
            net.to(memory_format=torch.contiguous_format)
            for p, was_cl in formats.items():
                if was_cl:
                    p.data = p.data.contiguous(memory_format=torch.channels_last)


def _sums_and_logits(out: torch.Tensor) -> torch.Tensor:
    """Inside the hook: a feature map's per-channel sums (no map is kept), or the logits."""
    return out.flatten(2).sum(2) if out.dim() == 4 else out.clone()


def _run(lm, x, cells, ys, xs, size, stride, fill, target, layer, channels, batch_size, progress, fmt):
    wanted = [layer, OUTPUT] if layer is not None else [OUTPUT]
    base_out = capture_detached(lm, x, wanted, reduce=_sums_and_logits)
    base = base_out[OUTPUT].softmax(1)[0]
    target = int(resolve_targets(base_out[OUTPUT], target)[0])
    channel = None
    if layer is not None:
        base_sums = base_out[layer][0]
        channel = int(base_sums.argmax()) if channels is None else checks.index(channels, len(base_sums),
                                                                                 name="channels")  # fmt: skip
    probs, tops, top_p, sums = [], [], [], []
    chunks = range(0, len(cells), batch_size)
    for start in tqdm(chunks, desc="occlusion", disable=not progress):
        chunk = cells[start : start + batch_size]
        batch = occluded_batch(x, chunk, size, fill).contiguous(memory_format=fmt)
        out = capture_detached(lm, batch, wanted, reduce=_sums_and_logits)
        p = out[OUTPUT].softmax(1)
        probs.append(p[:, target])
        best = p.max(1)
        tops.append(best.indices)
        top_p.append(best.values)
        if layer is not None:
            sums.append(out[layer][:, channel])
    grid = (len(ys), len(xs))
    return OcclusionResult(  # maps are small: returned on the CPU whatever the model's device
        prob=torch.cat(probs).view(grid).cpu(),
        top_class=torch.cat(tops).view(grid).cpu(),
        top_prob=torch.cat(top_p).view(grid).cpu(),
        feature_sum=torch.cat(sums).view(grid).cpu() if sums else None,
        ys=ys, xs=xs, size=size, stride=stride, fill=fill, target=target,
        base_prob=float(base[target]), layer=layer, channel=channel,
        base_feature_sum=float(base_sums[channel]) if layer is not None else None,
    )  # fmt: skip
