import numpy as np
import pytest
import torch
from torch import nn

from zfhelpers.data.images import load_batch
from zfhelpers.methods import cam


class GapNet(nn.Module):
    """conv → ReLU → conv → ReLU → global average pool → linear: the architecture CAM needs."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, 2, 1), nn.ReLU())
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_gradcam_is_relu_cam_over_z_on_a_gap_linear_net():
    torch.manual_seed(0)
    net, x = GapNet().eval(), torch.randn(4, 3, 16, 16)
    for target in (2, [0, 1, 2, 3], "top1", "top3"):
        c = cam.cam(net, x, target=target, layer="features.3")
        g = cam.gradcam(net, x, target=target, layer="features.3")
        assert torch.equal(c.targets, g.targets)
        z = c.maps.shape[-1] * c.maps.shape[-2]
        assert torch.allclose(g.maps, torch.relu(c.maps) / z, atol=1e-6)


def test_gradcam_equals_cam_on_mobilenet(mobilenet):
    x, _ = load_batch(["chelsea", "coffee"], mobilenet.preprocess)
    c, g = cam.cam(mobilenet, x), cam.gradcam(mobilenet, x)
    assert torch.allclose(g.maps, torch.relu(c.maps) / 49, atol=1e-5)


def test_batched_equals_per_image(mobilenet):
    x, _ = load_batch(["chelsea", "coffee", "rocket"], mobilenet.preprocess)
    for method in cam.METHODS:
        batched = cam.run(method, mobilenet, x, target="top2")
        for i in range(3):
            single = cam.run(method, mobilenet, x[i : i + 1], target="top2")
            assert single.targets.item() == batched.targets[i].item()
            assert torch.allclose(single.maps[0], batched.maps[i], atol=1e-5, rtol=1e-4)
            if method == "guided_gradcam":
                assert torch.allclose(single.guided[0], batched.guided[i], atol=1e-6, rtol=1e-4)


def test_cam_refuses_non_gap_heads():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 3), nn.ReLU(),
                        nn.Linear(3, 2))  # fmt: skip
    with pytest.raises(ValueError, match="use gradcam instead"):
        cam.cam(net, torch.randn(1, 3, 16, 16), target=0, layer="1")


def test_bad_targets_and_methods():
    net, x = GapNet().eval(), torch.randn(2, 3, 16, 16)
    with pytest.raises(ValueError, match="'top1'"):
        cam.gradcam(net, x, target="best", layer="features.3")
    with pytest.raises(ValueError, match=r"0\.\.4"):
        cam.gradcam(net, x, target=7, layer="features.3")
    with pytest.raises(ValueError, match="valid: cam, gradcam, gradcampp, guided_gradcam"):
        cam.run("scorecam", net, x, target=0, layer="features.3")


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
def test_matches_pytorch_grad_cam(mobilenet, method):
    """Cross-check with the peer library (a test extra, never a runtime dependency)."""
    pgc = pytest.importorskip("pytorch_grad_cam")
    import cv2
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x, _ = load_batch(["chelsea", "coffee", "astronaut"], mobilenet.preprocess)
    # pytorch-grad-cam adds eps=1e-6 to Grad-CAM++'s denominator (the paper does not); match it.
    ours = cam.gradcam(mobilenet, x) if method == "gradcam" else cam.gradcampp(mobilenet, x, eps=1e-6)
    cls = {"gradcam": pgc.GradCAM, "gradcampp": pgc.GradCAMPlusPlus}[method]
    with cls(model=mobilenet.model, target_layers=[mobilenet.module("head")]) as peer:
        # With the zoo's frozen parameters the graph must start at the input.
        targets = [ClassifierOutputTarget(int(t)) for t in ours.targets]
        theirs = peer(input_tensor=x.clone().requires_grad_(True), targets=targets)
    # pytorch-grad-cam min-max normalises each low-resolution map, resizes it with OpenCV and
    # min-max normalises again.
    low = cam.normalize(ours.maps).numpy()
    mine = cam.normalize(torch.from_numpy(np.stack([cv2.resize(m, (x.shape[-1], x.shape[-2])) for m in low])))
    mine = mine.numpy()
    assert np.abs(mine - theirs).max() < 1e-5
    if method == "gradcampp":  # and the epsilon is not negligible here: the exact formula differs
        exact = cam.normalize(cam.gradcampp(mobilenet, x).maps)
        assert (exact - cam.normalize(ours.maps)).abs().max() > 1e-3


def test_baselines(mobilenet):
    x, samples = load_batch(["chelsea"], mobilenet.preprocess)
    trained = cam.gradcam(mobilenet, x)
    rand = cam.random_model_baseline(mobilenet, x, target=trained.targets)
    assert rand.maps.shape == trained.maps.shape and not torch.allclose(rand.maps, trained.maps)
    assert all(p.requires_grad is False for p in mobilenet.model.parameters())  # original untouched
    edges = cam.sobel_baseline([s.display for s in samples])
    assert edges.shape == (1, 224, 224) and float(edges.max()) == 1.0
