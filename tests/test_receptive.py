import pytest
import torch
from torch import nn

from zfhelpers.methods.projection import unit_projection
from zfhelpers.methods.receptive import exact_box, receptive_field


def brute_force_box(modules, in_size, y, x):
    """Input pixels that can influence unit (y, x): gradient support of a copy where max-pools
    become average pools of the same geometry, weights are positive and rectifiers are gone."""
    layers = []
    for m in modules:
        if isinstance(m, nn.Conv2d):
            c = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, bias=False)
            nn.init.constant_(c.weight, 1.0)
            layers.append(c)
        elif isinstance(m, nn.MaxPool2d):
            layers.append(nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode))
    net = nn.Sequential(*layers)
    inp = torch.ones(1, modules[0].in_channels, in_size, in_size, requires_grad=True)
    out = net(inp)
    (g,) = torch.autograd.grad(out[0, 0, y, x], inp)
    ys, xs = (g[0].abs().sum(0) > 0).nonzero(as_tuple=True)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


ZF = [nn.Conv2d(3, 4, 7, 2, 1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.LocalResponseNorm(3), nn.Conv2d(4, 4, 5, 2),
      nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(4, 4, 3, padding=1)]  # fmt: skip
VGG = [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(2, 2),
       nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(2, 2), nn.Conv2d(4, 4, 3, padding=2, dilation=2)]  # fmt: skip


@pytest.mark.parametrize(("modules", "size"), [(ZF, 120), (VGG, 64)], ids=["zf", "vgg-dilated"])
def test_receptive_field_matches_brute_force(modules, size):
    rf = receptive_field(modules)
    out = nn.Sequential(*modules)(torch.zeros(1, 3, size, size))
    h, w = out.shape[-2:]
    for y, x in [(0, 0), (1, 2), (h // 2, w // 3), (h - 1, w - 1)]:
        truth = brute_force_box(modules, size, y, x)
        assert exact_box(modules, (size, size), y, x) == truth
        y0, y1, x0, x1 = rf.box(y, x, size, size)  # nominal box: a superset (what packing needs)
        assert y0 <= truth[0] and truth[1] <= y1 and x0 <= truth[2] and truth[3] <= x1
    assert rf.box(h // 2, w // 2, size, size) == exact_box(modules, (size, size), h // 2, w // 2)  # interior


def test_known_vgg16_receptive_fields(hed):
    from zfhelpers.methods.receptive import for_layer

    assert for_layer(hed, "relu3_3").size == (40, 40) and for_layer(hed, "relu3_3").jump == (4, 4)
    assert for_layer(hed, "relu4_3").size == (92, 92) and for_layer(hed, "relu5_3").size == (196, 196)


def test_unknown_geometry_is_refused():
    with pytest.raises(TypeError, match="AdaptiveAvgPool2d"):
        receptive_field([nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(1)])


def test_packed_projection_equals_unpacked():
    torch.manual_seed(3)
    net = nn.Sequential(*[m for m in ZF], nn.ReLU())
    x = torch.randn(2, 3, 160, 160)
    for rule in ("deconvnet", "guided", "gradient"):
        packed = unit_projection(net, x, layer="8", channels=list(range(4)), rule=rule, pack=True)
        plain = unit_projection(net, x, layer="8", channels=list(range(4)), rule=rule, pack=False)
        assert torch.equal(packed.positions, plain.positions)
        assert torch.allclose(packed.maps, plain.maps, atol=1e-6)
