"""Notebooks 01, 02 and 09's measurements against identities and constructed cases: the filter
energy split, the high-frequency share, the switch-less deconvnet's image-independence, the
checkpointed randomisation cascade, the claims' verdict rules, and the figure builders."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from zfhelpers.analysis import projections as analysis
from zfhelpers.analysis.filters import filter_structure, stem_claims
from zfhelpers.analysis.sanity import cascading_randomization
from zfhelpers.methods.mirror import mirror_vs_engine
from zfhelpers.methods.projection import class_projection, strongest_units
from zfhelpers.methods.rules import RULES


def no_pool_classifier():
    """MobileNet's pattern in miniature: strided convs, batch norm, ReLU6, global average pool."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU6(inplace=True), nn.Conv2d(8, 16, 3, 2, 1),
                        nn.BatchNorm2d(16), nn.ReLU6(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(16, 5))  # fmt: skip
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2)
    return net.eval()


def zf_like():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 8, 7, 2, 1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                         nn.LocalResponseNorm(5), nn.Conv2d(8, 16, 5, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                         nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())  # fmt: skip


# --------------------------------------------------------------------------- 01: filters
def test_filter_energy_split_on_constructed_filters_and_chance_levels():
    flat_grey = torch.ones(1, 3, 3, 3)
    edge = torch.tensor([[-1.0, 0, 1]] * 3).expand(3, 3, 3)[None]  # the same horizontal step in R, G, B
    colour = torch.stack([torch.ones(3, 3), -torch.ones(3, 3), torch.zeros(3, 3)])[None]
    s = filter_structure(torch.cat([flat_grey, edge, colour]))
    assert np.allclose(s.flat, [1, 0, 1]) and np.allclose(s.colour, [0, 0, 1])
    rnd = filter_structure(torch.randn(4000, 3, 3, 3, generator=torch.Generator().manual_seed(0)))
    assert abs(rnd.flat.mean() - 1 / 9) < 0.01 and abs(rnd.colour.mean() - 2 / 3) < 0.01
    assert not rnd.near_zero.any()


def test_near_zero_filters_are_counted_and_left_out_of_the_shares():
    w = torch.randn(10, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    w[[2, 7]] *= 1e-3
    s = filter_structure(w)
    assert s.near_zero.tolist() == [i in (2, 7) for i in range(10)]
    count, flat, colour = stem_claims(s, model="m", layer="l")
    assert count.value == 2 and flat.n == colour.n == 8
    assert flat.chance == pytest.approx(1 / 9) and colour.chance == pytest.approx(2 / 3)
    assert all(c.verdict == "not comparable" for c in (count, flat, colour))


# --------------------------------------------------------------------------- 02: mirror claim, artefacts
def test_mirror_claim_is_reproduced_on_a_zf_like_stack():
    net, x = zf_like(), torch.randn(1, 3, 96, 96)
    claim = analysis.mirror_claim(mirror_vs_engine(net, x, layers=["1", "5", "8"]), key="toy", model="toy")
    assert claim.verdict == "reproduced" and claim.value < 1e-5 and claim.n == 3
    assert claim.paper == "simonyan2014.deconv_equals_gradient_except_relu"


def test_high_frequency_share_separates_checkerboards_from_smooth_maps():
    yy, xx = torch.meshgrid(torch.arange(42.0), torch.arange(42.0), indexing="ij")  # whole periods of 2 and 3
    blob = torch.exp(-((yy - 21) ** 2 + (xx - 21) ** 2) / 60).expand(3, -1, -1)
    checker = ((yy + xx) % 2 * 2 - 1).expand(3, -1, -1)
    stripes = torch.cos(torch.pi * 2 * xx / 3).expand(3, -1, -1)  # period 3 px: counted as high frequency
    assert analysis.high_frequency_share(blob) < 0.01
    assert analysis.high_frequency_share(checker) > 0.99
    assert analysis.high_frequency_share(stripes) > 0.99
    assert analysis.high_frequency_share(torch.zeros(3, 40, 40)) == 0.0


def test_artefact_claim_pairs_the_same_units_under_both_rules():
    net, x = zf_like(), torch.randn(1, 3, 96, 96)
    rows = strongest_units(net, x, layers=["5", "8"], n_channels=3, rules=("deconvnet", "guided"))
    for row in rows:
        d, g = row.projections["deconvnet"], row.projections["guided"]
        assert d.channels == g.channels and torch.equal(d.positions, g.positions)
        assert row.head(1).channels == d.channels[:1]
    claim = analysis.artefact_claim(rows, key="toy", model="toy")
    assert claim.n == 6 and claim.ci is not None and claim.p_value is not None
    assert claim.paper == "springenberg2015.appendix.guided_with_pooling"


# --------------------------------------------------------------------------- 09: the switch-less deconvnet
def test_deconvnet_class_map_without_switches_ignores_the_image():
    """No max-pool: the deconvnet's backward pass never meets the input, so one class's map is the
    same for any image; guided backprop and the gradient depend on it."""
    net = no_pool_classifier()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    maps = {rule: class_projection(net, x, target=2, rule=rule) for rule in RULES}
    claim = analysis.switchless_claim(maps["deconvnet"], model="toy", class_name="two")
    assert claim.verdict == "reproduced" and claim.value < 1e-6
    assert analysis.image_independence(maps["guided"]) > 0.1
    assert analysis.image_independence(maps["gradient"]) > 0.1
    with torch.no_grad():  # with max-pool switches the same map does depend on the image
        pooled = nn.Sequential(*list(net)[:3], nn.MaxPool2d(2), *list(net)[3:])
    assert analysis.image_independence(class_projection(pooled, x, target=2, rule="deconvnet")) > 0.1


def test_checkpointed_cascade_matches_the_full_cascade():
    net = no_pool_classifier()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))

    def method(m):
        return class_projection(m, x, target=1, rule="guided")

    full = cascading_randomization(net, method)
    some = analysis.cascade(net, method, n_steps=3)
    assert [s.randomized_up_to for s in full][0] == some[0].randomized_up_to == "none"
    by_name = {s.randomized_up_to: s for s in full}
    assert len(some) < len(full)
    for step in some:
        ref = by_name[step.randomized_up_to]
        assert torch.allclose(step.maps, ref.maps, atol=1e-6) and step.spearman == pytest.approx(ref.spearman)


def test_cascade_stops_keep_the_classifier_the_half_way_point_and_the_end():
    assert analysis.cascade_stops(20, 0) == list(range(1, 21))
    stops = analysis.cascade_stops(20, 6)
    assert {1, 2, 10, 20} <= set(stops) and len(stops) <= 8 and stops == sorted(set(stops))
    assert analysis.cascade_stops(3, 6) == [1, 2, 3]


@pytest.mark.parametrize(("rule", "ci", "verdict"), [
    ("guided", (0.8, 0.9), "reproduced"), ("guided", (0.3, 0.6), "partly reproduced"),
    ("guided", (0.1, 0.2), "not reproduced"), ("gradient", (0.1, 0.2), "reproduced"),
    ("gradient", (0.7, 0.9), "not reproduced"), ("deconvnet", (0.7, 0.9), "not comparable"),
])  # fmt: skip
def test_randomization_verdicts(rule, ci, verdict):
    assert analysis._randomization_verdict(rule, ci)[1] == verdict


def test_randomization_claims_at_half_way_and_at_the_end():
    net = no_pool_classifier()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    steps = {rule: analysis.cascade(net, lambda m, rule=rule: class_projection(m, x, target=0, rule=rule), n_steps=2)
             for rule in ("gradient", "guided")}  # fmt: skip
    claims = {c.id: c for c in analysis.randomization_claims(steps, net)}
    ids = {f"09.randomization.{k}.{r}" for k in ("top_half", "all_layers") for r in ("gradient", "guided")}
    assert set(claims) == ids
    for c in claims.values():
        assert c.n == 3 and c.chance == 0.0 and c.ci[0] <= c.value <= c.ci[1]
    assert claims["09.randomization.all_layers.guided"].verdict == "not comparable"


# --------------------------------------------------------------------------- 00: recognition claim
def test_recognition_claim_counts_labelled_photos_only():
    from zfhelpers.notebook.setup_check import recognition_claim

    probs = torch.full((3, 1000), 1e-4)
    probs[0, 7], probs[1, 3], probs[2, 9] = 0.9, 0.9, 0.9
    claim = recognition_claim(probs, ["a", "b", "c"], {"a": 7, "b": 4}, k=1, model="m")
    assert claim.value == 0.5 and claim.n == 2 and claim.chance == pytest.approx(0.001)
    assert recognition_claim(probs, ["x"], {"a": 7}, k=1, model="m") is None


# --------------------------------------------------------------------------- figures
def test_figure_builders_draw_without_error_and_the_mirror_difference_row_is_grey(tmp_path):
    import matplotlib.pyplot as plt

    from zfhelpers.methods.mirror import mirror_strongest
    from zfhelpers.notebook import projection_figures as figures

    net, x = zf_like(), torch.randn(1, 3, 96, 96)
    display = np.full((96, 96, 3), 0.5)
    check = mirror_vs_engine(net, x, layers=["1", "5"])
    fig = figures.mirror_engine_figure(check)
    bottom = fig.axes[-1].get_images()[0].get_array()
    assert np.allclose(bottom, 0.5, atol=1e-3)  # the difference drawn on the engine's scale: grey
    rows = strongest_units(net, x, layers=["5", "8"], n_channels=2, rules=RULES)
    built = [fig,
             figures.deconv_path_figure(display, mirror_strongest(net, x, layer="5")),
             figures.layer_projections_figure(display, rows, grey=True, title="t"),
             figures.artefacts_figure(display, [r.head(1) for r in rows], title="t"),
             figures.rule_units_figure(display, [r.head(1) for r in rows], title="t")]  # fmt: skip
    samples = [SimpleNamespace(name="a", display=display), SimpleNamespace(name="b", display=display)]
    maps = {rule: torch.randn(2, 3, 96, 96) for rule in RULES}
    built.append(figures.rule_class_figure(samples, ["a 0.5", "b 0.5"], maps, title="t"))
    built.append(figures.same_class_figure(samples, maps, class_name="c"))
    steps = {rule: analysis.cascade(no_pool_classifier(), lambda m, rule=rule: class_projection(
        m, torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)), target=0, rule=rule), n_steps=2)
        for rule in ("gradient", "guided")}  # fmt: skip
    built.append(figures.sanity_figure(steps, image_name="a", n_images=2))
    for f in built:
        f.savefig(tmp_path / "f.png")
        plt.close(f)


def test_rules_explorer_opens_on_a_firing_channel_and_names_a_dead_one():
    from zfhelpers.notebook.projection_explorers import rules_explorer

    net = zf_like()
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(5))
    sample = SimpleNamespace(name="noise", tensor=x, display=np.full((96, 96, 3), 0.5))
    ex = rules_explorer(net, sample, layer="5", border=0)
    acts = ex.render.acts("5")
    assert acts[ex.channel.value].any() and ex.note is None
    assert all(im.get_visible() for im in ex.render.ims[1:])
    with torch.no_grad():
        net[4].weight[0].zero_()
        net[4].bias[0] = -1.0
    ex.render.forward.cache_clear()
    ex.layer.value = "8"
    ex.layer.value = "5"
    ex.channel.value = 0
    assert ex.note == "channel 0 is dead on this image (all zeros)"
    with pytest.raises(ValueError, match="valid layers"):
        rules_explorer(net, sample, layer="nope")
