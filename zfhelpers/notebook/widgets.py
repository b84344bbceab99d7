"""ipywidgets explorers. The render callbacks are plain functions from :mod:`zfhelpers.notebook.plots`, so
everything here is testable without a browser (set a slider's value → the callback runs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display


@dataclass
class Explorer:
    """The pieces of a layer/channel explorer: show ``ui`` in a notebook; set ``layer.value`` or
    ``channel.value`` (or any of ``extra``) to re-render into ``out``."""

    ui: widgets.Widget
    out: widgets.Output
    layer: widgets.SelectionSlider
    channel: widgets.IntSlider
    extra: dict[str, widgets.Widget]
    refresh: Callable[[], None]


def layer_channel_explorer(
    render: Callable[..., object],
    channels_by_layer: Mapping[str, int],
    *,
    layer: str | None = None,
    channel: int = 0,
    extra: Mapping[str, widgets.Widget] | None = None,
) -> Explorer:
    """Build sliders for ``layer`` (ordered names) and ``channel`` (0..C-1 of the chosen layer).

    ``render(layer=..., channel=..., **extra_values)`` is called once now and on every change;
    it may draw with pyplot (shown inside the output area) or return a Figure."""
    names = list(channels_by_layer)
    if not names:
        raise ValueError("channels_by_layer is empty")
    layer = layer or names[0]
    if layer not in channels_by_layer:
        raise ValueError(f"unknown layer {layer!r}; valid layers: {', '.join(names)}")
    layer_w = widgets.SelectionSlider(options=names, value=layer, description="layer",
                                      continuous_update=False)  # fmt: skip
    channel_w = widgets.IntSlider(value=min(channel, channels_by_layer[layer] - 1), min=0,
                                  max=channels_by_layer[layer] - 1, description="channel",
                                  continuous_update=False)  # fmt: skip
    extra = dict(extra or {})
    out = widgets.Output(layout=widgets.Layout(min_height="320px"))
    updating = {"busy": False}

    def refresh() -> None:
        if updating["busy"]:
            return
        values = {k: w.value for k, w in extra.items()}
        with out:
            out.clear_output(wait=True)
            fig = render(layer=layer_w.value, channel=channel_w.value, **values)
            if fig is not None:
                display(fig)
                plt.close(fig)

    def on_layer(change) -> None:
        # Changing the layer first moves the channel range, without a render for the
        # intermediate (layer, stale channel) pair.
        updating["busy"] = True
        try:
            channel_w.max = channels_by_layer[change["new"]] - 1
            channel_w.value = min(channel_w.value, channel_w.max)
        finally:
            updating["busy"] = False
        refresh()

    layer_w.observe(on_layer, names="value")
    channel_w.observe(lambda _change: refresh(), names="value")
    for w in extra.values():
        w.observe(lambda _change: refresh(), names="value")
    ui = widgets.VBox([widgets.HBox([layer_w, channel_w, *extra.values()]), out])
    refresh()
    return Explorer(ui=ui, out=out, layer=layer_w, channel=channel_w, extra=extra, refresh=refresh)


def controls_explorer(render: Callable[..., object], controls: Mapping[str, widgets.Widget]) -> Explorer:
    """Sliders of any kind (occluder size, stride, image, …): ``render(**values)`` runs now and on
    every change. Returned as an :class:`Explorer` whose ``layer``/``channel`` are None."""
    if not controls:
        raise ValueError("controls is empty")
    out = widgets.Output(layout=widgets.Layout(min_height="320px"))

    def refresh() -> None:
        with out:
            out.clear_output(wait=True)
            fig = render(**{k: w.value for k, w in controls.items()})
            if fig is not None:
                display(fig)
                plt.close(fig)

    for w in controls.values():
        w.observe(lambda _change: refresh(), names="value")
    ui = widgets.VBox([widgets.HBox(list(controls.values())), out])
    refresh()
    return Explorer(ui=ui, out=out, layer=None, channel=None, extra=dict(controls), refresh=refresh)
