"""The cone engine (backward passes by hand inside each unit's receptive field) equals autograd's
backward pass through the whole image, for every rule, on VGG16-HED, on the ZF twin and on a stack
with every geometry the engine handles (strides, dilation, groups, overlapping padded ceil-mode
pools, batch norm, ReLU6); and it steps aside where it has no rule."""

import pytest
import torch
from torch import nn

import zfhelpers
from zfhelpers import checks
from zfhelpers.methods.cone import tile_input, tile_max, tile_switches
from zfhelpers.methods.projection import Projector, unit_projection
from zfhelpers.methods.rules import RULES
from zfhelpers.models.trained import load_twin


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().amax() / b.abs().amax().clamp_min(1e-12))


def both(lm, x, **kw):
    ref = unit_projection(lm, x, engine="autograd", crop=False, **kw)
    cone = unit_projection(lm, x, engine="cone", **kw)
    assert torch.equal(ref.positions, cone.positions) and torch.allclose(ref.values, cone.values)
    return ref, cone


@pytest.fixture(scope="module")
def vgg():
    return zfhelpers.load_model("vgg16_hed")


@pytest.mark.parametrize("rule", RULES)
def test_cone_equals_autograd_on_vgg16(vgg, rule):
    x = torch.randn(2, 3, 93, 130, generator=torch.Generator().manual_seed(0))
    for layer in ("relu1_2", "relu3_3", "relu4_3", "relu5_3"):
        # batch_size 2 splits the 6 units over three batches of windows
        ref, cone = both(vgg, x, layer=layer, channels=[2, 9, 17], rule=rule, batch_size=2)
        assert ref.maps.abs().amax() > 0
        assert relative_error(cone.maps, ref.maps) < 1e-5, (layer, rule)


def test_units_at_the_corners_and_edges(vgg):
    x = torch.randn(1, 3, 90, 110, generator=torch.Generator().manual_seed(2))
    hw = zfhelpers.capture_detached(vgg, x, ["relu4_3"])["relu4_3"].shape[-2:]
    for y, xx in [(0, 0), (hw[0] - 1, hw[1] - 1), (0, hw[1] - 1), (hw[0] // 2, 1)]:
        for rule in ("deconvnet", "guided"):
            ref, cone = both(vgg, x, layer="relu4_3", channels=[4], position=torch.tensor([y, xx]), rule=rule)
            assert relative_error(cone.maps, ref.maps) < 1e-5, (y, xx, rule)


def test_a_units_projection_lies_inside_its_receptive_field(vgg):
    x = torch.randn(1, 3, 160, 200, generator=torch.Generator().manual_seed(3))
    p = Projector(vgg, x, layer="relu3_3")
    assert p.cone is not None
    unit = p.units([5])
    y0, y1, x0, x1 = p.rf.box(*unit.positions[0, 0].tolist(), 160, 200)
    outside = unit.maps[0, 0].clone()
    outside[:, y0:y1, x0:x1] = 0
    assert unit.maps.abs().amax() > 0 and not outside.any()


def test_zf_twin_deconvnet_skips_lrn_and_guided_falls_back():
    lm = load_twin("zf")
    x = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    for layer in ("relu2", "relu5"):
        ref, cone = both(lm, x, layer=layer, channels=[1, 6], rule="deconvnet")
        assert relative_error(cone.maps, ref.maps) < 1e-5, layer
    has_lrn = any(isinstance(m, nn.LocalResponseNorm) for m in lm.model.modules())
    guided = Projector(lm, x, layer="relu5", rule="guided")
    assert (guided.cone is None) == has_lrn  # LRN's own gradient is autograd's business
    if has_lrn:
        with pytest.raises(checks.InputError, match="engine 'cone'"):
            Projector(lm, x, layer="relu5", rule="guided", engine="cone")


class Geometries(nn.Module):
    """A features stack with strided, dilated and grouped convolutions, overlapping padded
    ceil-mode pooling, pooling over tiles (a partial last tile, a dropped remainder), batch norm
    and ReLU6."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
            nn.Conv2d(8, 12, 3, padding=2, dilation=2, groups=4), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Conv2d(12, 16, (3, 1), stride=(1, 2), padding=(1, 0)), nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(16, 16, 1), nn.ReLU(),  # 16×11 → 8×6: a partial tile
            nn.MaxPool2d(3), nn.Conv2d(16, 16, 1), nn.ReLU(),  # 8×6 → 2×2: the remainder dropped
        )  # fmt: skip

    def forward(self, x):
        return self.features(x)


@pytest.mark.parametrize("rule", RULES)
def test_every_geometry_the_engine_handles(rule):
    torch.manual_seed(0)
    net = Geometries().eval()
    bn = net.features[1]
    bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.uniform_(0.5, 2)
    x = torch.randn(3, 3, 61, 81, generator=torch.Generator().manual_seed(4)) * 3
    for layer in ("features.2", "features.5", "features.8", "features.11", "features.14"):
        ref, cone = both(net, x, layer=layer, channels=[0, 3, 7], rule=rule, batch_size=4)
        assert relative_error(cone.maps, ref.maps) < 1e-5, (layer, rule)


def test_no_rule_no_cone():
    class Residualish(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.Conv2d(4, 4, 3), nn.ReLU())

        def forward(self, x):
            return self.features(x)

    x = torch.randn(1, 3, 20, 20)
    assert Projector(Residualish(), x, layer="features.3").cone is None
    with pytest.raises(checks.InputError, match="valid"):
        Projector(Residualish(), x, layer="features.3", engine="fast")


def test_a_one_off_call_computes_only_the_named_channels(vgg):
    x = torch.randn(1, 3, 96, 120, generator=torch.Generator().manual_seed(5))
    some = Projector(vgg, x, layer="relu4_3", rule="guided", only_channels=[3, 7])
    every = Projector(vgg, x, layer="relu4_3", rule="guided")
    assert some.acts[:, [3, 7]].isfinite().all() and some.acts[:, 0].isnan().all()
    assert not every.acts.isnan().any()
    assert torch.allclose(some.acts[:, [3, 7]], every.acts[:, [3, 7]], rtol=1e-5, atol=1e-6)
    a, b = some.units([3, 7]), every.units([3, 7])
    assert torch.equal(a.positions, b.positions) and relative_error(a.maps, b.maps) < 1e-5
    with pytest.raises(checks.InputError, match="channels"):
        Projector(vgg, x, layer="relu4_3", only_channels=[512])


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("kernel", [2, 3, (2, 3)])
def test_tile_pooling_matches_pytorch_values_and_switches(kernel, ceil_mode):
    """Non-overlapping max-pooling by strided maxima: PyTorch's values, and its argmax on ties
    (all-zero tiles after a ReLU, repeated integers) and NaN, on maps with leftover rows/columns
    (dropped, or partial tiles with ``ceil_mode``)."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    g = torch.Generator().manual_seed(6)
    x = torch.randint(-2, 3, (2, 5, 13, 17), generator=g).float().relu()  # many ties, many zeros
    x[0, 1, 3, 4] = x[1, 2, 6, 6] = x[1, 2, 7, 7] = float("nan")  # two NaNs in one tile: the last wins
    x[0, 0, -1, :] = float("-inf")  # a partial last tile of -inf only
    values, switches = nn.functional.max_pool2d(x, kernel, ceil_mode=ceil_mode, return_indices=True)
    tiles = tile_input(x, kh, kw, ceil_mode)
    assert torch.equal(tile_max(tiles, kh, kw).nan_to_num(-1), values.nan_to_num(-1))
    oh, ow = values.shape[-2:]
    code = tile_switches(tiles[..., : oh * kh, : ow * kw], kh, kw).long()
    rows = torch.arange(oh)[:, None] * kh + code // kw
    cols = torch.arange(ow)[None, :] * kw + code % kw
    assert torch.equal(rows * x.shape[-1] + cols, switches)
