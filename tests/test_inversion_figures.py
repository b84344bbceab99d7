"""Notebook 11/12 figures and claims from small synthetic results: every builder draws what it is
given, the claims carry their statistics, and a saved figure keeps its provenance footer without
a blank margin (the footer wraps instead of widening the image)."""

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from zfhelpers.inversion import claims
from zfhelpers.inversion.fmi import FMILayer
from zfhelpers.inversion.rmci import RMCILayer
from zfhelpers.inversion.style import StyleComparison
from zfhelpers.notebook import inversion_figures as figures
from zfhelpers.notebook.save import save_figure

matplotlib.use("Agg")
LONG_MODEL = "vgg16_hed_avgpool (VGG16 conv stack, ImageNet-init, fine-tuned for HED edges; no classifier; " * 2


def fake_fmi(layers=("relu1_2", "relu3_2", "relu5_2"), k=5, size=16) -> dict[str, FMILayer]:
    g = torch.Generator().manual_seed(0)
    out = {}
    for depth, layer in enumerate(layers):
        # filter j's texture: a colour tint that is the same on both photos, plus noise
        tint = torch.rand(k, 1, 1, 3, generator=g)
        fmi = (0.5 * tint + 0.1 * depth + 0.2 * torch.rand(2, k, size, size, 3, generator=g)).clamp(0, 1)
        plain = torch.rand(2, 1, size, size, 3, generator=g)
        collapsed = torch.zeros(2, k, dtype=torch.bool)
        collapsed[1, k - 1] = depth == 1
        out[layer] = FMILayer(
            layer,
            [2 * j for j in range(k)],  # filter indices, not positions
            ["a", "b"],
            torch.cat([plain, fmi], 1),
            torch.rand(2, k + 1),
            torch.rand(2, k),
            collapsed,
            torch.ones(2, k, dtype=torch.bool),
        )
    return out


def fake_styles() -> StyleComparison:
    layers = ("relu1_1", "relu2_1", "relu3_1")
    errors = {}
    for p in ("starry_night", "scream"):
        errors[p, "content", "pmci"] = torch.tensor([0.9, 0.8, 0.7])
        errors[p, "content", "gatys"] = torch.tensor([0.95, 0.9, 0.85])
        errors[p, "pmci", "pmci"] = torch.tensor([0.1, 0.2, 0.3])
        errors[p, "gatys", "pmci"] = torch.tensor([0.2, 0.3, 0.4])
        errors[p, "pmci", "gatys"] = torch.tensor([0.5, 0.6, 0.7])
        errors[p, "gatys", "gatys"] = torch.tensor([0.15, 0.5, 0.6])
    curve = torch.cat([torch.linspace(1, 0.5, 30), torch.full((30,), 0.5)])
    pairs = [(p, m) for p in ("starry_night", "scream") for m in ("gatys", "pmci")]
    return StyleComparison(
        ["starry_night", "scream"],
        ("gatys", "pmci"),
        layers,
        {pm: torch.rand(16, 16, 3) for pm in pairs},
        {pm: curve for pm in pairs},
        errors,
        60,
    )


def test_fmi_claims_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("ZFHELPERS_FIGURES_DIR", str(tmp_path))
    study = fake_fmi()
    spec, sp = claims.specificity_claim(study, paper_net=False, n_perm=500)
    assert spec.value >= 0.8 and spec.p_value < 0.01 and spec.verdict == "reproduced"  # tints identify filters
    assert spec.chance == 0.2 and spec.n == 30
    depth = {c.id: c for c in claims.depth_claims(study, paper_net=False)}
    assert set(depth) == {
        "11.colour_rise.fmi",
        "11.structure.spectral_entropy",
        "11.structure.coherence",
        "11.colour_rise.beyond_plain",
    }
    for c in depth.values():
        assert c.ci[0] <= c.value <= c.ci[1] and c.verdict in ("partly reproduced", "not comparable")
        assert "1 of 30 FMIs collapsed" in c.reason
    counts = {c.id: c.value for c in claims.collapse_claims(study)}
    assert counts == {"11.collapsed.relu1_2": 0.0, "11.collapsed.relu3_2": 1.0, "11.collapsed.relu5_2": 0.0}
    photos = {n: np.random.default_rng(0).random((16, 16, 3)) for n in ("a", "b")}
    values = claims.texture_values(study)
    for name, fig in {
        "11_grid": figures.fmi_grid(study, photos, title="t"),
        "11_spec": figures.specificity_figure(sp, ("a", "b"), {layer: s.filters for layer, s in study.items()}),
        "11_depth": figures.texture_depth_figure(study, values),
    }.items():
        if name == "11_spec":  # the matrices are labelled with the filters' indices, not 0…K−1
            first = next(iter(study.values()))
            assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [str(f) for f in first.filters]
        assert_footer_fits(fig, name, tmp_path)


def test_style_and_rmci_claims_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("ZFHELPERS_FIGURES_DIR", str(tmp_path))
    cmp = fake_styles()
    cl = {c.id: c for c in claims.style_claims(cmp, paper_net=False)}
    assert cl["12.own_statistic.channel_sums"].value == pytest.approx(-0.1)
    assert cl["12.own_statistic.channel_sums"].p_value < 0.05
    # PMCI closes (0.45+0.3+0.15) of Gatys' (0.8+0.4+0.25) Gram reduction, per painting
    assert cl["12.pmci_share_of_gram_match"].value == pytest.approx(0.9 / 1.45)
    assert (
        cl["12.gatys_converged.scream"].value == pytest.approx(0.0)
        and "converged" in cl["12.gatys_converged.scream"].reason
    )
    g = torch.Generator().manual_seed(0)
    rm = {
        layer: RMCILayer(
            layer,
            ["paper", "release"],
            torch.rand(2, 2, 16, 16, 3, generator=g),
            torch.rand(2, 2),
            torch.tensor([[0.2, 0.1], [0.0, 0.01]]),
            torch.tensor([[0.0, 0.0], [0.5, 0.4]]),
        )
        for layer in ("relu1_1", "relu5_1")
    }
    rc = {c.id: c for c in claims.rmci_claims(rm)}
    assert rc["12.rmci.negative_targets.release"].value == pytest.approx(0.45)
    assert rc["12.rmci.target_reproduced.paper"].value == pytest.approx(0.15)
    photo = np.random.default_rng(0).random((16, 16, 3))
    for name, fig in {
        "12_rmci": figures.rmci_grid(rm, photo, title="t"),
        "12_grid": figures.style_grid(cmp, photo, {p: photo for p in cmp.paintings}, title="t"),
        "12_errors": figures.style_errors_figure(cmp),
    }.items():
        assert_footer_fits(fig, name, tmp_path)


def assert_footer_fits(fig, name, folder):
    """The saved PNG is no wider than the figure plus a small tight-bbox pad: the long provenance
    line wrapped instead of widening the canvas (which leaves a blank margin beside the plots)."""
    width_px = fig.get_figwidth() * 100
    save_figure(
        fig, name, model=LONG_MODEL, data="a, b (data/images), 16x16 px, recipe modern, 5 steps", formats=("png",)
    )
    with Image.open(folder / f"{name}.png") as im:
        assert im.width <= width_px * 1.05, f"{name}: {im.width} px for a {width_px:.0f} px figure"
    matplotlib.pyplot.close(fig)
