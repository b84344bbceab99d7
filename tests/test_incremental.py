"""Incremental occlusion inference (zfhelpers.methods.incremental) equals the plain batched pass."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zfhelpers.methods.incremental import IncrementalOcclusion, Unsupported
from zfhelpers.methods.occlusion import occlusion


class TinyNet(nn.Module):
    """Every rule of the interpreter in a few layers: BN + in-place ReLU, dilation, groups, a
    residual add, a padded ceil-mode max-pool, a strided 1×1 convolution (its boxes skip rows), a
    channel concatenation, an average pool, a constant per-channel scale, pointwise functions,
    then global pooling and a linear classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.pool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.branch = nn.Sequential(nn.Conv2d(8, 6, 3, stride=2, padding=1), nn.ReLU6())
        self.skip = nn.Conv2d(8, 6, 1, stride=2)
        self.smooth = nn.AvgPool2d(3, 1, padding=1)
        self.pool2 = nn.MaxPool2d(2, ceil_mode=True)
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 12).view(1, 12, 1, 1))
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        x = self.stem(x)
        x = x + F.relu(self.grouped(self.dilated(x)))
        x = self.pool(x)
        z = torch.cat([self.branch(x), self.skip(x)], 1)
        z = self.smooth(z) * 0.5 + z
        z = torch.sigmoid(self.pool2(z) * self.scale)
        return self.head(F.adaptive_avg_pool2d(z, 1).flatten(1))


def tiny_net():
    torch.manual_seed(0)
    net = TinyNet()
    for m in net.modules():  # non-trivial batch-norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def assert_same(inc, plain, rel=1e-5):
    if plain.prob is not None:
        assert torch.allclose(inc.prob, plain.prob, atol=1e-5, rtol=0)
        assert torch.allclose(inc.top_prob, plain.top_prob, atol=1e-5, rtol=0)
        assert torch.equal(inc.top_class, plain.top_class)
        assert inc.target == plain.target
    if plain.feature_sum is not None:
        scale = plain.feature_sum.abs().max()
        assert float((inc.feature_sum - plain.feature_sum).abs().max() / scale) < rel
        assert inc.channel == plain.channel


TINY_CASES = [  # (image H×W, window, stride, batch size): borders, strides not dividing the image
    ((33, 41), 7, 3, 64),
    ((33, 41), (9, 5), (4, 5), 5),
    ((32, 32), 32, 1, 8),  # the window is the whole image
    ((40, 36), 12, 12, 1),
]


@pytest.mark.parametrize(("shape", "size", "stride", "batch"), TINY_CASES)
@pytest.mark.parametrize("layer", [None, "branch", "grouped"])
def test_tiny_net_equals_plain(shape, size, stride, batch, layer):
    net = tiny_net()
    x = torch.randn(1, 3, *shape)
    kw = dict(size=size, stride=stride, fill=0.3, layer=layer, batch_size=batch)
    assert_same(occlusion(net, x, **kw), occlusion(net, x, method="plain", **kw))


def test_tiny_net_runs_on_boxes():
    plan = IncrementalOcclusion(tiny_net(), torch.randn(1, 3, 33, 41))
    counts = plan.describe()
    assert counts["window"] == 8 and counts["generic"] == 3  # adaptive pool, flatten, linear
    assert counts["local"] == 10


def test_equals_captum():
    captum = pytest.importorskip("captum.attr")
    net = tiny_net()
    x = torch.randn(1, 3, 37, 29)
    res = occlusion(net, x, size=10, stride=4, target=1, fill=-0.2)
    kw = dict(sliding_window_shapes=(3, 10, 10), strides=(3, 4, 4), baselines=-0.2, perturbations_per_eval=16)
    theirs = captum.Occlusion(lambda inp: net(inp).softmax(1)).attribute(x, target=1, **kw)
    assert torch.allclose(res.to_pixels(res.base_prob - res.prob, 37, 29), theirs[0, 0], atol=1e-5)


@pytest.mark.parametrize(("size", "stride", "batch"), [(24, 12, 64), (40, 17, 7)])
def test_mobilenet_v2_equals_plain(mobilenet, size, stride, batch):
    x = torch.randn(1, 3, 96, 88)
    kw = dict(size=size, stride=stride, layer="block6", batch_size=batch)
    assert_same(occlusion(mobilenet, x, **kw), occlusion(mobilenet, x, method="plain", **kw))


def test_vgg16_hed_panel_b_equals_plain(hed):
    x = torch.randn(1, 3, 60, 68) * 60  # Caffe scale: pixel values minus the mean
    kw = dict(size=20, stride=(20, 16), layer="relu5_3", batch_size=4)
    inc, plain = occlusion(hed, x, **kw), occlusion(hed, x, method="plain", **kw)
    assert inc.prob is None and inc.target is None  # no classifier: panel (b) only
    assert_same(inc, plain)
    with pytest.raises(ValueError, match="pass layer="):
        occlusion(hed, x, size=20, stride=20)


def test_torchvision_alexnet_equals_plain():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None).eval()  # the paper profile's architecture, random weights
    x = torch.randn(1, 3, 80, 88)
    kw = dict(size=16, stride=12, layer="features.10", batch_size=16)
    assert_same(occlusion(net, x, **kw), occlusion(net, x, method="plain", **kw))


class Branchy(nn.Module):
    def forward(self, x):
        return x.mean((2, 3)) if x.sum() > 0 else -x.mean((2, 3))  # data-dependent: fx cannot trace


class Aliased(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.relu = nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.conv(x)
        return (self.relu(y) + y).mean((2, 3))  # the in-place ReLU also rewrites y


class Padded(nn.Module):
    """A layer without a box rule (reflection padding) in the middle: run on full maps."""

    def __init__(self):
        super().__init__()
        self.a, self.pad, self.b = nn.Conv2d(3, 4, 3), nn.ReflectionPad2d(2), nn.Conv2d(4, 3, 3)

    def forward(self, x):
        return self.b(self.pad(torch.relu(self.a(x)))).mean((2, 3))


@pytest.mark.parametrize("model", [Branchy, Aliased])
def test_unsupported_models_fall_back_with_a_warning(model):
    torch.manual_seed(0)
    net, x = model().eval(), torch.randn(1, 3, 20, 20)
    with pytest.raises(Unsupported):
        IncrementalOcclusion(net, x)
    with pytest.warns(UserWarning, match="using the plain batched pass"):
        inc = occlusion(net, x, size=6, stride=3)
    assert_same(inc, occlusion(net, x, size=6, stride=3, method="plain"))


def test_layer_without_box_rule_runs_on_full_maps():
    torch.manual_seed(0)
    net, x = Padded().eval(), torch.randn(1, 3, 21, 19)
    assert IncrementalOcclusion(net, x).describe()["generic"] >= 1
    assert_same(occlusion(net, x, size=5, stride=2), occlusion(net, x, size=5, stride=2, method="plain"))


def test_bad_method_and_training_mode():
    net = tiny_net()
    with pytest.raises(ValueError, match="valid: incremental, plain"):
        occlusion(net, torch.randn(1, 3, 32, 32), method="fast")
    with pytest.raises(Unsupported, match="eval mode"):
        IncrementalOcclusion(net.train(), torch.randn(1, 3, 32, 32))


def test_batch_norm_is_folded_into_its_convolution_and_the_model_is_untouched():
    net = tiny_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(1, 3, 37, 29, generator=torch.Generator().manual_seed(7))
    engine = IncrementalOcclusion(net, x)
    stem = net.stem[0].weight
    folded = [m for m in engine.chunk_modules.values()
              if isinstance(m, nn.Conv2d) and m.weight is not stem and m.weight.shape == stem.shape]  # fmt: skip
    assert len(folded) == 1 and sum(isinstance(m, nn.Identity) for m in engine.chunk_modules.values()) >= 1
    bn = net.stem[1]
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    assert torch.allclose(folded[0].weight, net.stem[0].weight * scale.view(-1, 1, 1, 1))
    with torch.no_grad():
        assert torch.allclose(folded[0](x), bn(net.stem[0](x)), atol=1e-5)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert_same(occlusion(net, x, size=7, stride=3), occlusion(net, x, size=7, stride=3, method="plain"))
