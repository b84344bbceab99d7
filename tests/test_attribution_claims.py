"""The claims of notebooks 05, 07, 08 and 10: the statistics behind them and the verdict rules, on
inputs whose answer is known by construction (and a few real-model checks), plus smoke tests of the
figure builders."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from zfhelpers.analysis import cam_evidence, correspondence, invariance, occlusion_effects, verdicts
from zfhelpers.analysis.sanity import RandomizationStep, similarity, similarity_per_image
from zfhelpers.data import composite
from zfhelpers.methods.occlusion import OcclusionResult

# --------------------------------------------------------------------------- verdict rules


def test_sign_rule_follows_the_interval_and_the_test():
    assert verdicts.sign_rule(0.2, ci=(0.1, 0.3))[0] == "reproduced"
    assert verdicts.sign_rule(0.2, ci=(-0.1, 0.3))[0] == "partly reproduced"
    assert verdicts.sign_rule(-0.2, ci=(-0.3, -0.1))[0] == "not reproduced"
    assert verdicts.sign_rule(-0.2, ci=(-0.3, -0.1), expected="negative")[0] == "reproduced"
    assert verdicts.sign_rule(-0.2, p_value=0.01, expected="negative")[0] == "reproduced"
    assert verdicts.sign_rule(-0.2, p_value=0.2, expected="negative")[0] == "partly reproduced"
    with pytest.raises(ValueError, match="positive"):
        verdicts.sign_rule(1.0, expected="up")


def test_threshold_rule_needs_the_whole_interval():
    assert verdicts.threshold_rule(0.9, (0.85, 0.95), threshold=0.8, above=True, meaning="m")[0] == "reproduced"
    assert verdicts.threshold_rule(0.85, (0.7, 0.95), threshold=0.8, above=True, meaning="m")[0] == "partly reproduced"
    assert verdicts.threshold_rule(0.7, (0.6, 0.95), threshold=0.8, above=True, meaning="m")[0] == "not reproduced"
    assert verdicts.threshold_rule(0.2, (0.1, 0.3), threshold=0.5, above=False, meaning="m")[0] == "reproduced"


# --------------------------------------------------------------------------- 05 invariance


def test_retained_caps_at_one_and_needs_the_identity():
    amounts = np.array([-20.0, 0.0, 20.0])
    assert invariance.retained("translate", amounts, np.array([0.4, 0.8, 1.0])) == pytest.approx((0.5 + 1.0) / 2)
    assert invariance.retained("scale", np.array([1.0, 1.5]), np.array([0.5, 0.25])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="identity"):
        invariance.retained("scale", np.array([1.2, 1.5]), np.array([0.5, 0.25]))


def test_quick_ranges_keep_the_span():
    quick, full = invariance.quick_ranges(), invariance.quick_ranges(full=True)
    for kind in invariance.KINDS:
        assert quick[kind][0] == full[kind][0] and len(quick[kind]) < len(full[kind])
    assert 0 in quick["translate"] and 1.0 in quick["scale"]


def _curves(kind, amounts, d_low, d_high, p):
    return invariance.InvarianceCurves(kind, np.asarray(amounts, float), np.asarray(d_low, float),
                                       np.asarray(d_high, float), np.asarray(p, float), "low", "high")  # fmt: skip


def test_fig5_claims_on_curves_built_to_reproduce_the_paper():
    """Layer 1 saturates at once, layer 7 grows linearly, p stays for shifts and zooms and collapses
    under rotation except for the symmetric photo: every verdict must be "reproduced" or, for the
    one-against-four symmetric test, "partly reproduced" with the reason saying why."""
    names = ["a", "b", "c", "d", "sym"]
    rng = np.random.default_rng(0)
    shift, zoom, angle = np.linspace(-60, 60, 7), np.linspace(1, 1.8, 5), np.linspace(0, 330, 12)
    curves = {}
    for kind, amounts, t in [("translate", shift, np.abs(shift) / 60), ("scale", zoom, zoom - 1),
                             ("rotate", angle, np.minimum(angle, 360 - angle) / 180)]:  # fmt: skip
        low = [np.where(t > 0, 1.0, 0.0) * (1 + 0.01 * rng.random()) for _ in names]
        high = [t * (1 + 0.1 * k) for k in range(len(names))]
        if kind == "rotate":
            p = [np.where(t > 0, 0.1, 0.9) for _ in names[:-1]] + [np.full(t.shape, 0.9)]
        else:
            p = [np.full(t.shape, 0.9) for _ in names]
        curves[kind] = _curves(kind, amounts, low, high, p)
    claims = {c.id: c for c in invariance.fig5_claims(curves, names, ["sym"])}
    for kind in invariance.KINDS:
        assert claims[f"05.layer1_vs_layer7.{kind}"].verdict == "reproduced"
    for kind in ("translate", "scale"):
        assert claims[f"05.quasi_linear.{kind}"].verdict == "reproduced"
        assert claims[f"05.output_stable.{kind}"].value == pytest.approx(1.0)
    assert claims["05.rotation_not_invariant"].verdict == "reproduced"
    sym = claims["05.rotation_symmetric_exception"]
    assert sym.verdict == "partly reproduced" and "cannot be significant" in sym.reason and sym.value > 0
    assert all(c.paper and c.paper.startswith("zf2014.fig5") for c in claims.values())
    with pytest.raises(ValueError, match="symmetric"):
        invariance.fig5_claims(curves, names, ["nope"])
    for name in names[:-1]:  # every photo has its own rotation claim, judged by its declared symmetry
        kept = claims[f"05.rotation_kept.{name}"]
        assert kept.verdict == "reproduced" and kept.value == pytest.approx(0.1 / 0.9)
        assert kept.paper == "zf2014.fig5.rotation_not_invariant"
    own = claims["05.rotation_kept.sym"]
    assert own.verdict == "reproduced" and own.value == pytest.approx(1.0) and own.ci == pytest.approx((1.0, 1.0))
    assert own.paper == "zf2014.fig5.rotation_symmetric_exception"
    # a round object left among the asymmetric photos keeps its probability: the verdict says so
    undeclared = {c.id: c for c in invariance.fig5_claims(curves, names, [])}["05.rotation_kept.sym"]
    assert undeclared.verdict == "not reproduced" and "not invariant" in undeclared.reason


# --------------------------------------------------------------------------- 08 correspondence


def test_pair_matrix_agrees_with_the_ordered_pair_mean():
    eps = torch.randn(4, 50) * (torch.rand(4, 50) > 0.3)
    m = correspondence.pair_disagreement(eps)
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 0)
    assert correspondence.upper_pairs(m).size == 6
    assert correspondence.upper_pairs(m).mean() == pytest.approx(correspondence.consistency(eps)[0], abs=1e-6)


def test_independent_chance_by_hand():
    fair = torch.tensor([[1.0, -1.0], [1.0, 1.0]])  # p(+) = 1/2 and 1 → 1 − 1/2 = 1/2
    assert correspondence.independent_chance(fair) == pytest.approx(0.5)
    with_zeros = torch.tensor([[0.0, 0.0, 1.0, -1.0], [0.0, 1.0, 1.0, 1.0]])
    # image 0: (−, 0, +) = (1/4, 1/2, 1/4); image 1: (0, 1/4, 3/4) → 1 − (1/8 + 3/16) = 11/16
    assert correspondence.independent_chance(with_zeros) == pytest.approx(11 / 16)


def _synthetic(part_delta: float, random_delta: float, n_pairs: int = 10, draws: int = 4):
    rng = np.random.default_rng(1)
    noise = lambda: rng.normal(0, 0.005, n_pairs)  # noqa: E731
    layers = {"layer 5": "l5", "layer 7": "l7"}
    parts = {p: {k: part_delta + noise() for k in layers} for p in ("right_eye", "left_eye", "nose")}
    random = {k: np.stack([random_delta + noise() for _ in range(draws)]) for k in layers}
    return correspondence.Correspondence(layers, parts, random, {k: 0.5 for k in layers}, {}, draws)


def test_table1_claims_call_a_part_below_random_only_when_the_test_says_so():
    below = {c.id: c for c in correspondence.table1_claims(_synthetic(0.30, 0.40))}
    assert below["08.delta.nose.layer5"].verdict == "reproduced" and below["08.delta.nose.layer5"].p_value < 0.01
    assert (
        below["08.parts_below_random.layer5"].value == 3
        and below["08.parts_below_random.layer5"].verdict == "reproduced"
    )
    assert below["08.delta.random.layer5"].verdict == "not comparable"
    assert below["08.delta.nose.layer5"].paper == "zf2014.table1.nose.layer5"
    same = {c.id: c for c in correspondence.table1_claims(_synthetic(0.40, 0.40))}
    assert same["08.parts_below_random.layer5"].value < 3
    assert all(same[f"08.delta.{p}.layer5"].p_value > 0.01 for p in ("right_eye", "left_eye", "nose"))
    above = {c.id: c for c in correspondence.table1_claims(_synthetic(0.45, 0.40))}
    assert above["08.delta.nose.layer7"].verdict == "not reproduced"
    assert above["08.parts_below_random.layer5"].verdict == "not reproduced"


def test_correspondence_on_the_faces(mobilenet):
    faces = correspondence.load_part_images(224)
    x = mobilenet.preprocess.normalize(faces.images)
    res = correspondence.correspondence(mobilenet, x, faces, draws=2)
    assert res.random["layer 5"].shape == (2, 10) and set(res.examples) == {"right_eye", "left_eye", "nose", "random"}
    assert all(0 < v["layer 7"].mean() < 1 for v in res.parts.values())
    assert 0.3 < res.chance["layer 5"] < 0.7


# --------------------------------------------------------------------------- 07 occlusion


def _occlusion_result(prob, top, target=1, size=4, stride=4):
    prob, top = torch.as_tensor(prob, dtype=torch.float32), torch.as_tensor(top)
    gy, gx = prob.shape
    return OcclusionResult(
        prob=prob,
        top_class=top,
        top_prob=prob,
        feature_sum=prob,
        ys=[i * stride for i in range(gy)],
        xs=[j * stride for j in range(gx)],
        size=(size, size),
        stride=(stride, stride),
        fill=0.0,
        target=target,
        base_prob=0.9,
        layer="l",
        channel=0,
        base_feature_sum=1.0,
    )


def test_windows_on_the_object_and_disjoint_windows():
    res = _occlusion_result(torch.ones(4, 4), torch.ones(4, 4, dtype=torch.long), size=8, stride=4)
    mask = occlusion_effects.on_object(res, (0, 10, 0, 10))  # centres at 4, 8, 12, 16
    assert mask.sum() == 4 and mask[:2, :2].all()
    keep = occlusion_effects.disjoint(res)
    assert keep.sum() == 4 and keep[::2, ::2].all()


def test_object_claims_see_a_drop_and_a_switch_on_the_object():
    prob = torch.full((6, 6), 0.9)
    prob[:3, :3] = 0.1  # the object: the top-left quarter (box 0..12 px, windows of 4 px)
    top = torch.ones(6, 6, dtype=torch.long)
    top[:3, :3] = 7
    res = _occlusion_result(prob, top)
    claims = {c.id: c for c in occlusion_effects.object_claims("img", res, (0, 12, 0, 12), label_switch=True)}
    drop, switch = claims["07.object_drop.img"], claims["07.label_switch.img"]
    assert drop.value == pytest.approx(0.8) and drop.verdict == "reproduced" and drop.p_value < 0.01
    assert switch.value == 1.0 and switch.verdict == "reproduced" and switch.ci[0] > 0.5
    assert occlusion_effects.switch_class(res, (0, 12, 0, 12)) == 7
    flat = _occlusion_result(torch.full((6, 6), 0.9), torch.ones(6, 6, dtype=torch.long))
    claims = {c.id: c for c in occlusion_effects.object_claims("img", flat, (0, 12, 0, 12), label_switch=True)}
    assert claims["07.object_drop.img"].verdict == "not reproduced"
    assert claims["07.label_switch.img"].verdict == "not reproduced" and claims["07.label_switch.img"].value == 0


def test_composite_samples_and_object_boxes(mobilenet):
    s = composite.prepare_any("chelsea|coffee", mobilenet.preprocess)
    assert s.tensor.shape == (1, 3, 224, 448) and s.display.shape == (224, 448, 3) and s.name == "chelsea|coffee"
    single = composite.object_box("coffee", 224)
    assert composite.object_box("chelsea|coffee", 224, target=967) == (single[0], single[1], single[2] + 224,
                                                                       single[3] + 224)  # fmt: skip
    with pytest.raises(ValueError, match="label of 0 photos"):
        composite.object_box("chelsea|coffee", 224, target=1)
    with pytest.raises(ValueError, match="composite name"):
        composite.parts("chelsea|")
    assert composite.label_of("coffee") == 967
    with pytest.raises(ValueError, match="none of its photos"):
        composite.label_of("chelsea|coffee", model_top=3)
    scores = torch.zeros(1000)
    scores[967], scores[285] = 2.0, 1.0  # top class 3 is neither photo's: the better-scored own label
    assert composite.label_of("chelsea|coffee", model_top=3, scores=scores) == 967
    assert (
        composite.source_label(["chelsea|coffee", "squirrel"])
        == "chelsea | coffee side by side, squirrel (data/images)"
    )


# --------------------------------------------------------------------------- 10 CAM


class TinyGap(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_identity_gap_is_rounding_on_a_gap_network():
    net = TinyGap().eval()
    x = torch.randn(3, 3, 10, 10)
    assert cam_evidence.identity_gap(net, x, target="top1", layer="features.1") < 1e-5


def test_two_objects_on_the_real_model(mobilenet):
    from zfhelpers.data.images import prepare

    samples = {n: prepare(n, mobilenet.preprocess) for n in ("chelsea", "coffee")}
    res = cam_evidence.two_objects(mobilenet, samples, method="gradcam")
    assert res.composites == [("chelsea", "coffee"), ("coffee", "chelsea")] and res.shares.shape == (2, 2)
    assert (res.shares > 0.7).all()  # each class's Grad-CAM sits on its own photo
    claim = cam_evidence.two_objects_claim(res)
    assert claim.chance == 0.5 and claim.verdict == "reproduced" and claim.ci[0] > 0.5


def _steps(rhos_after_fc):
    maps = torch.zeros(len(rhos_after_fc), 2, 2)
    return [RandomizationStep("none", 1.0, 1.0, maps, (1.0,) * len(rhos_after_fc)),
            RandomizationStep("fc", float(np.mean(rhos_after_fc)), 0.0, maps, tuple(rhos_after_fc))]  # fmt: skip


def test_randomisation_claims_follow_the_papers_direction():
    lm = cam_evidence.adapt(TinyGap())
    claims = {c.id: c for c in cam_evidence.randomization_claims(lm, {
        "gradcam": _steps([0.0, 0.1, -0.1, 0.05]), "guided_gradcam": _steps([0.0, 0.1, -0.1, 0.05]),
        "gradcampp": _steps([0.9, 0.95, 0.92, 0.93])})}  # fmt: skip
    assert claims["10.randomisation.gradcam"].verdict == "reproduced"  # changes, as Adebayo et al. report
    assert claims["10.randomisation.guided_gradcam"].verdict == "not reproduced"  # they report it survives
    pp = claims["10.randomisation.gradcampp"]
    assert pp.verdict == "not comparable" and pp.paper is None and "not evidence" in pp.reason


def test_per_image_similarity_averages_to_the_summary():
    a, b = torch.rand(3, 8, 8), torch.rand(3, 8, 8)
    rhos, ssims = similarity_per_image(a, b)
    assert len(rhos) == 3 and similarity(a, b) == pytest.approx((np.mean(rhos), np.mean(ssims)))


# --------------------------------------------------------------------------- figure builders


def test_occlusion_and_correspondence_figures_draw(mobilenet):
    from zfhelpers.notebook import correspondence_figures, occlusion_figures

    prob = torch.rand(5, 5)
    row = occlusion_effects.OcclusionRow("chelsea", composite.prepare_any("chelsea", mobilenet.preprocess),
                                         _occlusion_result(prob, torch.randint(0, 3, (5, 5)), size=64, stride=40),
                                         (0, 224, 0, 224), {"chelsea": torch.randn(3, 224, 224)}, "guided")  # fmt: skip
    for fig in (occlusion_figures.occlusion_figure([row], mobilenet, layer="head"),
                occlusion_figures.label_switch_figure(row, mobilenet)):  # fmt: skip
        assert len(fig.axes) >= 3
        plt.close(fig)
    res = _synthetic(0.3, 0.4)
    res.examples = {p: torch.zeros(5, 3, 8, 8) for p in ("right_eye", "left_eye", "nose", "random")}
    claims = {c.id: c for c in correspondence.table1_claims(res)}
    fig = correspondence_figures.correspondence_figure(res, torch.zeros(5, 3, 8, 8), mobilenet, claims)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert any("chance" in t.get_text() for legend in legends for t in legend.get_texts())
    plt.close(fig)


def test_explorers_draw_their_opening_view(mobilenet):
    """Each explorer renders on construction without an error (the live widgets are not stored)."""
    from zfhelpers.data.images import load_batch
    from zfhelpers.notebook import cam_figures, invariance_figures, occlusion_figures

    x, samples = load_batch(["chelsea", "coffee"], mobilenet.preprocess)
    explorers = [
        invariance_figures.invariance_explorer(mobilenet, x, samples, [285, 967]),
        cam_figures.cam_explorer(mobilenet, x, samples, layer="head"),
        occlusion_figures.occlusion_explorer(mobilenet, ["coffee"], size=112, stride=56, fill=0.0, layer="head"),
    ]
    for ex in explorers:
        assert ex.error is None and ex.image.value[:2] == b"\xff\xd8"  # a JPEG
    explorers[0].controls["kind"].value = "scale"
    assert explorers[0].error is None
