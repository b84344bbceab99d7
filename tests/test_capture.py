"""The capture helpers, the eval context and the model adapter."""

import pytest
import torch
from torch import nn

from zfhelpers import adapt, capture, capture_detached, eval_mode
from zfhelpers.models.capture import OUTPUT


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 5))  # fmt: skip


def test_inplace_relu_does_not_rewrite_a_detached_capture():
    net = small_net().eval()
    out = capture_detached(net, torch.randn(2, 3, 8, 8), ["0", "1"])
    assert (out["0"] < 0).any() and (out["1"] >= 0).all()


def test_capture_keeps_the_graph_and_stops_at_the_deepest_layer():
    net = small_net().eval()
    calls = []
    net[3].register_forward_hook(lambda *a: calls.append("3"))
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    acts = capture(net, x, ["0"])["0"]
    (g,) = torch.autograd.grad(acts.sum(), x)
    assert g.abs().sum() > 0 and calls == []  # layer 3 never ran


def test_output_pseudo_layer_returns_the_logits():
    net = small_net().eval()
    x = torch.randn(2, 3, 8, 8)
    out = capture_detached(net, x, ["3", OUTPUT])
    assert torch.allclose(out[OUTPUT], net(x))


def test_hooks_are_removed_even_when_the_forward_raises():
    net = small_net().eval()
    with pytest.raises(RuntimeError):
        capture(net, torch.randn(1, 5, 8, 8), ["3"])  # wrong channel count
    assert all(not m._forward_hooks for m in net.modules())


def test_unreached_and_unknown_layers_are_named():
    net = small_net().eval()
    with pytest.raises(ValueError, match="valid layers"):
        capture(net, torch.randn(1, 3, 8, 8), ["nope"])


def test_eval_mode_restores_every_modules_own_flag():
    """A model in train mode with frozen batch norm comes back exactly as it was."""
    net = small_net().train()
    net[2].eval()  # frozen batch norm inside a training model
    before = [m.training for m in net.modules()]
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert [m.training for m in net.modules()] == before
    with pytest.raises(RuntimeError, match="boom"), eval_mode(net):
        raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == before


def test_capture_never_updates_batch_norm_statistics_of_a_training_model():
    net = small_net().train()
    stats = net[2].running_mean.clone()
    capture_detached(net, torch.randn(4, 3, 8, 8), ["3"])
    capture(net, torch.randn(4, 3, 8, 8), ["3"])
    assert torch.equal(net[2].running_mean, stats) and net.training


def test_adapt_names_layers_by_module_path_and_refuses_other_objects():
    lm = adapt(small_net())
    assert lm.layers["3"] == "3" and lm.categories is None and lm.spec.profile == "user"
    assert adapt(lm) is lm
    with pytest.raises(TypeError, match="LoadedModel or a torch.nn.Module"):
        adapt("mobilenet_v2")
