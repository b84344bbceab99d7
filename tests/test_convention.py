"""One calling convention: every public method takes a plain ``nn.Module`` as well as a zoo model,
accepts every target form, and leaves a model in train mode exactly as it found it (every module's
flag, batch-norm statistics, parameters) — even when it raises."""

import pytest
import torch
from torch import nn

import zfhelpers as zf
from zfhelpers.analysis.sanity import cascading_randomization
from zfhelpers.methods import cam
from zfhelpers.methods.targets import resolve_targets


class TinyGapNet(nn.Module):
    """conv-BN-ReLU-maxpool-conv-ReLU, dropout, global average pooling, one linear layer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(2), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())  # fmt: skip
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.drop(self.features(x).mean(dim=(2, 3))))


X = torch.randn(2, 3, 16, 16)
TARGETS = [3, "top1", "top2", [1, 4], torch.tensor([0, 2]), None]
LAYER = "features.5"

CLASS_METHODS = {
    "class_projection": lambda m, t: zf.class_projection(m, X, target=t, rule="guided"),
    "cam": lambda m, t: zf.cam(m, X, target=t, layer=LAYER).maps,
    "gradcam": lambda m, t: zf.gradcam(m, X, target=t, layer=LAYER).maps,
    "gradcampp": lambda m, t: zf.gradcampp(m, X, target=t, layer=LAYER).maps,
    "guided_gradcam": lambda m, t: zf.guided_gradcam(m, X, target=t, layer=LAYER).guided,
    "occlusion": lambda m, t: (
        zf.occlusion(
            m, X[:1], target=t if not isinstance(t, list | torch.Tensor) else t[0], layer=LAYER, size=8, stride=8
        ).prob
    ),  # fmt: skip
}
UNIT_METHODS = {
    "unit_projection": lambda m: zf.unit_projection(m, X, layer=LAYER, channels=[0, 2], rule="deconvnet").maps,
    "unit_projection_top": lambda m: zf.unit_projection(m, X, layer=LAYER, channels="top2").maps,
    "channel_projection": lambda m: zf.channel_projection(m, X, layer=LAYER, channels=1),
    "scan_topk": lambda m: zf.scan_topk(m, X, layer=LAYER, k=2, progress=False).values,
    "invert_code": lambda m: (
        zf.invert_code(
            m,
            X[:1],
            layer=LAYER,
            mode="feature_map",
            channels=[0],
            recipe=zf.inversion.RECIPES["modern"].with_(max_steps=2),
            progress=False,
        ).images
    ),  # fmt: skip
    "capture": lambda m: zf.capture(m, X, [LAYER])[LAYER],
    "capture_detached": lambda m: zf.capture_detached(m, X, [LAYER])[LAYER],
    "cascading_randomization": lambda m: (
        cascading_randomization(
            m, lambda net: zf.channel_projection(net, X, layer=LAYER, channels=0), layers=["fc", "features.4"]
        )[-1].maps
    ),
}


def _state(net):
    return [m.training for m in net.modules()], {k: v.clone() for k, v in net.state_dict().items()}


def _assert_untouched(net, before):
    flags, state = before
    assert [m.training for m in net.modules()] == flags
    after = net.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state), "a forward pass changed weights or BN statistics"


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: repr(t))
@pytest.mark.parametrize("name", CLASS_METHODS)
def test_class_methods_take_every_target_form_on_a_plain_module(name, target):
    net = TinyGapNet().train()
    net.features[1].eval()  # frozen batch norm inside a training model
    before = _state(net)
    out = CLASS_METHODS[name](net, target)
    assert torch.isfinite(out).all()
    _assert_untouched(net, before)


@pytest.mark.parametrize("name", UNIT_METHODS)
def test_unit_methods_work_on_a_plain_module_in_train_mode_and_leave_it_alone(name):
    net = TinyGapNet().train()
    net.features[1].eval()
    before = _state(net)
    assert torch.isfinite(UNIT_METHODS[name](net)).all()
    _assert_untouched(net, before)


def test_results_do_not_depend_on_the_models_train_mode():
    """Dropout and batch statistics must be off inside every method (eval context)."""
    net = TinyGapNet()
    a = zf.gradcam(net.eval(), X, target=1, layer=LAYER).maps
    b = zf.gradcam(net.train(), X, target=1, layer=LAYER).maps
    assert torch.allclose(a, b)


def test_cam_on_a_training_model_is_not_refused():
    net = TinyGapNet().train()
    assert zf.cam(net, X, target=0, layer=LAYER).maps.shape == (2, 8, 8)


@pytest.mark.parametrize("bad", [-1, 5, 2.0, True, "best", "top0", "top6", [0], [0, 1, 2], torch.zeros(2, 2)])
def test_bad_targets_are_refused_with_the_valid_choices(bad):
    with pytest.raises(ValueError, match=r"target|targets"):
        resolve_targets(torch.zeros(2, 5), bad)


def test_methods_refuse_nan_and_empty_inputs_and_restore_flags():
    net = TinyGapNet().train()
    before = _state(net)
    for bad in (torch.full((1, 3, 16, 16), float("nan")), torch.zeros(0, 3, 16, 16)):
        for fn in (lambda x: zf.gradcam(net, x, layer=LAYER), lambda x: zf.class_projection(net, x),
                   lambda x: zf.unit_projection(net, x, layer=LAYER, channels=0)):  # fmt: skip
            with pytest.raises(ValueError, match="NaN|empty"):
                fn(bad)
    _assert_untouched(net, before)


def test_cam_methods_applicable_per_model():
    assert cam.applicable(zf.adapt(TinyGapNet())) == ("gradcam", "gradcampp", "guided_gradcam")
