import numpy as np
import pytest
import torch
from PIL import Image

from zfhelpers.data import images as data
from zfhelpers.models.zoo import Preprocess


def test_sample_images_are_committed():
    assert {"chelsea", "coffee", "astronaut", "rocket"} <= set(data.sample_images())


def test_grayscale_rgba_16bit_and_float_inputs(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((8, 8), 100, np.uint8), "L").save(gray)
    assert np.all(np.asarray(data.load_image(gray)) == 100)

    rgba = tmp_path / "rgba.png"
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 255
    arr[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(arr, "RGBA").save(rgba)
    out = np.asarray(data.load_image(rgba))
    assert out.shape == (4, 4, 3) and tuple(out[0, 0]) == (255, 0, 0) and tuple(out[3, 0]) == (255, 255, 255)

    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(deep)
    assert np.all(np.asarray(data.load_image(deep)) == 255)
    half = Image.fromarray(np.full((4, 4), 32768, np.uint16))
    assert np.all(np.abs(data.to_rgb_uint8(half).astype(int) - 128) <= 1)

    flt = Image.fromarray(np.full((4, 4), 0.5, np.float32), "F")
    assert np.all(data.to_rgb_uint8(flt) == 128)


def test_bad_inputs_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not a jpeg")
    with pytest.raises(data.ImageLoadError, match="cannot read image"):
        data.load_image(junk)
    with pytest.raises(data.ImageLoadError, match="not found"):
        data.load_image(tmp_path / "missing.png")
    with pytest.raises(data.ImageLoadError, match="valid names: astronaut, camera, chelsea"):
        data.load_image("dog")


def test_prepare_shapes_and_round_trip():
    pre = Preprocess()
    s = data.prepare("chelsea", pre)
    assert s.tensor.shape == (1, 3, 224, 224) and s.display.shape == (224, 224, 3)
    back = pre.denormalize(s.tensor[0]).permute(1, 2, 0).numpy()
    assert np.allclose(back, s.display, atol=1e-5)
    batch, samples = data.load_batch(["chelsea", "rocket"], pre)
    assert batch.shape == (2, 3, 224, 224) and [x.name for x in samples] == ["chelsea", "rocket"]
    assert torch.equal(batch[0], s.tensor[0])
