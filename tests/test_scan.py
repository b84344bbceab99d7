import torch
from torch import nn

from zfhelpers.analysis.scan import scan_topk


def net_and_data():
    torch.manual_seed(0)
    # no ReLU on the scanned layer: continuous values, so the brute-force order has no ties
    net = nn.Sequential(nn.Conv2d(3, 5, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(5, 4, 3)).eval()
    return net, torch.randn(37, 3, 24, 24)


def brute_force(net, x, k):
    """All activations at once; per channel, each image's maximum, then the k largest images."""
    with torch.no_grad():
        acts = net(x)  # N×C×H×W
    per_image = acts.flatten(2).max(2).values  # N×C
    top = per_image.T.topk(k, dim=1)
    return top.values, top.indices, acts


def test_scan_equals_brute_force_with_one_per_image():
    net, x = net_and_data()
    res = scan_topk(net, x, layer="3", k=9, batch_size=8, progress=False)
    values, images, acts = brute_force(net, x, 9)
    assert torch.allclose(res.values, values) and torch.equal(res.images, images)
    for c in range(4):
        assert len(set(res.images[c].tolist())) == 9  # at most one activation per image
        for j in range(9):
            y, x0 = res.positions[c, j].tolist()
            assert acts[res.images[c, j], c, y, x0] == res.values[c, j]


def test_scan_resumes_after_a_kill(tmp_path):
    net, x = net_and_data()
    full = scan_topk(net, x, layer="3", k=5, batch_size=4, progress=False)
    ckpt = tmp_path / "scan.pt"
    scan_topk(net, x, layer="3", k=5, batch_size=4, progress=False, checkpoint=ckpt, save_every=1, stop_after=3)
    resumed = scan_topk(net, x, layer="3", k=5, batch_size=4, progress=False, checkpoint=ckpt)
    assert torch.equal(full.images, resumed.images) and torch.allclose(full.values, resumed.values)
    assert torch.equal(full.positions, resumed.positions)


def test_multi_layer_scan_equals_single_layer_scans():
    net, x = net_and_data()
    both = scan_topk(net, x, layer=["1", "3"], k=4, batch_size=8, progress=False)
    for name in ("1", "3"):
        one = scan_topk(net, x, layer=name, k=4, batch_size=8, progress=False)
        assert torch.equal(both[name].images, one.images) and torch.equal(both[name].values, one.values)
        assert torch.equal(both[name].positions, one.positions)
