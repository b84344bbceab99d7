"""The explorers at the end of notebooks 01–03 (feature maps; deconvnet projections, ZF §2.1;
top-9 projections over a dataset, ZF §4 Fig. 2).

Each is a :class:`zfhelpers.notebook.widgets.Drawing`: one figure built once, whose images and titles are
updated in place on every slider move. The work per (image, layer) is cached — the activations,
and for projections the forward pass (:class:`zfhelpers.methods.projection.Projector`: the pooling
switches on plain conv stacks, else the graph) — so a channel move costs at most one backward pass
(inside the unit's receptive field on plain conv stacks) and one JPEG. Explorers open on a channel that
fires on the image and say so when the chosen one does not."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import ipywidgets
import numpy as np
import torch

from ..analysis.top9 import project_topk
from ..data.display import projection_rgb, support_box, upsample_map
from ..methods.projection import Projector
from ..methods.targets import strongest_channels
from ..models.capture import capture_detached
from .plots import tile_block
from .widgets import Drawing, Explorer, layer_channel_explorer, new_figure

DEAD_COLOUR = "#c00"


def firing_channel(acts: torch.Tensor, preferred: int | None = None, *, by: str = "mean", border: int = 0) -> int:
    """An opening channel of a C×H×W activation that fires on this image: ``preferred`` when any of
    its activations is non-zero, otherwise the strongest channel
    (:func:`zfhelpers.methods.targets.strongest_channels`)."""
    if preferred is not None and 0 <= preferred < acts.shape[0] and bool(acts[preferred].any()):
        return int(preferred)
    return strongest_channels(acts, 1, by=by, border=border)[0]


def dead_note(channel: int, where: str = "this image") -> str:
    return f"channel {channel} is dead on {where} (all zeros)"


def show(im, ax, array: np.ndarray) -> None:
    """Put ``array`` into an existing AxesImage, whatever its size, and fit the axes to it."""
    h, w = array.shape[:2]
    im.set_data(array)
    im.set_extent((-0.5, w - 0.5, h - 0.5, -0.5))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)


def blank(ax, fontsize: float = 9):
    """An axes without ticks, with an empty image and a hidden centred message."""
    ax.axis("off")
    im = ax.imshow(np.full((2, 2, 3), 0.5), interpolation="nearest")
    msg = ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center", wrap=True,
                  fontsize=fontsize, color=DEAD_COLOUR, visible=False)  # fmt: skip
    return im, msg


def say(msg, text: str | None) -> None:
    msg.set_text(text or "")
    msg.set_visible(bool(text))


# --------------------------------------------------------------------------- 01 feature maps
class FeatureMapDrawing(Drawing):
    """Notebook 01: the input, one channel's map with its colour bar, and the map over the photo."""

    def __init__(self, loaded, sample):
        self.sample = sample
        self.activations = lru_cache(maxsize=None)(
            lambda layer: capture_detached(loaded, sample.tensor, [layer])[layer][0]
        )  # one forward per layer
        self.figure = fig = new_figure(9.6, 3.3)
        ax_in, self.ax_map, self.ax_ov = fig.subplots(1, 3)
        fig.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.03, wspace=0.12)
        ax_in.imshow(sample.display)
        ax_in.set_title(f"input ({sample.name})", fontsize=9)
        ax_in.axis("off")
        self.im_map, self.msg_map = blank(self.ax_map)
        self.im_map.set_cmap("viridis")
        self.im_map.set_data(np.zeros((2, 2)))
        fig.colorbar(self.im_map, ax=self.ax_map, fraction=0.046, pad=0.03)
        self.ax_ov.imshow(sample.display)
        self.ax_ov.axis("off")
        self.im_ov = self.ax_ov.imshow(np.zeros(sample.display.shape[:2]), cmap="jet", alpha=0.55, vmin=0, vmax=1)

    def __call__(self, layer: str, channel: int) -> str | None:
        fmap = self.activations(layer)[channel].float()
        arr = fmap.numpy()
        lo, hi = float(arr.min()), float(arr.max())
        show(self.im_map, self.ax_map, arr)
        self.im_map.set_clim(*((lo, hi) if hi > lo else (lo, lo + 1)))  # a flat map: a plain 0..1 bar
        self.ax_map.set_title(f"{layer} channel {channel}  ({arr.shape[0]}×{arr.shape[1]}, max {hi:.2f})", fontsize=9)
        dead = not bool(fmap.any())
        say(self.msg_map, "dead on this image\n(all zeros)" if dead else None)
        self.im_ov.set_visible(not dead)
        if not dead:
            m = upsample_map(fmap, self.sample.display.shape[:2])
            self.im_ov.set_data((m - m.min()) / max(float(m.max() - m.min()), 1e-12))
        self.ax_ov.set_title("overlay: nothing, the map is all zeros" if dead else "overlay (map rescaled to 0..1)",
                             fontsize=9)  # fmt: skip
        return dead_note(channel) if dead else None


def feature_map_explorer(loaded, sample, *, layer: str | None = None) -> Explorer:
    """Layer and channel sliders over :class:`FeatureMapDrawing`, opening on the channel of
    ``layer`` with the largest mean activation (so never on a dead one)."""
    spatial = {n: loaded.channels(n) for n in loaded.layers if len(loaded.shape(n)) == 3}
    layer = layer or next(iter(spatial))
    drawing = FeatureMapDrawing(loaded, sample)
    return layer_channel_explorer(drawing, spatial, layer=layer, channel=firing_channel(drawing.activations(layer)))


# --------------------------------------------------------------------------- 02 projections
class ProjectionDrawing(Drawing):
    """Notebook 02: the photo with the projection's support boxed, the channel's map with its
    strongest unit marked, that unit's projection to pixels (ZF §2.1; grey = 0) and the patch."""

    def __init__(self, loaded, samples: Mapping[str, object], *, border: int = 2, rule: str = "deconvnet"):
        self.samples, self.border = dict(samples), border
        # keep the current and the previous forward pass (on VGG16 at 224 px: its pooling switches, ~12 MB)
        self.forward = lru_cache(maxsize=2)(lambda image, layer: Projector(loaded, self.samples[image].tensor,
                                                                            layer=layer, rule=rule))  # fmt: skip
        self.unit = lru_cache(maxsize=64)(
            lambda image, layer, channel: self.forward(image, layer).units(channel, border=border)
        )
        self.rule = rule
        self.figure = fig = new_figure(10.0, 3.1)
        self.axes = fig.subplots(1, 4)
        fig.subplots_adjust(left=0.01, right=0.99, top=0.83, bottom=0.02, wspace=0.08)
        self.ims, self.msgs = zip(*(blank(ax) for ax in self.axes))
        self.ims[1].set_cmap("viridis")
        (self.marker,) = self.axes[1].plot([0], [0], marker="s", mfc="none", mec="red", ms=7, mew=1.5)
        from matplotlib.patches import Rectangle

        self.box = self.axes[0].add_patch(Rectangle((0, 0), 1, 1, fill=False, ec="red", lw=1.5))

    def acts(self, image: str, layer: str) -> torch.Tensor:
        """C×h×w activations of ``layer`` on ``image`` (from the cached forward pass)."""
        return self.forward(image, layer).acts.detach()[0]

    def __call__(self, layer: str, channel: int, image: str) -> str | None:
        s = self.samples[image]
        fmap = self.acts(image, layer)[channel]
        p = self.unit(image, layer, channel)
        value, (y, x) = float(p.values[0, 0]), p.positions[0, 0].tolist()
        show(self.ims[0], self.axes[0], s.display)
        self.axes[0].set_title(f"{image}\n", fontsize=9)
        arr = fmap.float().numpy()
        show(self.ims[1], self.axes[1], arr)
        lo, hi = float(arr.min()), float(arr.max())
        self.ims[1].set_clim(*((lo, hi) if hi > lo else (lo, lo + 1)))
        if value == 0:
            note = (dead_note(channel, image) if not bool(fmap.any()) else
                    f"channel {channel} fires only within {self.border} cells of the map's edge (skipped)")  # fmt: skip
        else:
            note = None
        unit = "no activation to project" if note else f"unit ({y}, {x}) = {value:.2f}"
        self.axes[1].set_title(f"{layer} channel {channel} ({arr.shape[0]}×{arr.shape[1]})\n{unit}", fontsize=9)
        self.marker.set_visible(note is None)
        self.box.set_visible(note is None)
        for im in self.ims[2:]:
            im.set_visible(note is None)
        say(self.msgs[2], "nothing to project:\n" + note.replace(" (", "\n(") if note else None)
        if note:
            self.axes[2].set_title(f"{self.rule} projection\n", fontsize=9)
            self.axes[3].set_title("", fontsize=9)
            return note
        self.marker.set_data([x], [y])
        y0, y1, x0, x1 = support_box(p.maps[0, 0])
        self.box.set_bounds(x0 - 0.5, y0 - 0.5, x1 - x0, y1 - y0)
        show(self.ims[2], self.axes[2], projection_rgb(p.maps[0, 0])[y0:y1, x0:x1])
        show(self.ims[3], self.axes[3], s.display[y0:y1, x0:x1])
        self.axes[2].set_title(f"{self.rule} projection of that unit\n({y1 - y0}×{x1 - x0} px, grey = 0)", fontsize=9)
        self.axes[3].set_title("the image under it\n(red box on the photo)", fontsize=9)
        return None


def projection_explorer(loaded, images: Sequence[str], *, image: str, layer: str, border: int = 2,
                        prepare: Callable | None = None) -> Explorer:  # fmt: skip
    """Layer, channel and image controls over :class:`ProjectionDrawing` for the rectified and
    pooled layers (a conv unit projects like the ReLU unit above it, so conv layers add nothing).
    Opens on the channel of ``layer`` whose strongest interior activation on ``image`` is largest."""
    from ..data.images import prepare as prepare_image

    prepare = prepare or (lambda name: prepare_image(name, loaded.preprocess))
    drawing = ProjectionDrawing(loaded, {name: prepare(name) for name in images}, border=border)
    layers = {n: loaded.channels(n) for n in loaded.layers if n.startswith(("relu", "pool"))}
    if layer not in layers:
        raise ValueError(f"unknown layer {layer!r}; valid layers: {', '.join(layers)}")
    start = firing_channel(drawing.acts(image, layer), by="max", border=border)
    choice = ipywidgets.Dropdown(options=list(images), value=image, description="image")
    return layer_channel_explorer(drawing, layers, layer=layer, channel=start, extra={"image": choice})


# --------------------------------------------------------------------------- 03 top-9
class Top9Drawing(Drawing):
    """Notebook 03: one channel's top-9 dataset activations, each projected separately (left,
    grey = 0), beside the receptive-field patches they come from (right); ZF Fig. 2."""

    def __init__(self, loaded, tops: Mapping[str, object], images: torch.Tensor, *,
                 prepare: Callable | None = None, grey: bool = False):  # fmt: skip
        self.tops, self.n_images = tops, len(images)
        self.unit = lru_cache(maxsize=64)(
            lambda layer, channel: project_topk(loaded, tops[layer], [channel], images, prepare=prepare, grey=grey)
        )
        self.figure = fig = new_figure(7.6, 4.0)
        self.axes = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.01, right=0.99, top=0.84, bottom=0.02, wspace=0.05)
        self.ims, self.msgs = zip(*(blank(ax, fontsize=10) for ax in self.axes))

    def __call__(self, layer: str, channel: int) -> str | None:
        values = self.tops[layer].values[channel]
        if float(values.max()) <= 0:
            note = f"channel {channel} never fires on the {self.n_images} scanned images"
            for im, msg in zip(self.ims, self.msgs):
                im.set_visible(False)
                say(msg, None)
            say(self.msgs[0], note.replace(" on ", "\non "))
            for ax in self.axes:
                ax.set_title("")
            self.figure.suptitle(f"{layer} channel {channel}", fontsize=10)
            return note
        tp = self.unit(layer, channel)
        size = tp.projections.shape[2]
        interpolation = "nearest" if size < 40 else "antialiased"
        for im, ax, msg, block in zip(self.ims, self.axes, self.msgs, (tp.projections[0], tp.patches[0])):
            show(im, ax, tile_block(block))
            im.set_interpolation(interpolation)
            im.set_visible(True)
            say(msg, None)
        self.axes[0].set_title("projections (grey = 0)", fontsize=9)
        self.axes[1].set_title(f"receptive-field patches ({size} px)", fontsize=9)
        span = f"activations {float(values.min()):.2f}–{float(values.max()):.2f}"
        self.figure.suptitle(f"{layer} channel {channel}: top-9 of {self.n_images} images, {span}", fontsize=10)
        return None


def top9_explorer(loaded, tops: Mapping[str, object], images: torch.Tensor, *, layer: str,
                  prepare: Callable | None = None, grey: bool = False) -> Explorer:  # fmt: skip
    """Layer and channel sliders over :class:`Top9Drawing` for the scanned layers (``tops``),
    opening on the channel of ``layer`` with the strongest top activation."""
    layers = {name: int(top.values.shape[0]) for name, top in tops.items()}
    if layer not in layers:
        raise ValueError(f"unknown layer {layer!r}; valid layers (scanned): {', '.join(layers)}")
    drawing = Top9Drawing(loaded, tops, images, prepare=prepare, grey=grey)
    start = int(tops[layer].values.amax(1).argmax())
    return layer_channel_explorer(drawing, layers, layer=layer, channel=start)
