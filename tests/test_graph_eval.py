"""Evaluation of the explanatory graph: the vectorised metric against the per-unit loop, its
floor and fixed-point baselines, the studies' intervals and tests, diverse unit choice, few-shot
localisation, and the small statistics module."""

import numpy as np
import pytest
import torch

from zfhelpers.graph import evaluate as graph_eval
from zfhelpers.graph import model as eg


def _landmarks(n=30, seed=0, missing=True):
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([[30.0, 40.0], [80.0, 50.0], [60.0, 90.0]])
    marks = base + torch.randn(n, 1, 2, generator=g) * 8 + torch.randn(n, 3, 2, generator=g) * 3
    if missing:
        marks[3, 1] = float("nan")
    return marks


def test_vectorised_instability_matches_the_per_unit_loop():
    g = torch.Generator().manual_seed(1)
    marks = _landmarks()
    pos = torch.rand(30, 7, 2, generator=g) * 112
    scores = torch.rand(30, 7, generator=g)
    units, d = graph_eval.instability_per_landmark(pos, scores, marks, 100.0, top_images=10, top_units=5)
    _, top = graph_eval.rank_units(scores, 10)
    for row, u in enumerate(units.tolist()):
        idx = top[:, u]
        want = eg.location_instability(pos[idx, u], marks[idx], 100.0)
        assert float(d[row].nanmean()) == pytest.approx(want, rel=1e-5)
    # ranking: by the mean of the top-10 scores
    assert units[0] == scores.topk(10, dim=0).values.mean(0).argmax()


def test_floor_and_fixed_point_baselines():
    marks = _landmarks(missing=False)
    floor = graph_eval.landmark_floor(marks, 100.0)
    for j in range(3):
        assert float(floor[j]) == pytest.approx(eg.location_instability(marks[:, j], marks, 100.0), rel=1e-5)
    rigid = torch.tensor([[0.0, 0.0], [10.0, 0.0]]) + torch.randn(20, 1, 2) * 5  # parts move together
    assert graph_eval.landmark_floor(rigid, 100.0).abs().max() < 1e-5
    fixed = graph_eval.fixed_point_instability(marks, (56.0, 56.0), 100.0)
    for k in range(3):
        d = (marks[:, k] - torch.tensor([56.0, 56.0])).norm(dim=-1) / 100
        assert float(fixed[k]) == pytest.approx(float(d.std()), rel=1e-5)


def _units(marks, good: bool, seed: int):
    """Units per layer: 'good' ones sit on a landmark (+1 px noise), the others anywhere."""
    g = torch.Generator().manual_seed(seed)
    n = marks.shape[0]
    if good:
        pos = marks[:, torch.arange(6) % 3] + torch.randn(n, 6, 2, generator=g)
    else:
        pos = torch.rand(n, 6, 2, generator=g) * 112
    return {"l1": (pos, torch.rand(n, 6, generator=g)), "l2": (pos.flip(1), torch.rand(n, 6, generator=g))}


def test_instability_study_resolves_a_real_difference_and_reports_plain_dicts():
    marks = _landmarks(n=40, missing=False)
    methods = {"nodes": _units(marks, True, 0), "raw_filters": _units(marks, False, 1)}
    study = graph_eval.instability_study(methods, marks, 100.0, (56.0, 56.0), top_images=10, top_units=4, n_boot=200)
    for name, r in study.items():
        assert set(r) >= {"value", "ci_low", "ci_high", "n", "note"}, name
        assert r["ci_low"] <= r["value"] + 1e-9 and r["value"] <= r["ci_high"] + 1e-9, name
    # 2 layers × 3 landmarks = 6 paired cells: 2/64 is the smallest two-sided p there is
    assert study["nodes-raw_filters"]["ci_high"] < 0 and study["nodes-raw_filters"]["p"] == pytest.approx(2 / 64)
    assert study["nodes"]["value"] == pytest.approx(study["landmark_floor"]["value"], abs=0.01)
    assert study["nodes@l1"]["n"] == 4 and study["nodes"]["n"] == 8
    assert "more stable than raw_filters" in graph_eval.verdict(study)
    assert "nodes-raw_filters" in graph_eval.format_results(study)


def test_diverse_units_take_one_node_per_filter_and_spread_over_landmarks():
    marks = _landmarks(n=30, missing=False)
    g = torch.Generator().manual_seed(2)
    # filter 0's four nodes all sit on the head and score best; the rest sit on the tail or foot
    pos = torch.cat([marks[:, [0] * 4], marks[:, [1] * 4], marks[:, [2] * 4]], 1) + torch.randn(30, 12, 2, generator=g)
    scores = torch.rand(30, 12, generator=g) + torch.tensor([2.0] * 4 + [0.0] * 8)
    chosen = graph_eval.diverse_units(pos, scores, marks, nodes_per_filter=4, n=3, top_images=10)
    assert len({u // 4 for u, _ in chosen}) == 3 and {k for _, k in chosen} == {0, 1, 2}


def test_few_shot_localisation_is_exact_for_units_at_a_fixed_offset():
    marks = _landmarks(n=10, missing=False)
    px = torch.cat([marks + torch.tensor([5.0, -3.0]), torch.rand(10, 4, 2) * 112], 1)  # 3 exact + 4 random
    guess = graph_eval.few_shot_localisation(px[:3], marks[:3], px[3:], torch.ones(7, 7), shots=3, use=1)
    torch.testing.assert_close(guess, marks[3:], atol=1e-4, rtol=0)
    study = graph_eval.localisation_study({"nodes": (px[:3], None), "raw": (px[:3, 3:], None)},
                                          {"nodes": (px[3:], torch.ones(7, 7)), "raw": (px[3:, 3:], torch.ones(7, 4))},
                                          marks[:3], marks[3:], 100.0, ["a", "b", "c"], use=1, n_boot=100)  # fmt: skip
    assert study["nodes"]["value"] < 1e-5 and study["nodes-raw"]["value"] < 0


def test_image_bootstrap_and_nan_aware_paired_test():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.0, 200)
    lows, highs = graph_eval._bootstrap_images(len(x), lambda i: np.array([x[i].mean(), x[i].std()]), n_boot=300,
                                               seed=0)  # fmt: skip
    assert lows.shape == (2,) and lows[0] < x.mean() < highs[0] and lows[1] < x.std() < highs[1]
    low, high = graph_eval._ci(np.r_[x, np.nan], 300, 0)  # NaN (image without the landmark) left out
    assert low < x.mean() < high
    y = x + rng.normal(0, 0.1, 200)
    assert graph_eval._paired_p(np.r_[x + 0.5, np.nan], np.r_[y, 1.0]) < 0.001
    assert graph_eval._paired_p(x, x) == 1.0


def test_paper_numbers_come_from_the_registry_and_unknown_ones_are_none():
    paper = graph_eval.paper_numbers(graph_eval.PAPER_INSTABILITY)
    assert all(e["source"] and e["label"] for e in paper.values())
    known = sorted(e["value"] for e in paper.values() if e["value"] is not None)
    assert known == [0.137, 0.139, 0.144]  # Interpretable CNNs, raw VGG-16 filters
    assert paper["zhang2018aaai.location_instability.cub200.graph_nodes"]["value"] is None
    rows = graph_eval.paper_table(paper)
    assert "—" in graph_eval.format_results(rows)
    assert all(e["value"] is None for e in graph_eval.paper_numbers(graph_eval.PAPER_LOCALISATION).values())
