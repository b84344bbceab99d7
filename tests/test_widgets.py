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
