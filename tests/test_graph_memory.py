"""Memory of the explanatory graph: the run is estimated (and warned about) before it starts, and
chunking does not change results."""

import pytest
import torch

from zfhelpers.graph import model as eg


def test_memory_estimate_is_linear_in_images_and_warns_before_a_run_that_will_not_fit(monkeypatch):
    shapes = {"a": (100, 512, 28, 28), "b": (100, 512, 14, 14)}
    dens = {"a": 0.05, "b": 0.1}
    one = eg.memory_estimate(shapes, dens)
    two = eg.memory_estimate({k: (200, *s[1:]) for k, s in shapes.items()}, dens)
    state = 4 * 100 * 512 * (40 + 20) * 6  # positions, scores, rankings, displacements per node and image
    assert two - one == state
    data = eg.planted_maps(6, seed=0)
    monkeypatch.setattr(eg, "available_memory", lambda device="cpu": 1024)
    with pytest.warns(RuntimeWarning, match="GiB beyond its maps"):
        eg.learn_graph(data["maps"], data["strides"], {"lower": 0.05, "upper": 0.1}, progress=False, iterations=1)


def test_e_step_chunking_does_not_change_the_graph():
    data = eg.planted_maps(10, seed=4)
    args = (data["maps"], data["strides"], {"lower": 0.05, "upper": 0.1})
    small = dict(parents=4, candidates=50, iterations=3, progress=False)
    whole = eg.learn_graph(*args, **small)
    chunked = eg.learn_graph(*args, chunk_mb=0.01, **small)  # one image per E-step chunk
    for name in whole:
        torch.testing.assert_close(chunked[name].frame_positions, whole[name].frame_positions)
        torch.testing.assert_close(chunked[name].ranking, whole[name].ranking)
