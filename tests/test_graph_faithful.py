"""The vectorised explanatory graph against direct loops written from the authors' release
(tests/graph_reference.py): E-step with nearest-candidate competition and absolute λ, M-step,
parents' terms in both unit conventions, per-node-width parent selection (also chunked), and the
pre-ReLU std-over-negatives normaliser."""

import graph_reference as ref
import numpy as np
import pytest
import torch
from torch import nn

from zfhelpers.graph import evaluate as graph_eval
from zfhelpers.graph import model as eg

H = 10


def _layer(c=2, n=5, seed=0, size=H, stride=8.0):
    g = torch.Generator().manual_seed(seed)
    centers = 1 + torch.rand(c, n, 2, generator=g, dtype=torch.float64) * (size - 3)
    sigma = 0.4 + torch.rand(c, n, generator=g, dtype=torch.float64) * 1.6  # half-ranges 1 … 3
    return eg.GraphLayer("x", (size, size), stride, centers, sigma)


def _inputs(layer, n_img=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    c, n = layer.sigma.shape
    maps = torch.rand(n_img, c, H, H, generator=g, dtype=torch.float64) ** 3 * 4
    evidence = eg.smooth_maps(maps, 0.7)
    shift = torch.randn(n_img, c, n, 2, generator=g, dtype=torch.float64) * 0.7
    log_lam = torch.randn(n_img, c, n, generator=g, dtype=torch.float64) * 1.5
    sigma_par = 0.8 + torch.rand(c, n, generator=g, dtype=torch.float64) * 1.7
    return evidence, shift, log_lam, sigma_par


@pytest.mark.parametrize("ties", [False, True])
def test_e_step_matches_the_release_loops(ties):
    layer = _layer()
    evidence, shift, log_lam, sigma_par = _inputs(layer)
    grid = 6
    if ties:  # integer centres (as initialised), a 4×4 grid with binary steps: exact edge and midway ties
        layer.centers, shift, grid = layer.centers.round(), torch.zeros_like(shift), 4
    params = eg.GraphParams(density=0.05, grid=grid)
    got = eg.e_step(evidence, layer, shift, log_lam, sigma_par, params)
    want = ref.e_step(evidence.numpy(), layer.centers.numpy(), layer.sigma.numpy(), shift.numpy(),
                      log_lam.exp().numpy(), sigma_par.numpy(), H, grid=grid)  # fmt: skip
    for key in ("q", "da", "positions", "score", "rank"):
        np.testing.assert_allclose(got[key].numpy(), want[key], rtol=1e-9, atol=1e-12, err_msg=key)
    # the competition is exercised: somewhere another node's grid covers a candidate
    cand, r = eg.candidate_grid(layer.sigma, H, params)
    lam = log_lam.exp()
    z = eg.competition(layer.centers[None] + shift, cand, r, sigma_par, lam)
    g1 = torch.exp(-(cand**2) / (2 * sigma_par[..., None] ** 2)) / (np.sqrt(2 * np.pi) * sigma_par[..., None])
    own = lam[..., None] * (g1[..., :, None] * g1[..., None, :]).flatten(-2)
    assert (z > own * (1 + 1e-6)).float().mean() > 0.1


def test_competition_counts_each_node_once_and_only_inside_its_grid():
    layer = eg.GraphLayer("x", (H, H), 8.0, torch.tensor([[[4.0, 4.0], [4.0, 9.5]]], dtype=torch.float64),
                          torch.tensor([[1.0, 1.0]], dtype=torch.float64))  # fmt: skip
    params = eg.GraphParams(density=0.05)
    cand, r = eg.candidate_grid(layer.sigma, H, params)
    mu = layer.centers[None]
    lam = torch.tensor([[[2.0, 3.0]]], dtype=torch.float64)
    sigma_par = torch.tensor([[1.5, 1.5]], dtype=torch.float64)
    z = eg.competition(mu, cand, r, sigma_par, lam)
    g1 = torch.exp(-(cand**2) / (2 * 1.5**2)) / (np.sqrt(2 * np.pi) * 1.5)
    own = lam[0, 0, :, None] * (g1[0, :, :, None] * g1[0, :, None, :]).flatten(1)
    # the two nodes' grids (±0.83 around x = 4 and 9.5) do not overlap: each sees only itself
    torch.testing.assert_close(z[0, 0], own, rtol=1e-12, atol=0)


def test_m_step_matches_the_release_update():
    layer = _layer(seed=3)
    g = torch.Generator().manual_seed(4)
    q = torch.rand(3, 2, 5, 36, generator=g, dtype=torch.float64)
    da = torch.rand(3, 2, 5, 36, generator=g, dtype=torch.float64)
    da[:, 1, 2] = 0  # a node without mass gets σ_min
    sigma_par = 0.8 + torch.rand(2, 5, generator=g, dtype=torch.float64)
    params = eg.GraphParams(density=0.05, clamp_centres=False)
    off = eg.grid_offsets(eg.candidate_grid(layer.sigma, H, params)[0])
    want_c, want_s = ref.m_step(layer.centers.numpy(), layer.sigma.numpy(), q.numpy(), da.numpy(), sigma_par.numpy(),
                                t=3, h=H, density=0.05)  # fmt: skip
    eg.m_step(layer, q.sum(0), da.sum(0), off, sigma_par, 3, params)
    np.testing.assert_allclose(layer.centers.numpy(), want_c, rtol=1e-10)
    np.testing.assert_allclose(layer.sigma.numpy(), want_s, rtol=1e-10)
    assert float(layer.sigma[1, 2]) == pytest.approx(1 / np.sqrt(0.05) / 10)


@pytest.mark.parametrize("units", ["parent", "child"])
def test_parent_terms_match_the_release(units):
    layer, upper = _layer(c=2, n=4, stride=8.0), _layer(c=3, n=5, seed=7, stride=16.0)
    g = torch.Generator().manual_seed(5)
    layer.parents = torch.randint(0, 15, (2, 4, 6), generator=g)
    up_delta = torch.randn(4, 15, 2, generator=g, dtype=torch.float64)
    params = eg.GraphParams(density=0.05, parent_units=units)
    shift, log_lam = eg.parent_shift(layer, upper, up_delta, params)
    scale = 2.0 if units == "child" else 1.0
    mu, lam, sig = ref.parent_terms(layer.parents.numpy(), up_delta.numpy(), upper.sigma.flatten().numpy(), scale)
    np.testing.assert_allclose(shift.numpy(), mu, rtol=1e-10)
    np.testing.assert_allclose(log_lam.exp().numpy(), lam, rtol=1e-9)
    np.testing.assert_allclose(eg.parent_sigma(layer, upper, params).numpy(), sig, rtol=1e-10)


def _parent_setup(n_img=12):
    g = torch.Generator().manual_seed(11)
    layer, upper = _layer(c=2, n=4, size=H, stride=8.0), _layer(c=3, n=6, seed=2, size=8, stride=16.0)
    upper.frame_positions = torch.rand(n_img, 3, 6, 2, generator=g, dtype=torch.float64) * 7.5
    upper.frame_positions[:, 0, :2] = upper.frame_positions[:, 0, :2] * 0.1  # near the border: cut
    upper.frame_positions[:, 1, 0] = 4.0  # immobile: cut
    upper.ranking = torch.rand(n_img, 3, 6, generator=g, dtype=torch.float64)
    layer.frame_positions = torch.rand(n_img, 2, 4, 2, generator=g, dtype=torch.float64) * 9
    layer.scores = torch.rand(n_img, 2, 4, generator=g, dtype=torch.float64)
    return layer, upper


def test_parent_selection_matches_the_release_with_per_node_widths():
    layer, upper = _parent_setup()
    params = eg.GraphParams(density=0.05, parents=4, candidates=6)
    got = eg.select_parents(layer, upper, params)
    want = ref.select_parents(layer.frame_positions.flatten(1, 2).numpy(), layer.scores.flatten(1).numpy(),
                              upper.frame_positions.flatten(1, 2).numpy(), upper.ranking.flatten(1).numpy(),
                              upper.size, layer.stride, upper.stride, parents=4, candidates=6)  # fmt: skip
    np.testing.assert_array_equal(got.flatten(0, 1).numpy(), want)


def test_parent_selection_is_the_same_in_any_chunking():
    layer, upper = _parent_setup(n_img=70)
    whole = eg.select_parents(layer, upper, eg.GraphParams(density=0.05, parents=4, candidates=6))
    tiny = eg.select_parents(layer, upper, eg.GraphParams(density=0.05, parents=4, candidates=6, chunk_mb=1e-5))
    assert torch.equal(whole, tiny)


def test_normaliser_is_the_std_of_the_pre_relu_output_over_negatives():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 5, 3, padding=1),
                        nn.ReLU(inplace=True), nn.Conv2d(5, 2, 3))  # fmt: skip
    negatives = torch.randint(0, 256, (7, 3, 6, 6), dtype=torch.uint8)
    images = torch.randint(0, 256, (3, 3, 6, 6), dtype=torch.uint8)

    def prepare(b):
        return b.float() / 255 - 0.5

    def pre(x):  # the conv outputs, computed without hooks
        with torch.no_grad():
            a = net[0](prepare(x))
            return {"1": a.clone(), "3": net[2](a.clamp_min(0))}

    std = graph_eval.unit_std(net, ["1", "3"], negatives, prepare, batch_size=3)
    maps = graph_eval.normalised_maps(net, ["1", "3"], images, negatives, prepare, batch_size=2)
    for name in ("1", "3"):
        want = ref.unit_std(pre(negatives)[name].double().numpy())
        np.testing.assert_allclose(std[name].numpy(), want, rtol=1e-5)
        assert (pre(negatives)[name] < 0).any()  # pre-ReLU values were read, not the rectified ones
        np.testing.assert_allclose(maps[name].numpy(), (pre(images)[name].clamp_min(0) / torch.tensor(want)).numpy(),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="not ReLU"):
        graph_eval.unit_std(net, ["0"], negatives, prepare)


def test_faithful_preset_and_bad_choices():
    data = eg.planted_maps(12, seed=0)
    graph = eg.learn_graph(data["maps"], data["strides"], {"lower": 0.05, "upper": 0.1}, faithful=True,
                           progress=False, parents=4, candidates=50, iterations=3)  # fmt: skip
    assert graph["lower"].params.parent_units == "parent" and not graph["lower"].params.clamp_centres
    with pytest.raises(ValueError, match="valid: child, parent"):
        eg.GraphParams(density=0.1, parent_units="pixels")
