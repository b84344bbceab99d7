"""Fig. 2 crops and projections, Fig. 4 convergence scores, Fig. 6 spectral measurements, and the
committed twins."""

import json
import math

import numpy as np
import pytest
import torch

from zfhelpers.analysis import evolution, scan, top9
from zfhelpers.analysis import spectra as architecture
from zfhelpers.data.display import crop
from zfhelpers.methods.projection import unit_projection
from zfhelpers.methods.receptive import exact_box, receptive_field
from zfhelpers.models import trained
from zfhelpers.models.twins import INPUT_SIZE, make_twin


def _twin_model(arch="zf"):
    """A (random) twin conv stack wrapped as the committed twins are."""
    from zfhelpers.data import fashion
    from zfhelpers.models.layers import features_layers
    from zfhelpers.models.stack import FeatureStack
    from zfhelpers.models.zoo import LoadedModel, ModelSpec, Preprocess

    torch.manual_seed(0)
    model = FeatureStack(make_twin(arch).features).eval().requires_grad_(False)
    spec = ModelSpec(name="t", profile="offline", weights="-", build=lambda: model,
                     layer_table=features_layers, summary="test",
                     preprocess=Preprocess(resize=INPUT_SIZE, crop=INPUT_SIZE, mean=(fashion.MEAN,) * 3,
                                           std=(fashion.STD,) * 3), classifier=False)  # fmt: skip
    return LoadedModel("t", model, spec.layer_table(model), spec.preprocess, None, {}, spec)


def test_crop_pads_outside_the_image():
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = crop(img, (-1, 2, 2, 6), fill=-1)
    assert out.shape == (3, 4)
    assert (out[0] == -1).all() and (out[:, 2:] == -1).all()
    assert np.array_equal(out[1:, :2], img[0:2, 2:4])


def test_project_topk_reprojects_the_scanned_units_inside_their_receptive_fields():
    lm = _twin_model()
    x = torch.randint(0, 256, (24, 28, 28), dtype=torch.uint8)
    from zfhelpers.data import fashion

    top = scan.scan_topk(lm, x, layer="relu2", k=3, batch_size=8, prepare=fashion.to_model_input, progress=False)
    tp = top9.project_topk(lm, top, [0, 5], x, prepare=fashion.to_model_input)
    assert torch.allclose(tp.reprojected, tp.values, rtol=1e-4, atol=1e-6)
    from zfhelpers.methods.receptive import stack_for_layer

    stack = stack_for_layer(lm, "relu2")
    rf = receptive_field(stack)
    assert tp.projections.shape == (2, 3, rf.size[0], rf.size[1], 3)
    # the projection is zero (grey 0.5) outside the exact receptive field of the unit

    c, j = 5, 0
    pos = top.positions[c, j]
    p = unit_projection(lm, fashion.to_model_input(x[top.images[c, j : j + 1]]), layer="relu2", channels=[c],
                        position=pos[None, None])
    y0, y1, x0, x1 = exact_box(stack, (INPUT_SIZE, INPUT_SIZE), *pos.tolist())
    outside = p.maps[0, 0].abs().sum(0).clone()
    outside[y0:y1, x0:x1] = 0
    assert outside.max() == 0 and p.maps[0, 0].abs().sum() > 0


def test_convergence_scores_on_synthetic_scans():
    def top(images):
        images = torch.tensor(images)
        return scan.TopK(torch.ones(images.shape, dtype=torch.float), images,
                         torch.zeros(*images.shape, 2, dtype=torch.long), "l")  # fmt: skip

    tops = {1: {"l": top([[1, 2, 3], [4, 5, 6]])}, 2: {"l": top([[1, 7, 8], [9, 5, 4]])},
            3: {"l": top([[1, 2, 8], [9, 4, 5]])}}  # fmt: skip
    w = {e: {"l": torch.tensor([[1.0, 0.0], [0.0, 1.0]])} for e in tops}
    w[1]["l"] = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    s = evolution.convergence(tops, w)
    assert s["top1_same"]["l"] == [0.5, 1.0, 1.0]
    # epoch 1 vs final: {1,2,3}∩{1,2,8} = 2 → 2/4; {4,5,6}∩{9,4,5} = 2 → 2/4
    assert s["top9_overlap"]["l"][0] == pytest.approx(0.5)
    assert s["top9_overlap"]["l"][-1] == pytest.approx(1.0)
    assert s["filter_cosine"]["l"] == pytest.approx([0.5, 1.0, 1.0])
    assert evolution.settled_epoch([1, 2, 3], s["top1_same"]["l"], 0.9) == 2
    assert evolution.settled_epoch([1, 2, 3], [1.0, 0.2, 0.1], 0.5) is None


def test_radial_power_peaks_at_a_sinusoids_frequency():
    f = 0.25
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    maps = torch.stack([torch.cos(2 * math.pi * f * xx), torch.cos(2 * math.pi * (1 / 16) * yy)])
    freqs, spec = architecture.radial_power(maps, size=32)
    assert torch.allclose(spec.sum(1), torch.ones(2))
    assert freqs[spec[0].argmax()] == pytest.approx(f) and freqs[spec[1].argmax()] == pytest.approx(1 / 16)
    bands = architecture.band_fractions(freqs, spec)
    assert bands == {"low": 0.5, "mid": 0.0, "high": 0.5}
    above = architecture.energy_above(maps, 0.125, size=32)
    assert above[0] > 0.99 and above[1] < 0.01


def test_dead_units_and_grey_filters():
    dead = architecture.dead_units(torch.tensor([0.0, 1.0, 2.0, 1.5, 0.01]))
    assert dead.tolist() == [True, False, False, False, True]
    w = torch.randn(4, 3, 5, 5)
    assert torch.allclose(architecture.grey_filters(w), w.sum(1))
    assert torch.allclose(architecture.filter_rms(w), w.pow(2).flatten(1).mean(1).sqrt())


def test_committed_twins_load_with_verified_checksums(tmp_path, monkeypatch):
    info = trained.manifest()
    assert set(info) == set(trained.VARIANTS)
    for variant in trained.VARIANTS:
        assert trained.epochs(variant) == sorted(trained.EXPORTED_EPOCHS[variant])
        lm = trained.load_twin(variant)
        top, last = ("relu4_2", 6) if variant == "parts_vgg" else ("relu5", 10)
        assert lm.channels(top) == 64 and f"epoch {last}" in lm.label
        chance = 0.52 if variant == "parts_vgg" else 0.1
        assert trained.history(variant)[-1]["test_accuracy"] > chance + 0.3  # trained, far from chance
    # a corrupted file is refused
    import shutil

    shutil.copytree(trained.twins_dir(), tmp_path / "twins")
    monkeypatch.setenv("ZFHELPERS_DATA_DIR", str(tmp_path))
    path = tmp_path / "twins" / info["zf"]["epochs"]["10"]["file"]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sha256"):
        trained.load_twin("zf")
    with pytest.raises(ValueError, match="valid: zf, alexnet, zf_norenorm"):
        trained.load_twin("vgg")
    with pytest.raises(ValueError, match="valid epochs"):
        trained.load_twin("alexnet", 1)
    assert json.loads((tmp_path / "twins" / "manifest.json").read_text())["zf"]["config"]["renorm_radius"] == 0.1


def test_export_writes_small_float16_stacks(tmp_path, monkeypatch):
    """Train one tiny epoch on random data, export, load back: equal to the float16 weights."""
    from zfhelpers.models.training import TrainConfig, train

    cfg = TrainConfig(arch="alexnet", epochs=1, schedule=(1,), batch_size=8)
    monkeypatch.setitem(trained.VARIANTS, "alexnet", cfg)
    monkeypatch.setitem(trained.EXPORTED_EPOCHS, "alexnet", (1,))
    monkeypatch.setattr(trained, "EPOCHS", 1)
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(16, 3, INPUT_SIZE, INPUT_SIZE, generator=g), torch.randint(0, 10, (16,), generator=g))
    out = train(cfg, tmp_path / "work", data, data, progress=False)
    monkeypatch.setenv("ZFHELPERS_DATA_DIR", str(tmp_path / "data"))
    (path,) = trained.export("alexnet", tmp_path / "work")
    assert path.stat().st_size < 600_000
    lm = trained.load_twin("alexnet", 1)
    for k, v in lm.model.state_dict().items():
        assert torch.equal(v, out["model"].state_dict()[k].half().float()), k


def test_scan_sets_refuse_unknown_names():
    from zfhelpers.data import scansets as datasets

    with pytest.raises(ValueError, match="valid: fashion_test, fashion_train, imagenette_val"):
        datasets.load_scan_set("cifar10", None)
