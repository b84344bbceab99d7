"""Left/right handling: planted objects mirrored in half the images are recovered like unmirrored
ones; positions come back in each image's own frame."""

import pytest
import torch

from zfhelpers.graph import evaluate as graph_eval
from zfhelpers.graph import model as eg

SMALL = dict(parents=4, candidates=50, iterations=10)
DENS = {"lower": 0.05, "upper": 0.1}


def _recovery(mirror_rate: float, flip: bool, seed: int = 0) -> tuple[float, dict, dict]:
    train = eg.planted_maps(40, seed=seed, mirror_rate=mirror_rate)
    test = eg.planted_maps(40, seed=seed + 10, mirror_rate=mirror_rate)
    graph = eg.learn_graph(train["maps"], train["strides"], DENS, mirror=train["mirror"] if flip else None,
                           progress=False, **SMALL)  # fmt: skip
    inferred = eg.infer(graph, test["maps"], test["mirror"] if flip else None)
    rec = graph_eval.planted_recovery({n: inf.positions for n, inf in inferred.items()}, train["strides"], test)
    return rec["recovery"], graph, inferred


@pytest.fixture(scope="module")
def mirrored():
    return _recovery(0.5, flip=True)


def test_mirrored_planted_parts_are_recovered_like_unmirrored_ones(mirrored):
    plain, _, _ = _recovery(0.0, flip=False)
    without, _, _ = _recovery(0.5, flip=False)
    assert plain >= 0.95
    assert mirrored[0] >= plain - 0.02, (mirrored[0], plain)
    assert without < 0.75  # the test can fail: nodes tied to fixed displacements miss mirrored parts


def test_the_orientation_is_chosen_at_the_top_and_carried_down(mirrored):
    _, graph, inferred = mirrored
    train = eg.planted_maps(40, seed=0, mirror_rate=0.5)
    test = eg.planted_maps(40, seed=10, mirror_rate=0.5)
    for truth, flipped in ((train["mirrored"], graph["upper"].flipped), (test["mirrored"], inferred["upper"].flipped)):
        agree = (flipped == truth).float().mean()
        assert agree in (0.0, 1.0)  # one canonical orientation, whichever the first image had
    assert torch.equal(graph["lower"].flipped, graph["upper"].flipped)
    assert torch.equal(inferred["lower"].flipped, inferred["upper"].flipped)


def test_positions_are_mirrored_back_into_each_image(mirrored):
    _, graph, _ = mirrored
    layer = graph["lower"]
    w = layer.size[1]
    f = layer.flipped
    torch.testing.assert_close(layer.positions[f][..., 1], w - 1 - layer.frame_positions[f][..., 1])
    torch.testing.assert_close(layer.positions[~f], layer.frame_positions[~f])
    train = eg.planted_maps(40, seed=0, mirror_rate=0.5)
    again = eg.infer(graph, train["maps"], train["mirror"])
    torch.testing.assert_close(again["lower"].positions, layer.positions, atol=1e-4, rtol=0)


def test_mirror_maps_must_be_given_to_every_layer(mirrored):
    _, graph, _ = mirrored
    data = eg.planted_maps(8, seed=3)
    layer = eg.init_layer("lower", (16, 16), 8, 8.0, graph["lower"].params, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="every layer or to none"):
        eg.learn_layer(data["maps"]["lower"], layer, graph["lower"].params, graph["upper"], progress=False)
    plain = eg.learn_graph(data["maps"], data["strides"], DENS, progress=False, **(SMALL | {"iterations": 2}))
    with pytest.raises(ValueError, match="without mirror"):
        eg.infer(plain, data["maps"], data["mirror"])
