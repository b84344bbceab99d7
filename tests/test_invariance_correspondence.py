import numpy as np
import pytest
import torch

from zfhelpers.analysis import correspondence as corr
from zfhelpers.analysis import invariance


def test_transforms_identity_and_direction():
    x = torch.zeros(1, 3, 32, 32)
    x[..., 10, 16] = 1.0
    for kind, identity in [("translate", 0), ("scale", 1.0), ("rotate", 0)]:
        assert torch.allclose(invariance.transform(x, kind, identity), x)
    down = invariance.transform(x, "translate", 5)
    assert down[0, 0, 15, 16] == 1.0  # vertical shift moves content down
    with pytest.raises(ValueError, match="valid: translate, scale, rotate"):
        invariance.transform(x, "shear", 3)


def test_curves_on_the_zoo_model(mobilenet):
    from zfhelpers.data.images import load_batch

    x, _ = load_batch(["chelsea", "orange"], mobilenet.preprocess)
    c = invariance.invariance_curves(mobilenet, x, [285, 950], "rotate", [0, 90, 180], low="stem", high="fc")
    assert c.d_low.shape == (2, 3)
    assert np.allclose(c.d_low[:, 0], 0, atol=1e-2) and np.allclose(c.d_high[:, 0], 0, atol=1e-2)  # resampling only
    assert (c.d_low[:, 1:] > 0).all() and ((c.p_true >= 0) & (c.p_true <= 1)).all()


def test_linearity_and_first_step_measures():
    t = np.linspace(-3, 3, 7)
    assert invariance.linearity_r2(t, 2 * np.abs(t)) == pytest.approx(1.0)
    assert invariance.first_step_fraction(t, np.minimum(np.abs(t), 1)) == pytest.approx(1.0)
    assert invariance.first_step_fraction(np.linspace(1, 2, 5), np.linspace(0, 4, 5)) == pytest.approx(0.25)


def test_sign_disagreement_hand_computed():
    eps = torch.tensor([[1.0, -2.0, 0.0, 3.0], [2.0, 1.0, 0.0, -1.0], [-1.0, -1.0, 5.0, 1.0]])
    # pairs (0,1): signs differ at dims 1,3 → 2/4; (0,2): dims 0,2 → 2/4; (1,2): dims 0,1,2,3 → 4/4
    d = corr.sign_disagreement(eps)
    assert sorted(d.tolist()) == [0.5, 0.5, 0.5, 0.5, 1.0, 1.0]
    mean, std = corr.consistency(eps)
    assert mean == pytest.approx(2 / 3) and std == pytest.approx(float(d.std()))


def test_faces_and_boxes():
    faces = corr.load_part_images(224)
    assert faces.images.shape == (5, 3, 224, 224) and faces.box_size == (54, 54)
    occ = corr.occlude(faces.images, faces.parts["nose"], 0.5)
    y0, y1, x0, x1 = faces.parts["nose"]
    assert torch.all(occ[:, :, y0:y1, x0:x1] == 0.5) and torch.equal(occ[:, :, :y0], faces.images[:, :, :y0])
    boxes = corr.random_boxes(50, faces.box_size, faces.random_region, np.random.default_rng(0))
    ry0, ry1, rx0, rx1 = faces.random_region
    assert all(ry0 <= b[0] and b[1] <= ry1 and rx0 <= b[2] and b[3] <= rx1 for b in boxes)


def test_user_folder_of_annotated_images(tmp_path):
    import json

    from PIL import Image

    names = []
    for i in range(3):
        name = f"img{i}.png"
        Image.fromarray(np.full((100, 200, 3), 40 * i, np.uint8)).save(tmp_path / name)
        names.append(name)
    boxes = [[10, 30, 20, 60]] * 3  # 20×40 in 100×200 pixels → 20×20 after resizing to 100×100
    (tmp_path / "parts.json").write_text(json.dumps({"images": names, "parts": {"nose": boxes, "left_eye": boxes}}))
    faces = corr.load_part_images(100, tmp_path / "parts.json")
    assert faces.images.shape == (3, 3, 100, 100) and faces.box_size == (20, 20)
    assert faces.parts["nose"][0] == (10, 30, 10, 30) and faces.random_region == (0, 100, 0, 100)
    occ = corr.occlude(faces.images, faces.parts["nose"], 1.0)
    assert torch.all(occ[:, :, 10:30, 10:30] == 1.0)
    bad = {"images": names, "parts": {"nose": boxes, "eye": [[0, 5, 0, 5]] * 3}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="share one size"):
        corr.load_part_images(100, tmp_path / "bad.json")
