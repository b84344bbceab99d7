"""ZF §5 transfer experiments (zfhelpers.data.digits, zfhelpers.analysis.transfer): the stratified
sampler, the linear probe, and that frozen features stay frozen."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from zfhelpers.analysis import transfer
from zfhelpers.checks import InputError
from zfhelpers.data import digits
from zfhelpers.models.zoo import adapt


@pytest.fixture(scope="module")
def labels():
    return digits.load()[1]


def test_digits_match_the_twins_input_format():
    images, labels = digits.load()
    assert images.shape == (1797, 28, 28) and images.dtype == torch.uint8
    assert sorted(set(labels.tolist())) == list(range(10))
    assert images.float().mean() < 128  # bright strokes on a dark ground, like Fashion-MNIST


def test_split_is_stratified_disjoint_and_seeded(labels):
    pool, test = digits.split(labels, 20, seed=0)
    assert len(np.intersect1d(pool, test)) == 0 and len(pool) + len(test) == len(labels)
    assert np.bincount(labels[test].numpy(), minlength=10).tolist() == [20] * 10
    assert np.array_equal(test, digits.split(labels, 20, seed=0)[1])
    assert not np.array_equal(test, digits.split(labels, 20, seed=1)[1])


@pytest.mark.parametrize("n", [1, 5, 50])
def test_sampler_draws_n_per_class_from_the_pool(labels, n):
    pool, _ = digits.split(labels, 20, seed=0)
    idx = digits.sample_per_class(labels, n, seed=3, pool=pool)
    assert np.bincount(labels[idx].numpy(), minlength=10).tolist() == [n] * 10
    assert np.isin(idx, pool).all() and len(np.unique(idx)) == len(idx)
    assert np.array_equal(idx, digits.sample_per_class(labels, n, seed=3, pool=pool))
    assert not np.array_equal(idx, digits.sample_per_class(labels, n, seed=4, pool=pool))


def test_sampler_refuses_impossible_sizes_naming_the_valid_ones(labels):
    pool, _ = digits.split(labels, 100, seed=0)
    top = digits.valid_sizes(labels, pool).stop - 1
    assert 50 < top < 100
    for bad in (0, top + 1, 2.5, True):
        with pytest.raises(InputError, match=f"valid sizes: 1..{top}"):
            digits.sample_per_class(labels, bad, seed=0, pool=pool)
    with pytest.raises(InputError, match="valid: 1.."):
        digits.split(labels, 500)


def test_probe_separates_a_separable_toy_set():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (10, 16))
    y = np.repeat(np.arange(10), 30)
    x = centres[y] + rng.normal(0, 0.5, (300, 16))
    train, test = np.arange(300) % 3 != 0, np.arange(300) % 3 == 0
    assert transfer.probe_accuracy(x[train], y[train], x[test], y[test]) >= 0.99
    # and labels it cannot predict stay near chance
    shuffled = rng.permutation(y)
    assert transfer.probe_accuracy(x[train], shuffled[train], x[test], shuffled[test]) < 0.3


def _toy_twin():
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2))
    lm = adapt(stack)
    lm.preprocess = dataclasses.replace(lm.preprocess, resize=16, crop=16)
    return lm


def test_frozen_features_stay_frozen_while_the_head_learns():
    lm = _toy_twin()
    original = {k: v.clone() for k, v in lm.model.state_dict().items()}
    net = transfer.frozen_network(lm)
    before = {k: v.clone() for k, v in net.stack.state_dict().items()}
    head_before = [p.clone() for p in net.head.parameters()]
    x, y = torch.randn(20, 3, 16, 16), torch.arange(20) % 10
    transfer.train_classifier(net, x, y, steps=5, batch_size=8, seed=0)
    assert all(torch.equal(before[k], v) for k, v in net.stack.state_dict().items())
    assert all(p.grad is None and not p.requires_grad for p in net.stack.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(head_before, net.head.parameters()))
    assert not net.stack.training  # eval mode kept through train()
    assert all(torch.equal(original[k], v) for k, v in lm.model.state_dict().items())  # the twin itself too


def test_head_on_cached_features_equals_head_on_the_frozen_stack():
    lm = _toy_twin()
    net = transfer.frozen_network(lm)
    x, y = torch.randn(20, 3, 16, 16), torch.arange(20) % 10
    with torch.no_grad():
        cached = net.stack(x)
    head = transfer.linear_head(cached[0].numel())
    head.load_state_dict(net.head.state_dict())
    transfer.train_classifier(net, x, y, steps=6, batch_size=8, seed=1)
    transfer.train_classifier(head, cached, y, steps=6, batch_size=8, seed=1)
    for a, b in zip(net.head.parameters(), head.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_scratch_network_is_seeded_and_trains_everything():
    a, b = transfer.scratch_network(seed=0, size=112), transfer.scratch_network(seed=0, size=112)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert all(p.requires_grad for p in a.parameters())


def test_claims_follow_the_statistic():
    curve = transfer.TransferCurve([1, 5, 50], [0, 1, 2], np.array([[0.6, 0.8, 0.9]] * 3) + [[0], [0.01], [0.02]],
                                   np.array([[0.3, 0.5, 0.9]] * 3), n_test=200)  # fmt: skip
    claims = {c.id: c for c in transfer.transfer_claims(curve, small=10)}
    assert claims["14.transfer_beats_scratch.small_n"].verdict == "reproduced"
    assert claims["14.transfer_minus_scratch.n1"].verdict == "reproduced"
    probe = transfer.LayerProbe(["a", "b", "c"], [0, 1, 2], np.array([[0.9, 0.95, 0.8]] * 3) + [[0], [0.01], [0.02]],
                                n_per_class=5, n_test=200)  # fmt: skip
    trend = {c.id: c for c in transfer.probe_claims(probe, paper_layers=[1, 2, None])}["14.probe_depth_trend"]
    assert trend.verdict == "not reproduced" and trend.value < 0
