"""Fingerprints decide whether a checkpoint may be resumed (issue #19): each part that determines a
result must change the fingerprint, and equal inputs must not."""

import os

import torch
from torch import nn

from zfhelpers import fingerprint


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())


def test_model_digest_follows_the_weights_not_the_object():
    a, b = _net(0), _net(0)
    assert fingerprint.model_digest(a) == fingerprint.model_digest(b)  # equal weights, two objects
    assert fingerprint.model_digest(a) != fingerprint.model_digest(_net(1))
    before = fingerprint.model_digest(a)
    with torch.no_grad():
        a[0].weight[0, 0, 0, 0] += 1  # in place: the cache must notice (version counter)
    assert fingerprint.model_digest(a) != before
    b.load_state_dict(a.state_dict())
    assert fingerprint.model_digest(b) == fingerprint.model_digest(a)
    b[1].running_mean.fill_(0.5)  # buffers are part of the result too
    assert fingerprint.model_digest(b) != fingerprint.model_digest(a)


def test_tensor_digest_follows_bytes_dtype_and_shape():
    x = torch.arange(12, dtype=torch.uint8)
    assert fingerprint.tensor_digest(x) == fingerprint.tensor_digest(x.clone())
    assert fingerprint.tensor_digest(x) != fingerprint.tensor_digest(x.view(3, 4))
    assert fingerprint.tensor_digest(x) != fingerprint.tensor_digest(x.to(torch.int16))
    before = fingerprint.tensor_digest(x)
    x[3] = 0
    assert fingerprint.tensor_digest(x) != before
    assert fingerprint.tensor_digest(x[::2]) == fingerprint.tensor_digest(x[::2].contiguous())  # views hash content


def test_folder_digest_sees_added_rewritten_and_touched_files(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(b"x")
    d0 = fingerprint.folder_digest(tmp_path, ["a.jpg", "b.jpg"])
    assert d0 == fingerprint.folder_digest(tmp_path, ["a.jpg", "b.jpg"])
    assert d0 != fingerprint.folder_digest(tmp_path, ["a.jpg"])
    (tmp_path / "b.jpg").write_bytes(b"xy")
    d1 = fingerprint.folder_digest(tmp_path, ["a.jpg", "b.jpg"])
    assert d1 != d0
    st = os.stat(tmp_path / "a.jpg")
    os.utime(tmp_path / "a.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert fingerprint.folder_digest(tmp_path, ["a.jpg", "b.jpg"]) != d1


def test_value_digest_tells_preprocessing_apart():
    def scaled(factor):
        return lambda b: b * factor

    assert fingerprint.value_digest(scaled(2)) == fingerprint.value_digest(scaled(2))
    assert fingerprint.value_digest(scaled(2)) != fingerprint.value_digest(scaled(3))  # closure value
    assert fingerprint.value_digest(lambda b: b + 1) != fingerprint.value_digest(lambda b: b - 1)  # code
    from zfhelpers.models.zoo import Preprocess

    p, q = Preprocess(), Preprocess(resize=128, crop=112)
    assert fingerprint.value_digest(p.normalize) != fingerprint.value_digest(q.normalize)  # bound to other objects
    assert fingerprint.value_digest(["relu1", "relu2"]) != fingerprint.value_digest(["relu1"])


def test_load_checkpoint_names_what_differs_and_starts_afresh(tmp_path, capsys):
    path = tmp_path / "ck.pt"
    fp = fingerprint.fingerprint(model=_net(0), data=torch.zeros(3), layers=["a"], k=9)
    fingerprint.save_checkpoint(path, {"next": 5}, fp)
    assert fingerprint.load_checkpoint(path, fp)["next"] == 5
    other = fingerprint.fingerprint(model=_net(1), data=torch.zeros(3), layers=["a", "b"], k=9)
    assert fingerprint.load_checkpoint(path, other, what="scan") is None
    err = capsys.readouterr().err
    assert "differs in: layers, model" in err and "starting afresh" in err and str(path) in err
    torch.save({"next": 5}, path)  # a checkpoint written before fingerprints existed
    assert fingerprint.load_checkpoint(path, fp) is None and "no fingerprint" in capsys.readouterr().err
    path.write_bytes(b"not a checkpoint")
    assert fingerprint.load_checkpoint(path, fp) is None and "unreadable" in capsys.readouterr().err
