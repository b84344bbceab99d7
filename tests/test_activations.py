import pytest
import torch
from torch import nn

from zfhelpers.models.capture import recording


def test_inplace_relu_does_not_rewrite_recorded_conv_output():
    conv = nn.Conv2d(1, 2, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(inplace=True))
    with recording(model, {"conv": conv}) as store:
        model(torch.randn(1, 1, 8, 8))
    assert (store["conv"] < 0).any()


def test_hooks_are_removed_even_when_the_body_raises():
    conv = nn.Conv2d(1, 1, 1)
    model = nn.Sequential(conv)
    with pytest.raises(RuntimeError, match="boom"), recording(model, {"c": conv}):
        raise RuntimeError("boom")
    assert not conv._forward_hooks
