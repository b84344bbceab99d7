"""ipywidgets explorers: labelled sliders over a figure, testable without a browser (set a slider's
value → the render callback runs synchronously).

Each redraw becomes JPEG bytes in an ``ipywidgets.Image``, not a figure in an ``Output`` widget:
one message per move, an image of the figure's own size (no empty box around it), and no
``Output`` flicker. JPEG, because photos and feature maps make poor PNGs: for notebook 01's
960×330 px figure PNG took 0.47 s and 340 kB, JPEG (quality 90) 0.19 s and 90 kB on a busy
2-core machine, most of it the drawing itself. A ``status`` line says "drawing…" while the
kernel works and "drawn in 0.31 s" afterwards, so a slow move is visible; errors raised in a
callback (which JupyterLab would otherwise swallow) are shown there too, traceback in ``errors``.

``render`` is either a function returning a new matplotlib Figure per move, or a
:class:`Drawing`: one persistent figure whose artists are updated in place, which is much faster.

Committed notebooks never hold live widgets (they would show as ``VBox(...)`` text, or as "model
not found" once the kernel is gone): :func:`explore` shows the explorer only when the notebook's
``interactive`` parameter is true, and otherwise a one-line note."""

from __future__ import annotations

import html
import io
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Shown in place of the explorer when a notebook runs with ``interactive = False`` (papermill,
#: ``make figures``, ``refresh-notebooks``), so committed notebooks say how to get the sliders.
STATIC_NOTE = "Run this notebook with `interactive = True` to explore (sliders for layer and channel)."
SLIDER_WIDTH = "420px"
DPI = 100


class Drawing:
    """A figure drawn once and updated in place (``set_data``, new titles) on every move.

    Subclasses build ``self.figure`` (use :func:`new_figure`) and their artists in ``__init__``;
    ``__call__(**values)`` updates them and may return a short note for the status line (e.g. that
    the unit is dead on this image)."""

    figure: Figure

    def __call__(self, **values) -> str | None:
        raise NotImplementedError


def new_figure(width: float, height: float, dpi: int = DPI) -> Figure:
    """A figure outside pyplot (so the inline backend never shows or keeps it) with an Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def figure_jpeg(fig: Figure, *, tight: bool = False, dpi: int = DPI, quality: int = 90) -> bytes:
    """JPEG bytes of ``fig``; ``tight`` trims the white margin (one extra layout pass)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=dpi, pil_kwargs={"quality": quality},
                **({"bbox_inches": "tight", "pad_inches": 0.05} if tight else {}))  # fmt: skip
    return buf.getvalue()


def redraw_threads() -> int:
    """Intra-op threads for a redraw: half the cores. On a busy 2-core machine a second OpenMP
    thread that has to wait for a core made small ops 10–30× slower (project_topk of one channel:
    1.2 s with 2 threads, 0.04 s with 1), and the browser needs a core for the front-end too."""
    return max(1, (os.cpu_count() or 2) // 2)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the body with ``n`` torch intra-op threads (None: unchanged); restored afterwards."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Explorer:
    """Controls over a rendered image. Set ``layer.value``, ``channel.value`` or any of ``extra``
    (or call ``refresh()``) to redraw; ``seconds`` and ``note`` describe the last redraw."""

    def __init__(self, render: Callable[..., object] | Drawing, controls: Mapping[str, widgets.Widget], *,
                 layer: widgets.SelectionSlider | None = None, channel: widgets.IntSlider | None = None,
                 channels_by_layer: Mapping[str, int] | None = None, threads: int | None = None):  # fmt: skip
        self.render = render
        self.controls = dict(controls)
        self.layer, self.channel = layer, channel
        self.channels_by_layer = dict(channels_by_layer or {})
        self.extra = {k: w for k, w in self.controls.items() if w is not layer and w is not channel}
        self.threads = redraw_threads() if threads is None else threads
        self.image = widgets.Image(format="jpeg")
        self.status = widgets.HTML(layout=widgets.Layout(min_height="1.6em"))
        self.errors = widgets.Output()
        self.seconds: float | None = None
        self.note: str | None = None
        self.error: str | None = None
        self._traceback_shown = False
        self._hold = False  # True while the layer moves the channel (no render for the half-updated state)
        for name, w in self.controls.items():
            if not getattr(w, "description", None):
                w.description = name  # every control says what it is
            w.observe(self._on_change, names="value")
        rows = [widgets.HBox([w]) for w in (layer, channel) if w is not None]
        if self.extra:
            rows.append(widgets.HBox(list(self.extra.values())))
        self.ui = widgets.VBox([*rows, self.status, self.image, self.errors])

    def values(self) -> dict[str, object]:
        return {name: w.value for name, w in self.controls.items()}

    def _on_change(self, change) -> None:
        if self._hold:
            return
        if change["owner"] is self.layer and self.channel is not None and self.channels_by_layer:
            # A new layer first moves the channel into its range, without a render for the
            # intermediate (new layer, stale channel) pair.
            self._hold = True
            try:
                self.channel.max = self.channels_by_layer[change["new"]] - 1
                self.channel.value = min(self.channel.value, self.channel.max)
            finally:
                self._hold = False
        self.refresh()

    def refresh(self) -> None:
        """Redraw for the current values: status "drawing…", render, image, status with the time."""
        values = self.values()
        what = self.describe(values)
        self.status.value = f'<span style="color:#b35c00">⏳ drawing {html.escape(what)}…</span>'
        start = time.perf_counter()
        try:
            with torch_threads(self.threads):
                picture, note = self._draw(values)
        except Exception as exc:  # shown, not raised: a widget callback's exception would vanish
            self.error = f"{type(exc).__name__}: {exc}"
            self.status.value = f'<span style="color:#c00">⚠ {html.escape(what)}: {html.escape(self.error)}</span>'
            with self.errors:
                self.errors.clear_output()
                traceback.print_exc()
            self._traceback_shown = True
            return
        self.seconds, self.note, self.error = time.perf_counter() - start, note, None
        if picture is not None:
            self.image.value = picture
        if self._traceback_shown:
            self.errors.clear_output()
            self._traceback_shown = False
        text = f"{html.escape(what)} · drawn in {self.seconds:.2f} s"
        if note:
            text += f' · <b style="color:#c00">{html.escape(note)}</b>'
        self.status.value = text

    def _draw(self, values: dict) -> tuple[bytes | None, str | None]:
        result = self.render(**values)
        if isinstance(result, Figure):  # a new figure per move
            try:
                return figure_jpeg(result, tight=True), None
            finally:
                plt.close(result)
        if isinstance(self.render, Drawing):
            return figure_jpeg(self.render.figure), result
        return None, result if isinstance(result, str) else None

    def describe(self, values: dict) -> str:
        """What is being drawn, for the status line ("relu3_3 · channel 12 · image coffee")."""
        parts = [] if self.layer is None else [str(values["layer"])]
        parts += [f"{w.description} {values[name]}" for name, w in self.controls.items() if w is not self.layer]
        return " · ".join(parts)


def layer_channel_explorer(
    render: Callable[..., object] | Drawing,
    channels_by_layer: Mapping[str, int],
    *,
    layer: str | None = None,
    channel: int = 0,
    extra: Mapping[str, widgets.Widget] | None = None,
    threads: int | None = None,
) -> Explorer:
    """Sliders for ``layer`` (ordered names) and ``channel`` (0..C-1 of the chosen layer), plus any
    ``extra`` controls. ``render(layer=..., channel=..., **extra_values)`` runs now and on every
    change; a layer change first clamps the channel to the new range, with no render in between.
    ``channel`` is the opening channel (see :func:`zfhelpers.notebook.explorers.firing_channel`)."""
    names = list(channels_by_layer)
    if not names:
        raise ValueError("channels_by_layer is empty")
    layer = layer or names[0]
    if layer not in channels_by_layer:
        raise ValueError(f"unknown layer {layer!r}; valid layers: {', '.join(names)}")
    wide = widgets.Layout(width=SLIDER_WIDTH)
    layer_w = widgets.SelectionSlider(options=names, value=layer, description="layer", readout=True,
                                      continuous_update=False, layout=wide)  # fmt: skip
    top = channels_by_layer[layer] - 1
    channel_w = widgets.IntSlider(value=min(max(channel, 0), top), min=0, max=top, description="channel",
                                  continuous_update=False, layout=widgets.Layout(width=SLIDER_WIDTH))  # fmt: skip
    controls = {"layer": layer_w, "channel": channel_w, **(extra or {})}
    ex = Explorer(render, controls, layer=layer_w, channel=channel_w, channels_by_layer=channels_by_layer,
                  threads=threads)  # fmt: skip
    ex.refresh()
    return ex


def controls_explorer(render: Callable[..., object] | Drawing, controls: Mapping[str, widgets.Widget], *,
                      threads: int | None = None) -> Explorer:  # fmt: skip
    """Any controls (occluder size, stride, image, …): ``render(**values)`` runs now and on every
    change. The returned :class:`Explorer` has ``layer``/``channel`` None."""
    if not controls:
        raise ValueError("controls is empty")
    ex = Explorer(render, controls, threads=threads)
    ex.refresh()
    return ex


def show_static_note() -> None:
    """The explorer cell's output in a non-interactive run."""
    display({"text/markdown": f"*{STATIC_NOTE}*", "text/plain": STATIC_NOTE}, raw=True)


def explore(interactive: bool, build: Callable[[], Explorer]) -> Explorer | None:
    """The last cell of a notebook: ``build()`` and show the explorer when ``interactive``,
    otherwise only :data:`STATIC_NOTE` (nothing live is stored in a committed notebook)."""
    if not interactive:
        show_static_note()
        return None
    ex = build()
    display(ex.ui)
    return ex
