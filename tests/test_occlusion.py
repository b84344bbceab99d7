import pytest
import torch
from torch import nn

from zfhelpers.methods.occlusion import occlusion, window_positions


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 5, 2, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(6, 8, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 7)).eval()  # fmt: skip


def naive(net, x, size, stride, fill, target, layer_index, channel):
    """One position at a time, written out independently of the fast path."""
    h, w = x.shape[-2:]
    ys = list(range(0, h - size[0] + 1, stride[0]))
    xs = list(range(0, w - size[1] + 1, stride[1]))
    if ys[-1] + size[0] < h:
        ys.append(ys[-1] + stride[0])
    if xs[-1] + size[1] < w:
        xs.append(xs[-1] + stride[1])
    prob, top, fsum = torch.zeros(len(ys), len(xs)), torch.zeros(len(ys), len(xs), dtype=torch.long), torch.zeros(
        len(ys), len(xs))  # fmt: skip
    with torch.no_grad():
        for i, y in enumerate(ys):
            for j, x0 in enumerate(xs):
                occ = x.clone()
                occ[..., y : y + size[0], x0 : x0 + size[1]] = fill
                feats = net[: layer_index + 1](occ)
                p = net[layer_index + 1 :](feats).softmax(1)[0]
                prob[i, j], top[i, j] = p[target], p.argmax()
                fsum[i, j] = feats[0, channel].sum()
    return prob, top, fsum


CASES = [((40, 40), 12, 6), ((36, 52), (10, 14), (5, 7)), ((40, 40), 8, 8)]


@pytest.mark.parametrize(("shape", "size", "stride"), CASES)
def test_fast_path_equals_naive_loop(shape, size, stride):
    net = small_net()
    x = torch.randn(1, 3, *shape)
    res = occlusion(net, x, size=size, stride=stride, fill=0.3, target=2, layer="4", channels=5, batch_size=7)
    prob, top, fsum = naive(net, x, res.size, res.stride, 0.3, 2, 4, 5)
    assert torch.allclose(res.prob, prob, atol=1e-5)
    assert torch.equal(res.top_class, top)
    assert torch.allclose(res.feature_sum, fsum, atol=1e-4, rtol=1e-5)


def test_defaults_pick_top_class_and_strongest_map():
    net = small_net()
    x = torch.randn(1, 3, 32, 32)
    res = occlusion(net, x, size=8, stride=8, layer="4")
    with torch.no_grad():
        assert res.target == int(net(x).argmax())
        assert res.channel == int(net[:5](x)[0].flatten(1).sum(1).argmax())


def test_bad_input():
    net = small_net()
    x = torch.randn(1, 3, 32, 48)
    with pytest.raises(ValueError, match="larger than the image side 32"):
        occlusion(net, x, size=40)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        occlusion(net, x, size=8, stride=0)
    with pytest.raises(ValueError, match="never occluded"):
        occlusion(net, x, size=8, stride=12)
    with pytest.raises(ValueError, match="one image"):
        occlusion(net, torch.randn(2, 3, 32, 32))
    assert window_positions(48, 16, 16) == [0, 16, 32]
    res = occlusion(net, x, size=(8, 16), stride=(8, 16))  # non-square image and window
    assert res.prob.shape == (4, 3)


def test_pixel_form_matches_captum():
    captum = pytest.importorskip("captum.attr")
    net = small_net()
    x = torch.randn(1, 3, 40, 44)
    res = occlusion(net, x, size=12, stride=5, target=3)
    ours = res.to_pixels(res.base_prob - res.prob, 40, 44)

    def prob3(inp):
        return net(inp).softmax(1)

    theirs = captum.Occlusion(prob3).attribute(x, sliding_window_shapes=(3, 12, 12), strides=(3, 5, 5), target=3,
                                                 baselines=0.0)  # fmt: skip
    assert torch.allclose(ours, theirs[0, 0], atol=1e-5)
    assert torch.allclose(theirs[0, 0], theirs[0, 2], atol=1e-7)


def test_model_memory_format_and_mode_restored():
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    occlusion(net, torch.randn(1, 3, 32, 32), size=8, stride=8, channels_last=True)
    assert net.training
    for k, v in net.state_dict().items():
        assert v.is_contiguous() and torch.equal(v, before[k])
