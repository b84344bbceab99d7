import torch
from torch import nn

from zfhelpers.analysis.scan import merge_topk, scan_topk


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


def test_ties_rank_by_image_index_whatever_the_batching():
    """A dead channel (all zeros) ties every image: ORDER ranks them by index, in any batching or shard."""
    net, x = net_and_data()
    with torch.no_grad():
        net[3].weight[1] = 0
        net[3].bias[1] = 0
    for batch_size in (1, 5, 37):
        res = scan_topk(net, x, layer="3", k=6, batch_size=batch_size, progress=False)
        assert res.images[1].tolist() == [0, 1, 2, 3, 4, 5] and (res.values[1] == 0).all()
        assert (res.positions[1] == 0).all()  # the first maximum in row-major order
    shards = [scan_topk(net, x[i:j], layer="3", k=6, batch_size=4, progress=False) for i, j in ((0, 20), (20, 37))]
    shards[1].images += 20  # shard-local → global image indices
    merged = merge_topk(shards[::-1], 6)
    whole = scan_topk(net, x, layer="3", k=6, batch_size=8, progress=False)
    assert torch.equal(merged.images, whole.images) and torch.allclose(merged.values, whole.values)
    assert torch.equal(merged.positions, whole.positions)


def test_fewer_images_than_k_are_padded():
    net, x = net_and_data()
    res = scan_topk(net, x[:3], layer="3", k=5, batch_size=2, progress=False)
    assert res.values.shape == (4, 5) and (res.images[:, 3:] == -1).all() and torch.isinf(res.values[:, 3:]).all()


def _twin_scan(epoch, x, ckpt, layer="relu2"):
    from zfhelpers.data import fashion
    from zfhelpers.models import trained

    lm = trained.load_twin("zf", epoch=epoch)
    return scan_topk(lm, x, layer=layer, k=4, batch_size=16, prepare=fashion.to_model_input, checkpoint=ckpt,
                     progress=False)  # fmt: skip


def test_a_checkpoint_of_other_weights_is_not_reused(tmp_path, capsys):
    """Issue #19's reproduction: the epoch-1 twin's scan returned the epoch-10 twin's values."""
    x = torch.randint(0, 256, (32, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    ckpt = tmp_path / "twin_zf.pt"  # as notebooks 03/04 name it: after the model only
    late = _twin_scan(10, x, ckpt)
    assert "starting afresh" not in capsys.readouterr().err
    early = _twin_scan(1, x, ckpt)
    assert "differs in: model" in capsys.readouterr().err
    fresh = _twin_scan(1, x, None)
    assert torch.equal(early.values, fresh.values) and not torch.equal(early.values, late.values)
    assert torch.equal(_twin_scan(1, x, ckpt).values, fresh.values)  # resumed from its own checkpoint
    assert "starting afresh" not in capsys.readouterr().err


def test_a_checkpoint_of_other_data_or_layers_is_not_reused(tmp_path, capsys):
    net, x = net_and_data()
    ckpt = tmp_path / "scan.pt"
    scan_topk(net, x, layer="3", k=4, batch_size=8, progress=False, checkpoint=ckpt)
    y = x.clone()
    y[5] += 1  # same shape, one image changed
    res = scan_topk(net, y, layer="3", k=4, batch_size=8, progress=False, checkpoint=ckpt)
    assert "differs in: data" in capsys.readouterr().err
    assert torch.equal(res.values, scan_topk(net, y, layer="3", k=4, batch_size=8, progress=False).values)
    both = scan_topk(net, y, layer=["1", "3"], k=4, batch_size=8, progress=False, checkpoint=ckpt)
    assert "differs in: layers" in capsys.readouterr().err and set(both) == {"1", "3"}
    scan_topk(net, y, layer=["1", "3"], k=4, batch_size=4, progress=False, checkpoint=ckpt)
    assert "differs in: batching" in capsys.readouterr().err
    scan_topk(net, y, layer=["1", "3"], k=4, batch_size=4, progress=False, checkpoint=ckpt, prepare=lambda b: b * 2)
    assert "differs in: preprocessing" in capsys.readouterr().err
