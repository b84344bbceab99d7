"""The explanatory graph (Zhang et al. 2018) on planted part patterns, its metric, determinism."""

import math

import pytest
import torch

from zfhelpers.graph import model as eg

SMALL = dict(parents=4, candidates=50, iterations=10)


@pytest.fixture(scope="module")
def planted():
    data = eg.planted_maps(40, seed=0)
    graph = eg.learn_graph(data["maps"], data["strides"], {"lower": 0.05, "upper": 0.1}, seed=0, progress=False,
                           **SMALL)  # fmt: skip
    return data, graph


def test_nodes_recover_the_planted_part_positions(planted):
    data, graph = planted
    for name, layer in graph.items():
        pix = eg.unit_to_pixel(layer.positions, layer.stride)  # I×C×N×2
        assert layer.centers.shape[1] == math.ceil({"lower": 0.05, "upper": 0.1}[name] * layer.size[0] ** 2)
        for c, parts in enumerate(data["filters"][name]):
            for p in parts:  # a mixture filter gets a node for each of its parts
                err = (pix[:, c] - data["truth"][:, p, None]).norm(dim=-1)  # I×N
                hit = (err < 1.5 * layer.stride).float().mean(0)
                assert hit.max() >= 0.85, (name, c, p, float(hit.max()))


def test_nodes_beat_the_raw_filter_argmax_on_mixture_filters(planted):
    """A filter that fires at two parts (plus noise peaks) has no stable argmax; its nodes do."""
    data, graph = planted
    maps, layer = data["maps"]["lower"], graph["lower"]
    c = 4  # fires at parts 0 and 1
    flat = maps[:, c].flatten(1).argmax(1)
    raw = torch.stack([flat // maps.shape[-1], flat % maps.shape[-1]], -1).float()
    raw_px = eg.unit_to_pixel(raw, layer.stride)
    node_px = eg.unit_to_pixel(layer.positions[:, c], layer.stride)  # I×N×2
    truth = data["truth"][:, 0]
    raw_spread = eg.location_instability(raw_px, truth[:, None], 128 * math.sqrt(2))
    node_spread = min(eg.location_instability(node_px[:, n], truth[:, None], 128 * math.sqrt(2))
                      for n in range(node_px.shape[1]))  # fmt: skip
    assert node_spread < raw_spread / 2


def test_location_instability_matches_a_hand_computed_example():
    pos = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    lm = torch.tensor([[[3.0, 4.0], [1.0, 0.0]], [[6.0, 8.0], [float("nan"), 0.0]], [[0.0, 0.0], [3.0, 0.0]]])
    # landmark 0: distances 5, 10, 0 → std (unbiased) 5; landmark 1: 1, 3 (image 2 lacks it) → √2
    assert eg.location_instability(pos, lm, diagonal=10.0) == pytest.approx((5 / 10 + math.sqrt(2) / 10) / 2)


def test_learning_is_deterministic_and_the_maps_are_seeded():
    a = eg.planted_maps(12, seed=3)
    b = eg.planted_maps(12, seed=3)
    assert torch.equal(a["maps"]["lower"], b["maps"]["lower"])
    g1 = eg.learn_graph(a["maps"], a["strides"], {"lower": 0.05, "upper": 0.1}, seed=1, progress=False, **SMALL)
    g2 = eg.learn_graph(b["maps"], b["strides"], {"lower": 0.05, "upper": 0.1}, seed=1, progress=False, **SMALL)
    for name in g1:
        assert torch.equal(g1[name].positions, g2[name].positions)
        assert torch.equal(g1[name].parents, g2[name].parents) if g1[name].parents is not None else True


def test_e_step_prefers_the_evidence_peak_within_the_window():
    params = eg.GraphParams(density=0.02)
    layer = eg.GraphLayer("x", (20, 20), 8.0, torch.tensor([[[10.0, 10.0]]]), torch.tensor([[2.0]]))
    maps = torch.zeros(1, 1, 20, 20)
    maps[0, 0, 12, 9] = 5.0
    est = eg.e_step(eg.smooth_maps(maps, 0.5), layer, torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1),
                    torch.tensor([[3.0]]), params)  # fmt: skip
    y, x = est["positions"][0, 0, 0].tolist()
    assert abs(y - 12) <= 1 and abs(x - 9) <= 1
    with pytest.raises(ValueError, match="density"):
        eg.GraphParams(density=2.0)


def test_inference_on_the_training_maps_reproduces_the_learned_positions(planted):
    data, graph = planted
    out = eg.infer(graph, data["maps"])
    for name, layer in graph.items():
        assert torch.allclose(out[name].positions, layer.positions, atol=1e-4)
        assert torch.allclose(out[name].ranking, layer.ranking, rtol=1e-4, atol=1e-6)


def test_save_load_and_resume_per_layer(planted, tmp_path):
    data, graph = planted
    eg.save_graph(graph, tmp_path / "g.pt")
    loaded = eg.load_graph(tmp_path / "g.pt")
    for name in graph:
        assert torch.equal(loaded[name].positions, graph[name].positions)
        assert loaded[name].params == graph[name].params
    ck = tmp_path / "ck"
    dens = {"lower": 0.05, "upper": 0.1}
    first = eg.learn_graph(data["maps"], data["strides"], dens, seed=0, progress=False, checkpoint_dir=ck, **SMALL)
    (ck / "graph_lower.pt").unlink()  # as if killed while learning the lower layer
    resumed = eg.learn_graph(data["maps"], data["strides"], dens, seed=0, progress=False, checkpoint_dir=ck, **SMALL)
    for name in first:
        assert torch.equal(first[name].positions, resumed[name].positions)
        assert torch.equal(first[name].positions, graph[name].positions)


def test_a_graph_checkpoint_of_other_maps_is_refused(planted, tmp_path, capfd):
    data, _ = planted
    ck, dens = tmp_path / "ck", {"lower": 0.05, "upper": 0.1}
    eg.learn_graph(data["maps"], data["strides"], dens, seed=0, progress=False, checkpoint_dir=ck, **SMALL)
    other = {n: m.clone() for n, m in data["maps"].items()}
    other["upper"][0, 0, 0, 0] += 1.0  # one activation changed: another image set or model
    eg.learn_graph(other, data["strides"], dens, seed=0, progress=False, checkpoint_dir=ck, **SMALL)
    err = capfd.readouterr().err
    assert "graph checkpoint" in err and "differs in: maps" in err


def test_landmark_folder_loader_scales_points(tmp_path):
    import json

    from PIL import Image

    from zfhelpers.graph import evaluate as graph_eval

    for i, size in enumerate([(100, 50), (60, 60)]):
        Image.new("RGB", size, (i * 40, 100, 200)).save(tmp_path / f"im{i}.png")
    (tmp_path / "a.json").write_text(json.dumps({"images": ["im0.png", "im1.png"],
                                                 "landmarks": {"head": [[50, 25], None], "tail": [[0, 0], [30, 60]]},
                                                 "negatives": ["im1.png"]}))  # fmt: skip
    d = graph_eval.load_landmark_folder(tmp_path / "a.json", side=20)
    assert d["images"].shape == (2, 3, 20, 20) and d["images"].dtype == torch.uint8
    assert d["names"] == ["head", "tail"] and d["negatives"].shape == (1, 3, 20, 20)
    assert d["landmarks"][0, 0].tolist() == [10.0, 10.0] and torch.isnan(d["landmarks"][1, 0]).all()
    assert d["landmarks"][1, 1].tolist() == [10.0, 20.0]
    (tmp_path / "b.json").write_text(json.dumps({"images": ["im0.png"], "landmarks": {"head": []}}))
    with pytest.raises(ValueError, match="0 entries for 1 images"):
        graph_eval.load_landmark_folder(tmp_path / "b.json")
