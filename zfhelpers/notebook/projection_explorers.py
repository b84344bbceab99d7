"""The explorer of notebook 09: one unit of any layer projected with the three backward rules
(gradient, deconvnet, guided backprop; Springenberg et al. 2015 §3.4), side by side.

A :class:`zfhelpers.notebook.widgets.Drawing` updated in place; the forward pass per (layer, rule)
is cached (:class:`zfhelpers.methods.projection.Projector`), so a channel move costs three backward
passes. It opens on the channel whose strongest activation is largest, so never on a dead one."""

from __future__ import annotations

from functools import lru_cache

import torch
from matplotlib.patches import Rectangle

from ..data.display import projection_rgb, support_box
from ..methods.projection import Projector
from ..methods.rules import RULES
from ..models.zoo import adapt
from .explorers import blank, dead_note, firing_channel, say, show
from .widgets import Drawing, Explorer, layer_channel_explorer, new_figure


class RulesDrawing(Drawing):
    """The photo with the unit's support boxed, then the unit's projection under each rule, all
    cropped to the deconvnet projection's support (grey = 0)."""

    def __init__(self, loaded, sample, *, border: int = 2):
        loaded = adapt(loaded)
        self.sample, self.border, self.ceiling = sample, border, loaded.spec.ceiling
        # a graph per (layer, rule); three rules of one layer at a time
        self.forward = lru_cache(maxsize=len(RULES))(
            lambda layer, rule: Projector(loaded, sample.tensor, layer=layer, rule=rule)
        )
        self.figure = fig = new_figure(11.0, 3.1)
        self.axes = fig.subplots(1, len(RULES) + 1)
        fig.subplots_adjust(left=0.01, right=0.99, top=0.83, bottom=0.02, wspace=0.06)
        self.ims, self.msgs = zip(*(blank(ax) for ax in self.axes))
        self.box = self.axes[0].add_patch(Rectangle((0, 0), 1, 1, fill=False, ec="red", lw=1.5))

    def acts(self, layer: str) -> torch.Tensor:
        """C×h×w activations of ``layer`` (from the cached deconvnet forward pass)."""
        return self.forward(layer, "deconvnet").acts.detach()[0]

    def __call__(self, layer: str, channel: int) -> str | None:
        s = self.sample
        show(self.ims[0], self.axes[0], s.display)
        units = {rule: self.forward(layer, rule).units(channel, border=self.border, ceiling=self.ceiling)
                 for rule in RULES}  # fmt: skip
        value = float(units["deconvnet"].values[0, 0])
        if value == 0:
            note = (dead_note(channel) if not bool(self.acts(layer)[channel].any()) else
                    f"channel {channel} has no unclipped activation away from the map's edge")  # fmt: skip
        else:
            note = None
        self.axes[0].set_title(f"{s.name}\n{layer} channel {channel}" + ("" if note else f", unit = {value:.2f}"),
                               fontsize=9)  # fmt: skip
        self.box.set_visible(note is None)
        for im in self.ims[1:]:
            im.set_visible(note is None)
        say(self.msgs[1], "nothing to project:\n" + note if note else None)
        if note:
            for ax, rule in zip(self.axes[1:], RULES):
                ax.set_title(rule, fontsize=9)
            return note
        y0, y1, x0, x1 = support_box(units["deconvnet"].maps[0, 0])
        self.box.set_bounds(x0 - 0.5, y0 - 0.5, x1 - x0, y1 - y0)
        for im, ax, rule in zip(self.ims[1:], self.axes[1:], RULES):
            show(im, ax, projection_rgb(units[rule].maps[0, 0])[y0:y1, x0:x1])
            ax.set_title(f"{rule}\n({y1 - y0}×{x1 - x0} px, grey = 0)", fontsize=9)
        return None


def rules_explorer(loaded, sample, *, layer: str, border: int = 2) -> Explorer:
    """Layer and channel sliders over :class:`RulesDrawing` for the layers with spatial maps,
    opening on the channel of ``layer`` whose strongest activation on ``sample`` is largest."""
    loaded = adapt(loaded)
    layers = loaded.spatial_layers()
    if layer not in layers:
        raise ValueError(f"unknown layer {layer!r}; valid layers: {', '.join(layers)}")
    drawing = RulesDrawing(loaded, sample, border=border)
    start = firing_channel(drawing.acts(layer), by="max", border=border)
    return layer_channel_explorer(drawing, layers, layer=layer, channel=start)
