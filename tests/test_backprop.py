"""The hook engine against the definitions, the explicit mirror, and its own restoration."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zfhelpers import capture
from zfhelpers.methods.mirror import mirror_project
from zfhelpers.methods.projection import Projector, channel_projection, class_projection, unit_projection
from zfhelpers.methods.rules import RULES, BackpropRules, UnhookedRectifierWarning


def zf_like(inplace=True):
    """ZF's pattern in miniature: 7×7/2 conv, overlapping 3×3/2 pools, LRN after the first pool."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 7, 2, 1), nn.ReLU(inplace=inplace), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.LocalResponseNorm(5), nn.Conv2d(8, 16, 5, 2), nn.ReLU(inplace=inplace),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=inplace),
    )  # fmt: skip


@pytest.mark.parametrize("layer", [5, 8])
def test_engine_equals_explicit_mirror_on_overlapping_pools(layer):
    net, x = zf_like(), torch.randn(2, 3, 96, 96)
    p = unit_projection(net, x, layer=str(layer), channels=list(range(16)), rule="deconvnet")
    compared = 0
    for k, c in enumerate(p.channels):
        for n in range(x.shape[0]):
            trace = mirror_project(net, x[n : n + 1], layer, c, tuple(p.positions[k, n].tolist()))
            scale = p.maps[k, n].abs().max()
            assert (trace.image[0] - p.maps[k, n]).abs().max() <= 1e-5 * max(scale, 1e-12)
            compared += bool(scale > 0)
    assert compared >= 16  # most units are alive: the comparison is not between zeros


def test_collision_rule_matters_only_when_pools_overlap():
    torch.manual_seed(1)
    overlapping, x = zf_like(), torch.randn(1, 3, 96, 96)
    diffs = []
    for c in range(16):
        pos = tuple(unit_projection(overlapping, x, layer="8", channels=c).positions[0, 0].tolist())
        s = mirror_project(overlapping, x, 8, c, pos, collision="sum").image
        o = mirror_project(overlapping, x, 8, c, pos, collision="overwrite").image
        diffs.append((s - o).abs().max().item())
    assert max(diffs) > 0  # some argmax is shared by two 3×3/2 windows
    vgg_like = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                             nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())  # fmt: skip
    for c in range(4):
        s = mirror_project(vgg_like, x, 4, c, (5, 5), collision="sum").image
        o = mirror_project(vgg_like, x, 4, c, (5, 5), collision="overwrite").image
        assert torch.equal(s, o)


def _rule_grads(net, x, seed):
    out = {}
    for rule in RULES:
        with BackpropRules(net, rule):
            xg = x.clone().requires_grad_(True)
            (out[rule],) = torch.autograd.grad(net(xg), xg, seed)
    return out


def test_rules_on_a_single_rectifier_match_the_definitions():
    x = torch.randn(4, 10)
    seed = torch.randn(4, 10)
    g = _rule_grads(nn.Sequential(nn.ReLU()), x, seed)
    assert torch.equal(g["gradient"], seed * (x > 0))
    assert torch.equal(g["deconvnet"], seed.clamp_min(0))
    assert torch.equal(g["guided"], seed.clamp_min(0) * (x > 0))
    g6 = _rule_grads(nn.Sequential(nn.ReLU6()), 4 * x, seed)
    assert torch.equal(g6["gradient"], seed * ((4 * x > 0) & (4 * x < 6)))


def test_guided_is_gradient_mask_times_deconvnet_mask():
    """Through one rectifier after a linear map: guided = 1[f>0] · 1[R>0] · R exactly."""
    torch.manual_seed(0)
    lin = nn.Linear(6, 6)
    net = nn.Sequential(lin, nn.ReLU(inplace=True))
    x, seed = torch.randn(3, 6), torch.randn(3, 6)
    g = _rule_grads(net, x, seed)
    f = lin(x).detach()
    r = seed
    assert torch.allclose(g["guided"], ((f > 0) & (r > 0)).float().mul(r) @ lin.weight, atol=1e-6)
    assert torch.allclose(g["gradient"], (f > 0).float().mul(r) @ lin.weight, atol=1e-6)
    assert torch.allclose(g["deconvnet"], r.clamp_min(0) @ lin.weight, atol=1e-6)


def test_all_rules_coincide_on_a_relu_free_network():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(3, 2), nn.Conv2d(4, 2, 3))
    x = torch.randn(2, 3, 16, 16)
    g = _rule_grads(net, x, torch.randn_like(net(x)))
    assert torch.equal(g["gradient"], g["deconvnet"]) and torch.equal(g["gradient"], g["guided"])


def test_gradient_rule_equals_autograd():
    net = zf_like(inplace=False)
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    seed = torch.randn_like(net(x))
    (plain,) = torch.autograd.grad(net(x), x, seed)
    with BackpropRules(net, "gradient"):
        xg = x.detach().clone().requires_grad_(True)
        (ours,) = torch.autograd.grad(net(xg), xg, seed)
    assert torch.allclose(plain, ours, atol=1e-6)


def test_batched_projection_equals_one_at_a_time():
    net, x = zf_like(), torch.randn(3, 3, 80, 80)
    for rule in RULES:
        batched = unit_projection(net, x, layer="5", channels=list(range(6)), rule=rule, batch_size=4)
        for k, c in enumerate(batched.channels):
            for n in range(3):
                single = unit_projection(net, x[n : n + 1], layer="5", channels=c, rule=rule)
                assert torch.allclose(single.maps[0, 0], batched.maps[k, n], atol=1e-6)
                assert torch.equal(single.positions[0, 0], batched.positions[k, n])


def test_one_recorded_forward_projects_many_units_like_project():
    # The explorers keep one forward pass per (image, layer) and project a channel per slider move.
    net, x = zf_like(), torch.randn(2, 3, 80, 80)
    for rule in RULES:
        fwd = Projector(net, x, layer="5", rule=rule)
        with torch.no_grad():  # a caller's no_grad must not matter: the graph was built with grad on
            for c in (3, 0, 3, 5):
                again = fwd.units(c, border=1)
                ref = unit_projection(net, x, layer="5", channels=c, rule=rule, border=1)
                assert torch.allclose(again.maps, ref.maps, atol=1e-6) and torch.equal(again.positions, ref.positions)
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    last = Projector(net, x, layer="5").units([1, 2])
    assert last.maps.shape == (2, 2, 3, 80, 80)


def test_projection_zeroes_all_other_activations():
    """A unit whose activation is zero projects to nothing; a fixed position is honoured."""
    net, x = zf_like(), torch.randn(1, 3, 64, 64)
    acts = capture(net, x, ["5"])["5"]
    zero = (acts[0] == 0).nonzero()[0].tolist()
    p = unit_projection(net, x, layer="5", channels=zero[0], position=tuple(zero[1:]))
    assert p.values.item() == 0 and p.maps.abs().max() == 0
    with pytest.raises(ValueError, match=r"valid: 0\.\.15"):
        unit_projection(net, x, layer="5", channels=99)
    with pytest.raises(ValueError, match="valid: gradient, deconvnet, guided"):
        unit_projection(net, x, layer="5", channels=0, rule="lrp")


def test_hooks_and_inplace_flags_restored_after_an_exception():
    net = zf_like(inplace=True)
    relus = [m for m in net if isinstance(m, nn.ReLU)]
    with pytest.raises(RuntimeError, match="injected"), BackpropRules(net, "guided"):
        assert not any(r.inplace for r in relus)
        net(torch.randn(1, 3, 32, 32))
        raise RuntimeError("injected")
    assert all(r.inplace for r in relus)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    before = net(torch.ones(1, 3, 32, 32))
    assert torch.equal(before, zf_like_after_copy(net)(torch.ones(1, 3, 32, 32)))


def zf_like_after_copy(net):
    import copy

    return copy.deepcopy(net)


def test_inplace_relu_leaves_the_callers_tensor_alone():
    net = nn.Sequential(nn.ReLU(inplace=True))
    x = torch.randn(8)
    keep = x.clone()
    with BackpropRules(net, "deconvnet"):
        net(x)
    assert torch.equal(x, keep)


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(F.relu(self.conv(x)) - 0.1)


def test_functional_relus_are_reported():
    net, x = FunctionalNet(), torch.randn(1, 3, 8, 8)
    with pytest.warns(UnhookedRectifierWarning, match=r"F\.relu×1"):
        with BackpropRules(net, "guided") as rules:
            net(x)
    assert rules.unhooked == {"F.relu": 1}
    with pytest.raises(RuntimeError, match="functionally"), BackpropRules(net, "guided", strict=True):
        net(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = zf_like()
        with BackpropRules(plain, "guided"):  # module ReLUs only: no warning
            plain(x.new_ones(1, 3, 32, 32))


def test_attribute_class_score_gradient_matches_autograd():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    x = torch.randn(2, 3, 12, 12, requires_grad=True)
    (expected,) = torch.autograd.grad(net(x)[:, 3].sum(), x)
    assert torch.allclose(class_projection(net, x, target=3, rule="gradient"), expected, atol=1e-6)


def test_cascading_randomization_leaves_the_model_alone_and_detects_change():
    from zfhelpers.analysis.sanity import cascading_randomization, similarity

    torch.manual_seed(0)
    net = zf_like()
    x = torch.randn(2, 3, 64, 64)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    steps = cascading_randomization(net, lambda m: channel_projection(m, x, layer="8", channels=0, rule="gradient"),
                                    layers=["7", "4", "0"])  # fmt: skip
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert [s.randomized_up_to for s in steps] == ["none", "7", "4", "0"]
    assert steps[0].spearman == 1.0 and steps[-1].spearman < 0.9
    rho, ssim = similarity(steps[0].maps, steps[0].maps)
    assert rho == pytest.approx(1.0) and ssim == pytest.approx(1.0)
