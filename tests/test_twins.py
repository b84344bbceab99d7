import pytest
import torch
from torch import nn

from zfhelpers.data import fashion as _fashion
from zfhelpers.methods.receptive import exact_box, receptive_field
from zfhelpers.models.twins import INPUT_SIZE, make_twin, renormalize_filters


def test_twin_shapes_follow_zf_at_half_scale():
    zf = make_twin("zf")
    x = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    sizes = []
    h = x
    for m in zf.features:
        h = m(h)
        if isinstance(m, nn.Conv2d | nn.MaxPool2d):
            sizes.append(h.shape[-1])
    assert sizes == [54, 27, 12, 6, 6, 6, 6, 3]
    assert zf(x).shape == (2, 10)
    alex = make_twin("alexnet")
    assert alex.features[0].kernel_size == (11, 11) and alex.features[0].stride == (4, 4)
    assert alex(x).shape == (2, 10)
    with pytest.raises(ValueError, match="valid: zf, alexnet, parts_vgg"):
        make_twin("vgg")


def test_renormalisation_caps_filter_rms():
    model = make_twin("zf")
    with torch.no_grad():
        model.features[0].weight.mul_(50)
    n = renormalize_filters(model, 0.1)
    assert n >= model.features[0].out_channels
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            rms = m.weight.pow(2).flatten(1).mean(1).sqrt()
            assert (rms <= 0.1 + 1e-6).all()
    assert renormalize_filters(model, 0.1) == 0  # idempotent


def test_twin_receptive_fields_match_brute_force_geometry():
    features = list(make_twin("zf").features)
    rf = receptive_field(features[:7])  # conv2's pool output
    assert rf.jump == (16, 16)
    assert exact_box(features[:7], (INPUT_SIZE, INPUT_SIZE), 3, 3)[1] - exact_box(
        features[:7], (INPUT_SIZE, INPUT_SIZE), 3, 3)[0] == rf.size[0]  # fmt: skip


def test_idx_reader_round_trip(tmp_path):
    import gzip

    import numpy as np

    from zfhelpers.data import fashion

    imgs = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    header = bytes([0, 0, 8, 3]) + b"".join(int(v).to_bytes(4, "big") for v in imgs.shape)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + imgs.tobytes())
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + bytes([3, 7]))
    x, y = fashion.load("test", root=tmp_path)
    assert torch.equal(x, torch.from_numpy(imgs)) and y.tolist() == [3, 7]
    assert fashion.to_model_input(x).shape == (2, 3, 112, 112)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        fashion.load("train", root=tmp_path)
    with pytest.raises(ValueError, match="'train' or 'test'"):
        fashion.load("val", root=tmp_path)


@pytest.mark.skipif(not _fashion.DEBIAN_ROOT.is_dir(), reason="Debian package absent")
def test_debian_fashion_mnist_is_complete():
    from zfhelpers.data import fashion

    x, y = fashion.load("train")
    assert x.shape == (60000, 28, 28) and torch.bincount(y).tolist() == [6000] * 10
    xt, yt = fashion.load("test")
    assert xt.shape == (10000, 28, 28)


def _toy_data(n=64):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, INPUT_SIZE, INPUT_SIZE, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return x, y


def test_training_resumes_to_the_same_weights(tmp_path):
    """Stop after epoch 1 (as a kill would), resume, and match an uninterrupted run."""
    from zfhelpers.models.training import TrainConfig, train

    data = _toy_data()
    cfg = TrainConfig(epochs=2, schedule=(1, 2), batch_size=16, lr=1e-2)
    full = train(cfg, tmp_path / "full", data, data, progress=False)["model"]
    killed = train(cfg, tmp_path / "resumed", data, data, progress=False, stop_after=1)
    assert [h["epoch"] for h in killed["history"]] == [1]
    resumed = train(cfg, tmp_path / "resumed", data, data, progress=False)
    for (k, a), (_, b) in zip(full.state_dict().items(), resumed["model"].state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), k
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert (tmp_path / "resumed" / "zf_epoch002.pt").is_file()
    for m in resumed["model"].modules():
        if isinstance(m, nn.Conv2d):
            assert (m.weight.pow(2).flatten(1).mean(1).sqrt() <= 0.1 + 1e-6).all()
