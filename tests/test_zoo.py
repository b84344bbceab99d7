import time

import pytest
import torch
import torchvision

from zfhelpers.data.images import prepare
from zfhelpers.methods.targets import resolve_channels
from zfhelpers.models import weights, zoo


def test_alexnet_layer_table_matches_torchvision_modules():
    table = zoo.alexnet_layers(torchvision.models.alexnet(weights=None))
    assert [k for k in table if k.startswith("conv")] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert table["conv1"] == "features.0" and table["conv5"] == "features.10"
    assert table["pool1"] == "features.2" and table["pool2"] == "features.5" and table["pool5"] == "features.12"
    assert table["fc6"] == "classifier.1" and table["fc7"] == "classifier.4" and table["fc8"] == "classifier.6"
    assert table["relu7"] == "classifier.5"


@pytest.mark.parametrize(("builder", "last_relu", "n_conv"), [("vgg16", "relu5_3", 13), ("vgg19", "relu5_4", 16)])
def test_vgg_layer_tables(builder, last_relu, n_conv):
    model = getattr(torchvision.models, builder)(weights=None)
    table = zoo.vgg_layers(model)
    assert table["relu1_1"] == "features.1"
    assert sum(k.startswith("conv") for k in table) == n_conv
    assert isinstance(model.get_submodule(table[last_relu]), torch.nn.ReLU)
    assert table["pool5"] == f"features.{len(model.features) - 1}"
    for name, path in table.items():  # every friendly name points at a module of the right kind
        kind = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d, "fc": torch.nn.Linear}
        assert isinstance(model.get_submodule(path), kind[name.rstrip("0123456789_")])


def test_mobilenet_layer_names():
    table = zoo.mobilenet_v2_layers(torchvision.models.mobilenet_v2(weights=None))
    assert list(table)[:3] == ["stem", "block1", "block2"]
    assert table["block17"] == "features.17" and table["head"] == "features.18" and table["fc"] == "classifier.1"


def test_unknown_model_and_profile_name_the_choices():
    with pytest.raises(ValueError, match="valid models: mobilenet_v2, vgg16_hed, alexnet"):
        zoo.load_model("resnet50")
    with pytest.raises(ValueError, match="valid profiles: offline, paper"):
        zoo.load_model(None, "cloud")
    with pytest.raises(ValueError, match="profile='paper'"):
        zoo.load_model("alexnet", "offline")


def test_bad_layer_and_channel_name_the_choices(mobilenet):
    with pytest.raises(ValueError, match="valid layers: stem, block1"):
        mobilenet.module("conv9")
    acts = torch.zeros(1, mobilenet.channels("stem"), 2, 2)
    with pytest.raises(ValueError, match=r"valid: 0\.\.31"):
        resolve_channels(acts, 32)
    with pytest.raises(ValueError, match=r"out of range; valid: 0\.\.31"):
        resolve_channels(acts, -1)  # no wrap-around to the last channel
    assert resolve_channels(acts, 31) == [31]


def test_offline_classifier_is_the_real_imagenet_model(mobilenet):
    """Real weights, not random: the CC0 cat and coffee photos get their ImageNet classes."""
    for image, expected in [("chelsea", "Egyptian cat"), ("coffee", "espresso")]:
        x = prepare(image, mobilenet.preprocess).tensor
        with torch.inference_mode():
            top = mobilenet.model(x).argmax(1).item()
        assert mobilenet.categories[top] == expected
    assert mobilenet.provenance["sha256"] == weights.SOURCES["mobilenet_v2"].sha256


def test_torchvision_weights_api_finds_the_offline_file():
    """`make setup` puts the file where torchvision looks, so `weights=` needs no download."""
    model = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1")
    ours = zoo.load_model("mobilenet_v2").model
    for (k, a), (_, b) in zip(model.state_dict().items(), ours.state_dict().items()):
        assert torch.equal(a, b), k


def test_paper_weights_fail_promptly_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached AlexNet file
    monkeypatch.setattr(weights, "_reachable", lambda url, timeout=3.0: False)
    start = time.perf_counter()
    with pytest.raises(weights.WeightsUnavailable, match="alexnet-owt-7be5be79.pth") as info:
        zoo.load_model("alexnet", "paper")
    assert "setup --weights alexnet" in str(info.value)
    assert time.perf_counter() - start < 10


def test_reachability_probe_is_bounded():
    start = time.perf_counter()
    weights._reachable("https://unresolvable.invalid/x.pth", timeout=1.0)
    assert time.perf_counter() - start < 3


def test_corrupt_weight_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    src = weights.SOURCES["mobilenet_v2"]
    src.path.parent.mkdir(parents=True)
    src.path.write_bytes(b"not a checkpoint")
    with pytest.raises(weights.WeightsError, match="does not match"):
        weights.ensure("mobilenet_v2")
    with pytest.raises(ValueError, match="valid: alexnet, mobilenet_v2"):
        weights.get_source("lenet")


def test_hed_stack_loads_with_rgb_input(hed):
    """The BGR-trained first layer was flipped to take RGB: identical to the original on BGR."""
    assert hed.categories is None and hed.provenance["sha256"] == weights.SOURCES["vgg16_hed"].sha256
    x_rgb = torch.randn(1, 3, 32, 32)
    conv = hed.module("conv1_1")
    flipped_back = torch.nn.functional.conv2d(x_rgb.flip(1), conv.weight.flip(1), conv.bias, padding=1)
    assert torch.allclose(conv(x_rgb), flipped_back, atol=1e-5)
    assert hed.shape("relu5_3") == (512, 14, 14) and hed.channels("relu3_3") == 256
    pools = [m for m in hed.model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 5 and all(p.ceil_mode for p in pools)


def test_hed_side_output_detects_edges(hed):
    """The HED side output dsn1 (a 1×1 conv on relu1_2, stored beside the stack) must respond
    more on edge pixels than on flat ones: a check that the conv weights were read correctly."""
    import h5py
    import numpy as np
    from scipy import ndimage

    with h5py.File(weights.SOURCES["vgg16_hed"].path) as f:
        w = torch.from_numpy(f["dsn1/vars/0"][()]).permute(3, 2, 0, 1).float()
        b = torch.from_numpy(f["dsn1/vars/1"][()]).float()
    from zfhelpers.models.capture import capture_detached

    s = prepare("coffee", hed.preprocess)
    relu = capture_detached(hed, s.tensor, ["relu1_2"])["relu1_2"]
    edge_logit = torch.nn.functional.conv2d(relu, w, b)[0, 0].numpy()
    gray = s.display.mean(2)
    grad = np.hypot(ndimage.sobel(gray, 0), ndimage.sobel(gray, 1))
    strong, flat = grad > np.quantile(grad, 0.9), grad < np.quantile(grad, 0.5)
    assert edge_logit[strong].mean() > edge_logit[flat].mean() + 1.0
    assert np.corrcoef(edge_logit.ravel(), grad.ravel())[0, 1] > 0.3
