"""Code inversion and Feature Map Inversion (Xia et al. 2016): ψ invariants, the loop's recipes,
batching, determinism and resume."""

import pytest
import torch
from torch import nn

from zfhelpers.inversion import codes, invert, invert_code, objectives, style_transfer
from zfhelpers.inversion.optimize import RECIPES, capture_codes
from zfhelpers.inversion.optimize import invert as invert_fn


def tiny_vgg():
    """A VGG-like stack with a LoadedModel's interface (layer names relu1_1 … relu2_1)."""
    from zfhelpers.models.layers import vgg_layers
    from zfhelpers.models.stack import FeatureStack
    from zfhelpers.models.zoo import LoadedModel, ModelSpec, Preprocess

    torch.manual_seed(0)
    f = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(inplace=True),
    )
    model = FeatureStack(f).eval().requires_grad_(False)
    pre = Preprocess(resize=24, crop=24, mean=(0.5,) * 3, std=(1 / 255,) * 3)
    spec = ModelSpec(
        "tiny",
        "offline",
        "tiny test VGG",
        build=lambda: model,
        layer_table=vgg_layers,
        preprocess=pre,
        classifier=False,
    )
    return LoadedModel("tiny", model, vgg_layers(model), pre, None, {}, spec)


def test_feature_map_modification_moves_the_channel_sum_into_k():
    code = torch.rand(3, 6, 4, 5)
    out = codes.feature_map(code, torch.tensor([0, 2, 5]))
    for b, k in enumerate([0, 2, 5]):
        assert torch.allclose(out[b, k], code[b].sum(0))
        assert out[b, [c for c in range(6) if c != k]].abs().sum() == 0
    with pytest.raises(ValueError, match="valid: 0..5"):
        codes.feature_map(code, 6)


@pytest.mark.parametrize("variant", ["paper", "release"])
def test_random_modification_keeps_total_energy_and_spatial_patterns_and_guards_dead_channels(variant):
    code = torch.relu(torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(1)))
    code[:, 3] = 0  # a dead channel
    out = codes.random_modification(code, torch.Generator().manual_seed(0), variant=variant)
    assert torch.isfinite(out).all()
    assert torch.allclose(out.sum((1, 2, 3)), code.sum((1, 2, 3)), rtol=1e-3)
    assert out[:, 3].abs().sum() == 0
    for b in range(2):
        for c in (0, 1, 5):  # each channel is its own pattern times a scalar
            on = code[b, c] > 0
            ratio = out[b, c][on] / code[b, c][on]
            assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-4)
    again = codes.random_modification(code, torch.Generator().manual_seed(0), variant=variant)
    assert torch.equal(out, again)


def test_paper_rmci_keeps_every_on_off_state_and_the_release_does_not():
    code = torch.relu(torch.randn(4, 64, 6, 6, generator=torch.Generator().manual_seed(2)))
    paper = codes.random_modification(code, torch.Generator().manual_seed(0), variant="paper")
    assert torch.equal(paper > 0, code > 0) and (paper >= 0).all()
    release = codes.random_modification(code, torch.Generator().manual_seed(0), variant="release")
    negative = (release.flatten(2).amin(2) < 0).double().mean()
    assert 0.3 < negative < 0.7  # signed N(3, 1000²) rates: about half the channels negative
    with pytest.raises(ValueError, match="valid: paper, release"):
        codes.random_modification(code, variant="authors")


def test_purposeful_modification_takes_style_means_in_rank_order():
    content, style = torch.rand(1, 4, 3, 3), torch.rand(1, 4, 5, 5)
    style[0] += torch.tensor([3.0, 0.0, 1.0, 2.0])[:, None, None]
    out = codes.purposeful(content, style)
    assert torch.allclose(out.flatten(2).mean(2), style.flatten(2).mean(2), atol=1e-6)
    # the most energetic content channel lands on the most energetic style channel (0)
    top = content.flatten(2).sum(2).argmax()
    assert torch.allclose(out[0, 0] - out[0, 0].mean(), content[0, top] - content[0, top].mean(), atol=1e-6)
    with pytest.raises(ValueError, match="valid: none, feature_map, random, purposeful"):
        codes.modify(content, "bogus")


def test_style_losses_have_the_authors_gradients():
    phi = torch.rand(1, 5, 4, 3, requires_grad=True)
    s, a = torch.rand(1, 5), torch.rand(1, 5, 5)
    c, m = 5, 12
    (g,) = torch.autograd.grad(objectives.channel_sum_style_loss(phi, s).sum(), phi)
    expected = ((phi.flatten(2).sum(2) - s) / (c * m))[..., None, None].expand_as(phi)
    assert torch.allclose(g, expected, atol=1e-6)
    (g,) = torch.autograd.grad(objectives.gram_style_loss(phi, a).sum(), phi)
    f = phi.flatten(2)
    ga = f @ f.transpose(1, 2) - a
    sym = (ga + ga.transpose(1, 2)) / 2  # the Gram target here is not symmetric; the code's formula assumes it is
    assert torch.allclose(g.flatten(2), (sym @ f) / (c * c * m), atol=1e-5)


def smooth_image(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(
        torch.rand(1, 3, 6, 6, generator=g) * 255 - 127, size=(24, 24), mode="bilinear"
    )


# Thresholds on the relative code error ‖Φ(x*) − Φ(x)‖ / ‖Φ(x)‖ after 300 steps (measured: modern
# 0.06–0.07, authors 0.17–0.25: their learning rate has decayed to 0.004 by then). Jitter is off:
# one pixel is a large shift on a 24-pixel image.
@pytest.mark.parametrize(("recipe", "threshold", "layer"), [("modern", 0.1, "relu2_1"), ("authors", 0.3, "relu1_2")])
def test_inverting_an_unmodified_code_recovers_it(recipe, threshold, layer):
    lm = tiny_vgg()
    rec = RECIPES[recipe].with_(max_steps=300, tol=None, jitter=0)
    res = invert_code(lm, smooth_image(), layer=layer, mode="none", recipe=rec, progress=False)
    assert res.error.item() < threshold
    assert res.display.shape == (1, 24, 24, 3) and 0 <= res.display.min() and res.display.max() <= 1


def test_batched_inversion_equals_one_at_a_time_and_repeats_exactly():
    lm = tiny_vgg()
    x = torch.rand(1, 3, 24, 24) * 255 - 127
    recipe = RECIPES["modern"].with_(max_steps=15, jitter=0)
    batch = invert_code(lm, x, layer="relu2_1", mode="feature_map", channels=[0, 3, 7], recipe=recipe, progress=False)
    again = invert_code(lm, x, layer="relu2_1", mode="feature_map", channels=[0, 3, 7], recipe=recipe, progress=False)
    assert torch.equal(batch.images, again.images)
    with torch.no_grad():
        code = capture_codes(lm, x, ["relu2_1"])["relu2_1"]
    x0 = batch.history  # noqa: F841  (history is recorded per step)
    from zfhelpers.inversion.param import uniform_init

    start = uniform_init((3, 3, 24, 24), torch.Generator().manual_seed(0), recipe.init_scale)
    for i, k in enumerate([0, 3, 7]):
        one = invert_fn(lm, {"relu2_1": codes.feature_map(code, k)}, recipe, x0=start[i : i + 1], progress=False)
        assert torch.allclose(one.images[0], batch.images[i], atol=1e-3, rtol=1e-4)


def test_authors_stopping_rule_is_per_image_and_resume_matches(tmp_path):
    lm = tiny_vgg()
    x = torch.rand(1, 3, 24, 24) * 255 - 127
    recipe = RECIPES["authors"].with_(max_steps=60, tol=0.02)
    full = invert_code(lm, x, layer="relu1_2", mode="random", draws=3, recipe=recipe, progress=False)
    assert (full.steps < 60).any()  # the relative-change rule stopped some images early
    ck = tmp_path / "inv.pt"
    from zfhelpers.inversion.param import uniform_init

    with torch.no_grad():
        code = capture_codes(lm, x, ["relu1_2"])["relu1_2"]
    draws = code.expand(3, -1, -1, -1).contiguous()
    target = {"relu1_2": codes.random_modification(draws, torch.Generator().manual_seed(0))}
    x0 = uniform_init((3, 3, 24, 24), torch.Generator().manual_seed(0), recipe.init_scale)
    whole = invert_fn(lm, target, recipe, x0=x0, progress=False)
    assert torch.equal(whole.images, full.images)
    invert_fn(lm, target, recipe, x0=x0, progress=False, checkpoint=ck, stop_after=7)
    resumed = invert_fn(lm, target, recipe, x0=x0, progress=False, checkpoint=ck)
    assert torch.equal(resumed.images, whole.images) and torch.equal(resumed.steps, whole.steps)


def test_a_stale_inversion_checkpoint_is_refused(tmp_path, capsys):
    """A checkpoint written for other targets or other weights is not resumed: the run starts afresh
    (same result as without checkpoint) and says why."""
    lm = tiny_vgg()
    x = torch.rand(1, 3, 24, 24) * 255 - 127
    recipe = RECIPES["modern"].with_(max_steps=12)
    with torch.no_grad():
        code = capture_codes(lm, x, ["relu1_2"])["relu1_2"]
    ck = tmp_path / "inv.pt"
    invert_fn(lm, {"relu1_2": code}, recipe, image_shape=(24, 24), progress=False, checkpoint=ck, stop_after=5)
    other = {"relu1_2": codes.feature_map(code, 0)}
    fresh = invert_fn(lm, other, recipe, image_shape=(24, 24), progress=False)
    got = invert_fn(lm, other, recipe, image_shape=(24, 24), progress=False, checkpoint=ck)
    assert "objective" in capsys.readouterr().err
    assert torch.equal(got.images, fresh.images) and torch.equal(got.steps, fresh.steps)
    with torch.no_grad():  # same targets, changed weights: refused as well
        next(lm.model.parameters()).mul_(1.01)
    invert_fn(lm, other, recipe, image_shape=(24, 24), progress=False, checkpoint=ck)
    assert "differs in: model" in capsys.readouterr().err


def test_style_transfer_runs_both_methods_and_rejects_unknown_ones():
    lm = tiny_vgg()
    content, style = torch.rand(1, 3, 24, 24) * 255 - 127, torch.rand(1, 3, 20, 20) * 255 - 127
    kw = dict(
        content_layer="relu1_2",
        style_layers=["relu1_1", "relu2_1"],
        progress=False,
        recipe=RECIPES["modern"].with_(max_steps=20),
    )
    for method in ("pmci", "gatys"):
        res = style_transfer(lm, content, style, method, **kw)
        assert res.history[0][0] > res.history[-1][0]  # the loss went down
    with pytest.raises(ValueError, match="valid: pmci, gatys"):
        style_transfer(lm, content, style, "adain", **kw)


def test_hooks_are_removed_even_when_a_layer_is_missing():
    lm = tiny_vgg()
    with pytest.raises(ValueError):
        capture_codes(lm, torch.zeros(1, 3, 24, 24), ["relu9_9"])
    assert all(not m._forward_hooks for m in lm.model.modules())
    with pytest.raises(ValueError, match="valid: authors, modern"):
        invert(lm, {"relu1_1": torch.zeros(1, 8, 24, 24)}, "lbfgs", image_shape=(24, 24))


def test_texture_metrics_on_known_images():
    from zfhelpers.analysis import texture

    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    stripes = (0.5 + 0.5 * torch.cos(2 * torch.pi * xx / 4))[None, ..., None].expand(1, 32, 32, 3)
    grey = torch.full((1, 32, 32, 3), 0.5)
    red = grey.clone()
    red[..., 0] = 1.0
    noise = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    assert texture.colourfulness(grey).item() == pytest.approx(0.0, abs=1e-4)
    assert texture.colourfulness(red).item() == pytest.approx(0.3 * (127.5**2 + 63.75**2) ** 0.5, rel=1e-4)
    assert texture.colourfulness(stripes).item() < 1e-3  # grey stripes have no colour
    assert texture.coherence(stripes).item() > 0.99
    assert texture.coherence(noise).item() < 0.5
    assert texture.spectral_entropy(stripes).item() < 0.3 < texture.spectral_entropy(noise).item()
    with pytest.raises(ValueError, match="B×H×W×3"):
        texture.colourfulness(torch.zeros(3, 8, 8))


def test_avg_pooled_copy_leaves_the_original_alone():
    lm = tiny_vgg()
    avg = lm.avg_pooled()
    assert any(isinstance(m, nn.AvgPool2d) for m in avg.model.modules())
    assert not any(isinstance(m, nn.AvgPool2d) for m in lm.model.modules())
    assert avg.layers == lm.layers and "average pools" in avg.label
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        a, m = capture_codes(avg, x, ["relu2_1"])["relu2_1"], capture_codes(lm, x, ["relu2_1"])["relu2_1"]
    assert a.shape == m.shape and not torch.equal(a, m)


# --------------------------------------------------------------------------- FMI study, RMCI, styles
def test_collapse_is_a_filter_firing_less_on_its_fmi_than_on_the_photo():
    from zfhelpers.inversion.fmi import collapsed

    photo = torch.zeros(3, 4, 3, 3)
    photo[:, 1, 1, 1], photo[:, 2, 0, 0] = 2.0, 1.0
    result = torch.zeros(3, 4, 3, 3)
    result[0, 1, 0, 0] = 2.5  # filter 1 fires more on its FMI than on the photo: engaged
    result[1, 0] = 3.0  # image 1: other channels fire, filter 2 is silent
    result[2, 1] = 1.5  # filter 1 fires everywhere, but below its peak on the photo
    assert collapsed(result, photo, [1, 2, 1]).tolist() == [False, True, True]


def test_fmi_study_picks_filters_on_the_photos_and_inverts_them_as_one_batch(tmp_path):
    from zfhelpers.inversion import fmi

    lm = tiny_vgg()
    x = torch.cat([smooth_image(1), smooth_image(2)])
    with torch.no_grad():
        code = capture_codes(lm, x, ["relu2_1"])["relu2_1"]
    live = [k for k in range(code.shape[1]) if bool((code[:, k].flatten(1).amax(1) > 0).all())]
    ks = fmi.common_live_filters(lm, x, layer="relu2_1", n=3)
    assert ks == live[:3]
    with pytest.raises(ValueError, match="fire on every image"):
        fmi.common_live_filters(lm, x, layer="relu2_1", n=len(live) + 1)
    rec = RECIPES["modern"].with_(max_steps=8, jitter=0)
    study = fmi.fmi_study(lm, x, layers=["relu2_1"], n_filters=3, names=["a", "b"], recipe=rec, progress=False,
                          checkpoint_dir=tmp_path)  # fmt: skip
    s = study["relu2_1"]
    assert s.filters == ks and s.display.shape == (2, 4, 24, 24, 3) and s.collapsed.shape == (2, 3)
    assert s.fires_on_content.all() and s.names == ["a", "b"]
    # element (image 1, filter j) is the FMI of filter j on image 1: the same as inverting it alone
    from zfhelpers.inversion.param import uniform_init

    start = uniform_init((8, 3, 24, 24), torch.Generator().manual_seed(0), rec.init_scale)
    one = invert_fn(lm, {"relu2_1": codes.feature_map(code[1:], ks[2])}, rec, x0=start[7:8], progress=False)
    assert torch.allclose(one.display[0], s.fmi[1, 2], atol=1e-3)
    assert list(tmp_path.glob("fmi_*.pt"))  # resumable checkpoint written
    assert "relu2_1: filters" in fmi.summary(study)


def test_rmci_layer_inverts_both_variants_and_counts_negative_targets():
    from zfhelpers.inversion.rmci import rmci_layer

    lm = tiny_vgg()
    res = rmci_layer(lm, smooth_image(), layer="relu1_2", draws=2, recipe=RECIPES["modern"].with_(max_steps=5),
                     progress=False)  # fmt: skip
    assert res.variants == ["paper", "release"] and res.display.shape == (2, 2, 24, 24, 3)
    assert (res.negative[0] == 0).all() and (res.negative[1] > 0).all()


def test_compare_styles_batches_methods_and_measures_both_statistics():
    from zfhelpers.inversion import style

    lm = tiny_vgg()
    content, painting = smooth_image(1), smooth_image(3)
    kw = dict(layers=["relu1_1", "relu2_1"], content_layer="relu1_2", progress=False)
    cmp = style.compare_styles(lm, content, {"p": painting}, recipe=RECIPES["modern"].with_(max_steps=30), **kw)
    assert cmp.steps == 30 and set(cmp.display) == {("p", "pmci"), ("p", "gatys")}
    for m in ("pmci", "gatys"):
        curve = cmp.curves["p", m]
        assert curve[-1] < curve[0]  # each method lowers its own statistic
    # the errors are the package's relative errors, and the painting matches itself exactly
    errs = style.statistic_errors(lm, torch.cat([painting, content]), painting, kw["layers"])
    assert errs["gatys"][0].abs().max() < 1e-6 and errs["pmci"][0].abs().max() < 1e-6
    assert torch.allclose(errs["gatys"][1], cmp.errors["p", "content", "gatys"], atol=1e-6)
    single = style.style_transfer(lm, content, painting, "gatys", style_layers=kw["layers"], content_layer="relu1_2",
                                  recipe=RECIPES["modern"].with_(max_steps=30), progress=False)  # fmt: skip
    assert torch.allclose(single.display[0], cmp.display["p", "gatys"], atol=1e-3)  # batching changes nothing
    assert style.style_layers("paper")[-1] == "relu5_1" and style.style_layers("release")[-1] == "relu4_1"


def test_descriptor_and_specificity_on_textures_of_known_identity():
    from zfhelpers.analysis import texture

    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    g = torch.Generator().manual_seed(0)

    def stripes(angle, colour, noise):
        wave = 0.5 + 0.4 * torch.cos(2 * torch.pi * (xx * torch.cos(angle) + yy * torch.sin(angle)) / 5)
        img = wave[..., None] * torch.tensor(colour) + noise * torch.rand(32, 32, 3, generator=g)
        return img.clamp(0, 1)

    filters = [(0.0, (1.0, 0.3, 0.3)), (0.8, (0.3, 1.0, 0.3)), (1.6, (0.3, 0.3, 1.0)), (2.4, (0.8, 0.8, 0.2))]
    photos = torch.stack([torch.stack([stripes(torch.tensor(a), c, n) for a, c in filters]) for n in (0.05, 0.15)])
    d = texture.descriptor(photos[0])
    assert d.shape[:2] == (4, 3) and torch.allclose(d.sum(-1), torch.ones(4, 3), atol=1e-5)
    dist = texture.descriptor_distance(d, d)
    assert dist.diagonal().abs().max() < 1e-3 and torch.allclose(dist, dist.T, atol=1e-6)
    sp = texture.specificity({"a": photos, "b": photos.flip(0)}, n_perm=2000)
    assert sp.accuracy == 1.0 and sp.p_value < 0.01 and sp.chance == 0.25 and sp.decisions == 16
    same = photos[:, :1].expand(-1, 4, -1, -1, -1) + 0.0 * photos  # one texture for every "filter"
    noisy = (same + 0.1 * torch.rand(same.shape, generator=g)).clamp(0, 1)
    assert texture.specificity({"a": noisy}, n_perm=2000).p_value > 0.05


def test_layer_difference_and_verdict_rule():
    from zfhelpers.analysis import texture
    from zfhelpers.inversion import claims

    value, (lo, hi) = texture.layer_difference([1.0, 2.0, 3.0], [5.0, 6.0, 7.0])
    assert value == 4.0 and 2.0 <= lo <= 4.0 <= hi <= 6.0
    assert claims.verdict(1.0, ci=(0.5, 1.5), what="x", paper_net=True)[0] == "reproduced"
    assert claims.verdict(1.0, ci=(-0.5, 1.5), what="x", paper_net=True)[0] == "partly reproduced"
    assert claims.verdict(-1.0, ci=(-1.5, -0.5), what="x", paper_net=True)[0] == "not reproduced"
    assert claims.verdict(1.0, ci=(0.5, 1.5), what="x", paper_net=False)[0] == "partly reproduced"
    assert claims.verdict(-1.0, ci=(-1.5, -0.5), what="x", paper_net=False)[0] == "not comparable"
    assert claims.verdict(0.5, p_value=0.01, what="x", paper_net=False, learned=False)[0] == "reproduced"
    assert claims.verdict(-1.0, ci=(-1.5, -0.5), expected="negative", what="x", paper_net=True)[0] == "reproduced"


def test_setup_respects_the_users_size_and_names_valid_paintings(capsys):
    from zfhelpers.inversion import setup

    inv = setup.load("offline", "", ["chelsea"], size=None, steps=7, paintings=["scream"])
    assert inv.size == setup.DEFAULT_SIZE["offline"] and "profile's default" in capsys.readouterr().out
    assert inv.recipe.max_steps == 7 and inv.photos["chelsea"].tensor.shape[-1] == inv.size
    assert "scream" in inv.stamp()["data"] and "avgpool" in inv.model.name
    assert setup.load("offline", "", ["chelsea"], size=40).size == 40
    with pytest.raises(ValueError, match="valid: scream, starry_night"):
        setup.load("offline", "", ["chelsea"], size=40, paintings=["mona_lisa"])
