"""Few-unit projections from crops equal the full-image projections (the crop is exact, not an
approximation): every unit's receptive field lies inside its crop, and the crop sits on the layer's grid."""

import pytest
import torch

import zfhelpers
from zfhelpers.methods.projection import crop_box, unit_projection
from zfhelpers.methods.receptive import for_layer
from zfhelpers.models.trained import load_twin


@pytest.fixture(scope="module")
def models():
    return {"vgg16_hed": zfhelpers.load_model("vgg16_hed"), "twin_zf": load_twin("zf")}


@pytest.mark.parametrize("name,size,layers", [("vgg16_hed", (1, 3, 93, 130), ["relu2_2", "relu4_3"]),
                                              ("twin_zf", (2, 3, 112, 112), ["relu3", "relu5"])])  # fmt: skip
@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_cropped_projection_equals_the_full_one(models, name, size, layers, rule):
    lm = models[name]
    x = torch.randn(*size, generator=torch.Generator().manual_seed(1))
    for layer in layers:
        full = unit_projection(lm, x, layer=layer, channels=[2, 9], rule=rule, crop=False)
        cut = unit_projection(lm, x, layer=layer, channels=[2, 9], rule=rule, crop=True)
        assert torch.equal(full.positions, cut.positions) and torch.allclose(full.values, cut.values)
        scale = full.maps.abs().amax().clamp_min(1e-12)
        assert float((full.maps - cut.maps).abs().amax() / scale) < 1e-5, (layer, rule)


def test_units_at_the_corners_and_edges(models):
    lm = models["vgg16_hed"]
    x = torch.randn(1, 3, 90, 110, generator=torch.Generator().manual_seed(2))
    acts_hw = zfhelpers.capture_detached(lm, x, ["relu3_3"])["relu3_3"].shape[-2:]
    for y, xx in [(0, 0), (acts_hw[0] - 1, acts_hw[1] - 1), (0, acts_hw[1] - 1), (acts_hw[0] // 2, 3)]:
        pos = torch.tensor([y, xx])
        full = unit_projection(lm, x, layer="relu3_3", channels=[4], position=pos, crop=False)
        cut = unit_projection(lm, x, layer="relu3_3", channels=[4], position=pos, crop=True)
        assert torch.allclose(full.maps, cut.maps, atol=1e-6 * float(full.maps.abs().max().clamp_min(1e-12)))


def test_crop_box_sits_on_the_grid_and_holds_every_field(models):
    lm = models["vgg16_hed"]
    rf = for_layer(lm, "relu3_3")
    box = crop_box(rf, torch.tensor([[5, 7], [9, 2]]), 120, 160)
    assert box[0] % rf.jump[0] == 0 and box[2] % rf.jump[1] == 0
    for y, x in [(5, 7), (9, 2)]:
        y0, y1, x0, x1 = rf.box(y, x, 120, 160)
        assert box[0] <= y0 and y1 <= box[1] and box[2] <= x0 and x1 <= box[3]
