import pytest

from zfhelpers.notebook import widgets


def _explorer(calls, **kwargs):
    def render(layer, channel, **extra):
        calls.append((layer, channel, *extra.values()))

    return widgets.layer_channel_explorer(render, {"conv1": 8, "conv2": 4, "conv3": 16}, **kwargs)


def test_render_runs_once_at_start_and_on_each_change():
    calls = []
    ex = _explorer(calls)
    assert calls == [("conv1", 0)]
    ex.channel.value = 5
    assert calls[-1] == ("conv1", 5)
    ex.layer.value = "conv3"
    assert calls[-1] == ("conv3", 5) and ex.channel.max == 15


def test_channel_range_follows_layer_without_stale_render():
    calls = []
    ex = _explorer(calls, layer="conv1", channel=7)
    ex.layer.value = "conv2"  # 4 channels: the channel must be clamped before rendering
    assert ex.channel.max == 3 and ex.channel.value == 3
    assert calls[-1] == ("conv2", 3)
    assert ("conv2", 7) not in calls


def test_extra_controls_are_passed_through():
    import ipywidgets

    calls = []
    image = ipywidgets.Dropdown(options=["chelsea", "coffee"], value="chelsea")
    ex = _explorer(calls, extra={"image": image})
    image.value = "coffee"
    assert calls[-1] == ("conv1", 0, "coffee")
    assert ex.extra["image"] is image


def test_unknown_start_layer():
    with pytest.raises(ValueError, match="valid layers: conv1, conv2, conv3"):
        _explorer([], layer="fc6")


def test_controls_explorer_calls_render_with_current_values():
    import ipywidgets

    calls = []
    size = ipywidgets.IntSlider(value=32, min=8, max=64)
    image = ipywidgets.Dropdown(options=["chelsea", "coffee"], value="chelsea")
    widgets.controls_explorer(lambda **kw: calls.append(kw), {"size": size, "image": image})
    assert calls == [{"size": 32, "image": "chelsea"}]
    size.value = 48
    image.value = "coffee"
    assert calls[-2:] == [{"size": 48, "image": "chelsea"}, {"size": 48, "image": "coffee"}]
    with pytest.raises(ValueError, match="empty"):
        widgets.controls_explorer(lambda: None, {})


# --------------------------------------------------------------------------- display, busy state, errors
JPEG = b"\xff\xd8\xff"


def test_status_says_drawing_during_the_render_and_the_time_after():
    seen = []
    holder = {}

    def render(layer, channel):
        if "ex" in holder:
            seen.append(holder["ex"].status.value)

    ex = holder["ex"] = _explorer_with(render)
    ex.channel.value = 2
    assert len(seen) == 1 and "drawing conv1 · channel 2" in seen[0]
    assert "drawn in" in ex.status.value and "conv1 · channel 2" in ex.status.value
    assert ex.seconds is not None and 0 <= ex.seconds < 5
    assert f"{ex.seconds:.2f} s" in ex.status.value


def _explorer_with(render, **kwargs):
    return widgets.layer_channel_explorer(render, {"conv1": 8, "conv2": 4, "conv3": 16}, **kwargs)


def test_a_figure_per_move_becomes_a_jpeg_and_is_closed():
    import matplotlib.pyplot as plt

    def render(layer, channel):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.set_title(f"{layer} {channel}")
        return fig

    plt.close("all")
    ex = _explorer_with(render)
    first = bytes(ex.image.value)
    ex.channel.value = 3
    assert first.startswith(JPEG) and bytes(ex.image.value).startswith(JPEG) and bytes(ex.image.value) != first
    assert plt.get_fignums() == []


class _Counter(widgets.Drawing):
    """One persistent figure; the title changes per move; channel 3 is 'dead'."""

    def __init__(self):
        self.figure = widgets.new_figure(3, 2)
        self.ax = self.figure.subplots()
        self.calls = 0

    def __call__(self, layer, channel):
        self.calls += 1
        self.ax.set_title(f"{layer} {channel}")
        return "channel 3 is dead on this image (all zeros)" if channel == 3 else None


def test_a_drawing_is_updated_in_place_and_its_note_reaches_the_status():
    import matplotlib.pyplot as plt

    drawing = _Counter()
    figure = drawing.figure
    ex = _explorer_with(drawing)
    first = bytes(ex.image.value)
    ex.channel.value = 3
    assert drawing.figure is figure and drawing.calls == 2 and plt.get_fignums() == []
    assert bytes(ex.image.value).startswith(JPEG) and bytes(ex.image.value) != first
    assert ex.note == "channel 3 is dead on this image (all zeros)" and ex.note in ex.status.value
    ex.channel.value = 4
    assert ex.note is None and "dead" not in ex.status.value


def test_an_error_in_a_move_is_shown_and_the_next_move_works():
    def render(layer, channel):
        if channel == 5:
            raise RuntimeError("boom")

    ex = _explorer_with(render)
    ex.channel.value = 5  # must not raise: JupyterLab would swallow it
    assert ex.error == "RuntimeError: boom" and "boom" in ex.status.value
    ex.channel.value = 6
    assert ex.error is None and "drawn in" in ex.status.value


def test_controls_are_labelled_and_the_layer_slider_is_wide():
    import ipywidgets

    image = ipywidgets.Dropdown(options=["chelsea", "coffee"])
    ex = _explorer_with(lambda **_: None, extra={"image": image})
    assert [w.description for w in (ex.layer, ex.channel, image)] == ["layer", "channel", "image"]
    assert ex.layer.layout.width == widgets.SLIDER_WIDTH and ex.layer.readout
    assert "image chelsea" in ex.status.value


def test_redraws_use_the_requested_threads_and_restore_them():
    import torch

    before = torch.get_num_threads()
    seen = []
    _explorer_with(lambda **_: seen.append(torch.get_num_threads()), threads=1)
    assert seen == [1] and torch.get_num_threads() == before


def test_explore_shows_only_the_note_when_not_interactive(monkeypatch):
    shown = []
    monkeypatch.setattr(widgets, "display", lambda obj, **kw: shown.append(obj))

    def build():
        raise AssertionError("must not be built")

    assert widgets.explore(False, build) is None
    assert shown == [{"text/markdown": f"*{widgets.STATIC_NOTE}*", "text/plain": widgets.STATIC_NOTE}]
    ex = widgets.explore(True, lambda: _explorer_with(lambda **_: None))
    assert shown[-1] is ex.ui


# --------------------------------------------------------------------------- the notebook explorers
def test_firing_channel_keeps_a_live_choice_and_replaces_a_dead_one():
    import torch

    from zfhelpers.notebook.explorers import firing_channel

    acts = torch.zeros(4, 5, 5)
    acts[1, 2, 2], acts[2] = 1.0, 0.5
    assert firing_channel(acts, 1) == 1
    assert firing_channel(acts, 0) == 2  # channel 0 is all zero; channel 2 has the largest mean
    assert firing_channel(acts, 0, by="max") == 1
    assert firing_channel(acts) == 2


def test_feature_map_explorer_opens_on_a_live_channel_and_names_a_dead_one(mobilenet):
    from zfhelpers import prepare
    from zfhelpers.notebook.explorers import feature_map_explorer

    sample = prepare("chelsea", mobilenet.preprocess)
    ex = feature_map_explorer(mobilenet, sample, layer="stem")
    acts = ex.render.activations("stem")
    assert acts[ex.channel.value].any() and ex.note is None
    dead = [c for c in range(acts.shape[0]) if not acts[c].any()]
    assert dead, "stem has channels that are all zero on chelsea (the case the issue reported)"
    ex.channel.value = dead[0]
    assert ex.note == f"channel {dead[0]} is dead on this image (all zeros)" and ex.note in ex.status.value
    ex.layer.value = "head"
    assert ex.channel.max == 1279 and ex.render.im_map.get_array().shape == (7, 7)


def test_projection_explorer_shows_the_units_projection(hed):
    import numpy as np

    from zfhelpers import prepare, unit_projection
    from zfhelpers.data.display import projection_rgb, support_box
    from zfhelpers.notebook.explorers import projection_explorer

    ex = projection_explorer(hed, ["chelsea"], image="chelsea", layer="relu2_2", border=2)
    assert "conv1_1" not in ex.layer.options and "pool2" in ex.layer.options
    c = ex.channel.value
    ref = unit_projection(hed, prepare("chelsea", hed.preprocess).tensor, layer="relu2_2", channels=c, border=2)
    assert ref.values.item() > 0 and ex.note is None
    y0, y1, x0, x1 = support_box(ref.maps[0, 0])
    assert np.allclose(ex.render.ims[2].get_array(), projection_rgb(ref.maps[0, 0])[y0:y1, x0:x1], atol=1e-5)
    dead = next(k for k in range(hed.channels("relu2_2")) if not ex.render.acts("chelsea", "relu2_2")[k].any())
    ex.channel.value = dead
    assert ex.note == f"channel {dead} is dead on chelsea (all zeros)"
    with pytest.raises(ValueError, match="valid layers: relu1_1"):
        projection_explorer(hed, ["chelsea"], image="chelsea", layer="conv3_3")


def test_top9_explorer_opens_on_the_strongest_channel_and_names_a_silent_one():
    import dataclasses

    from test_top9_evolution_architecture import _twin_model

    from zfhelpers.analysis import scan
    from zfhelpers.data import fashion
    from zfhelpers.notebook.explorers import top9_explorer

    lm = _twin_model()
    x = torch_randint_images(24)
    top = scan.scan_topk(lm, x, layer="relu2", k=9, batch_size=8, prepare=fashion.to_model_input, progress=False)
    values = top.values.clone()
    values[3] = 0  # as if channel 3 never fired on the scanned set
    tops = {"relu2": dataclasses.replace(top, values=values)}
    ex = top9_explorer(lm, tops, x, layer="relu2", prepare=fashion.to_model_input, grey=True)
    assert ex.channel.value == int(values.amax(1).argmax()) and ex.note is None
    assert ex.render.ims[0].get_array().shape[0] > 3 * 9  # a 3×3 block of receptive-field crops
    ex.channel.value = 3
    assert ex.note == "channel 3 never fires on the 24 scanned images"


def torch_randint_images(n):
    import torch

    torch.manual_seed(0)
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
