"""Hostile but realistic inputs (issue #19, part A), through the public API and the CLI.

Every case ends in a correct result or a clear error naming the argument and what is allowed —
never a silently wrong result, a torch internal error or a traceback from the CLI. The CLI cases
run as subprocesses, all at once (each one imports torch)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import zfhelpers as zf
from zfhelpers import cli, parameters
from zfhelpers.checks import InputError
from zfhelpers.data import images as im
from zfhelpers.fingerprint import folder_digest, model_digest, params_digest, tensor_digest
from zfhelpers.io import clean_stale_parts
from zfhelpers.models import weights
from zfhelpers.models.zoo import Preprocess, availability
from zfhelpers.notebook.save import save_figure

PRE = Preprocess(resize=32, crop=32)
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- one image conversion path
def _display(src, **kw):
    return zf.prepare(src, PRE, **kw).display


def test_pil_16bit_grey_keeps_its_level_instead_of_turning_white():
    grey = Image.fromarray(np.full((40, 40), 20000, np.uint16))
    assert grey.mode.startswith("I;16")
    assert np.allclose(_display(grey), 20000 / 65535, atol=1e-6)
    assert np.allclose(_display(np.full((40, 40), 20000, np.uint16)), 20000 / 65535, atol=1e-6)


def test_alpha_is_composited_over_white_for_pil_arrays_and_tensors():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent everywhere but the top rows
    rgba[:4, :, 3] = 255
    for src in (Image.fromarray(rgba, "RGBA"), rgba, torch.from_numpy(rgba).permute(2, 0, 1)):
        out = _display(src)
        assert np.allclose(out[-1, -1], 1.0), type(src)  # transparent → white, not red
    pal = Image.fromarray(rgba, "RGBA").convert("P")
    pal.info["transparency"] = 0
    assert _display(pal).shape == (32, 32, 3)


def test_every_source_kind_gives_the_same_tensor_as_the_file(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(arr).save(path)
    ref = zf.prepare(path, PRE).tensor
    for src in (
        arr,
        Image.open(path),
        torch.from_numpy(arr).permute(2, 0, 1),
        torch.from_numpy(arr).permute(2, 0, 1)[None],
    ):
        assert torch.equal(zf.prepare(src, PRE).tensor, ref), type(src)
    floats = zf.prepare(torch.from_numpy(arr).permute(2, 0, 1).float() / 255, PRE).tensor
    assert torch.allclose(floats, ref, atol=0.05)  # float sources resize in float (no 8-bit rounding)
    grey = zf.prepare(arr[..., 0], PRE).display
    assert np.allclose(grey[..., 0], grey[..., 2])


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "CMYK", "I", "F", "RGBX"])
def test_every_pil_mode_loads(mode):
    base = Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    img = base.convert(mode)
    out = _display(img)
    assert out.shape == (32, 32, 3) and np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize(
    ("src", "match"),
    [
        (np.full((8, 8, 3), 200.0), r"float values in 200..200; .*divide 0..255 data by 255"),
        (np.full((8, 8, 3), np.nan), "NaN"),
        (np.zeros((3, 8, 8), np.uint8), r"transpose\(1, 2, 0\)"),
        (np.zeros((8, 8, 3), np.int64), "dtype int64; use uint8"),
        (np.zeros((0, 0), np.uint8), "empty"),
        (torch.randn(3, 8, 8), "looks normalised"),
        (torch.zeros(8, 8, 3), r"permute\(2, 0, 1\)"),
        (torch.zeros(2, 3, 8, 8), "load_batch"),
        (42, "sample name .* a path, a PIL image, a NumPy array or a tensor"),
        ("", "empty image name; valid names: astronaut"),
        ("dog", "valid names: astronaut"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else v[:20],
)
def test_bad_images_are_refused_by_name(src, match):
    with pytest.raises(InputError, match=match):
        zf.prepare(src, PRE)


def test_load_batch_refuses_empty_and_bare_strings_and_mixes_sources(tmp_path):
    with pytest.raises(InputError, match=r"images is empty; give at least one image, e.g. \['chelsea'\]"):
        zf.load_batch([], PRE)
    with pytest.raises(InputError, match="must be a list, got str"):
        zf.load_batch("chelsea", PRE)
    photo = tmp_path / "mine.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(photo)
    batch, samples = zf.load_batch(["chelsea", str(photo), np.ones((20, 20), np.uint8) * 255], PRE)
    assert batch.shape == (3, 3, 32, 32)
    assert [s.source for s in samples] == ["data/images/chelsea.jpg", str(photo), "array"]


def test_figure_footers_name_the_real_source(tmp_path):
    photo = tmp_path / "holiday.jpg"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(photo)
    _, samples = zf.load_batch(["chelsea", "coffee"], PRE)
    assert im.source_label(samples) == "chelsea, coffee (data/images)"
    mine = zf.prepare(str(photo), PRE)
    assert im.source_label(mine) == str(photo) and "(data/images)" not in im.source_label([samples[0], mine])
    assert im.source_label(zf.prepare(Image.new("RGBA", (9, 9)), PRE)) == "PIL image (RGBA)"


# --------------------------------------------------------------------------- methods: NaN, empty, indices
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


X = torch.rand(1, 3, 16, 16)
NAN = torch.full((1, 3, 16, 16), float("nan"))
L = "features.1"
API_CASES = {
    "gradcam NaN": (lambda m: zf.gradcam(m, NAN, layer=L), "NaN"),
    "unit_projection NaN": (lambda m: zf.unit_projection(m, NAN, layer=L, channels=0), "NaN"),
    "class_projection NaN": (lambda m: zf.class_projection(m, NAN), "NaN"),
    "invert_code NaN": (lambda m: zf.invert_code(m, NAN, layer=L, channels=[0], progress=False), "NaN"),
    "occlusion channels=-1": (lambda m: zf.occlusion(m, X, layer=L, channels=-1, size=8, stride=8),
                              r"-1 is out of range; valid: 0..3"),
    "occlusion channels=C": (lambda m: zf.occlusion(m, X, layer=L, channels=4, size=8, stride=8), "valid: 0..3"),
    "occlusion channels=1.7": (lambda m: zf.occlusion(m, X, layer=L, channels=1.7, size=8, stride=8), "integer"),
    "occlusion target=5000": (lambda m: zf.occlusion(m, X, target=5000, size=8, stride=8), "valid: 0..4"),
    "projection channels=[]": (lambda m: zf.unit_projection(m, X, layer=L, channels=[]), "empty"),
    "projection channels=1.7": (lambda m: zf.channel_projection(m, X, layer=L, channels=1.7), "integer"),
    "scan_topk 0 images": (lambda m: zf.scan_topk(m, X[:0], layer=L, k=2, progress=False), "empty"),
    "3-D input": (lambda m: zf.gradcam(m, X[0], layer=L), "N×C×H×W"),
    "unknown layer": (lambda m: zf.unit_projection(m, X, layer="relu9", channels=0), "valid layers"),
    "capture no layers": (lambda m: zf.capture(m, X, []), "at least one layer"),
}  # fmt: skip


@pytest.mark.parametrize("case", API_CASES)
def test_methods_refuse_bad_inputs_by_name(case):
    fn, match = API_CASES[case]
    with pytest.raises(ValueError, match=match):
        fn(Tiny())


# --------------------------------------------------------------------------- figures
def _fig(w=2.0, h=2.0):
    fig, ax = plt.subplots(figsize=(w, h))
    ax.plot([0, 1])
    return fig


@pytest.mark.parametrize(("dpi", "match"), [(100000, "dpi must be a number in 10..1200"), (True, "dpi"),
                                            ("abc", "dpi"), (0, "dpi")])  # fmt: skip
def test_absurd_dpi_is_refused_before_anything_is_written(figures_tmp, dpi, match):
    with pytest.raises(InputError, match=match):
        save_figure(_fig(), "99_dpi", model="m", data="d", dpi=dpi)
    with pytest.raises(InputError, match="Mpx"):  # a canvas of 100 001 columns, at a normal dpi
        save_figure(_fig(w=1000, h=20), "99_dpi", model="m", data="d", dpi=100)
    assert not list(figures_tmp.iterdir())
    plt.close("all")


# --------------------------------------------------------------------------- weights
@pytest.fixture
def corrupt_weights(tmp_path, monkeypatch):
    """A copy of the MobileNetV2 weights with one flipped byte, in a private torch hub folder."""
    src = weights.SOURCES["mobilenet_v2"].path
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("ZFHELPERS_CACHE_DIR", str(tmp_path / "cache"))
    dest = weights.SOURCES["mobilenet_v2"].path
    dest.parent.mkdir(parents=True)
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def test_corrupt_weights_are_reported_with_the_repair(corrupt_weights):
    with pytest.raises(weights.WeightsError, match=r"delete it \(rm .*\) and rerun `make setup`"):
        weights.ensure("mobilenet_v2")
    rows = {r["model"]: r for r in availability("offline")}
    assert rows["mobilenet_v2"]["state"] == "corrupt" and not rows["mobilenet_v2"]["available"]
    assert "rerun `make setup`" in rows["mobilenet_v2"]["how"]
    assert rows["vgg16_hed"]["state"] == "missing"


def test_hash_cache_does_not_trust_size_and_mtime(corrupt_weights):
    """A file verified once, then rewritten with the same size and mtime, is hashed again."""
    good = weights.SOURCES["mobilenet_v2"]
    st = os.stat(corrupt_weights)
    with pytest.raises(weights.WeightsError):
        weights.verify(good)
    fixed = bytearray(corrupt_weights.read_bytes())
    fixed[len(fixed) // 2] ^= 0xFF
    corrupt_weights.write_bytes(bytes(fixed))
    os.utime(corrupt_weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert weights.verify(good) == good.sha256  # repaired: accepted
    broken = bytearray(fixed)
    broken[0] ^= 0xFF
    corrupt_weights.write_bytes(bytes(broken))
    os.utime(corrupt_weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(weights.WeightsError):  # the cached "good" digest is not reused
        weights.verify(good)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_part_files_of_dead_processes_are_cleaned(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    (tmp_path / "sub").mkdir()
    stale = [tmp_path / f".fig.png.p{dead}.abc123.part", tmp_path / "sub" / f".x.pt.p{dead}.q.part"]
    keep = [tmp_path / f".fig.png.p{live}.abc123.part", tmp_path / "user.part", tmp_path / ".young.part"]
    staging = tmp_path / f".staging-00_demo.p{dead}.r4nd.part"
    (staging / "results").mkdir(parents=True)
    old = tmp_path / ".legacy.part"
    for p in [*stale, *keep, staging / "a.png", old]:
        p.write_bytes(b"x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    removed = clean_stale_parts([tmp_path], before=time.time() - 60)
    assert set(removed) == {*stale, staging, old}
    assert all(p.exists() for p in keep) and not staging.exists()


# --------------------------------------------------------------------------- fingerprints, training resume
def test_fingerprints_change_with_what_determines_a_result(tmp_path):
    a = nn.Linear(2, 2)
    assert model_digest(a) == model_digest(zf.adapt(a))
    b = nn.Linear(2, 2)
    assert model_digest(a) != model_digest(b)
    t = torch.arange(6.0)
    assert tensor_digest(t) == tensor_digest(t.clone()) != tensor_digest(t.view(2, 3))
    assert tensor_digest(t) != tensor_digest(t.double())
    assert params_digest(k=9, layer="relu1") == params_digest(layer="relu1", k=9) != params_digest(k=8, layer="relu1")
    (tmp_path / "a.png").write_bytes(b"1")
    before = folder_digest(tmp_path)
    (tmp_path / "b.png").write_bytes(b"2")
    assert folder_digest(tmp_path) != before


def _toy(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 112, 112, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_training_checkpoint_of_another_run_is_never_reused(tmp_path, capfd):
    from zfhelpers.models.training import TrainConfig, train

    data, other = _toy(), _toy(seed=2)
    cfg = TrainConfig(epochs=2, schedule=(2,), batch_size=8)
    fresh_other = train(cfg, tmp_path / "ref", other, other, progress=False, stop_after=1)["model"]
    train(cfg, tmp_path / "run", data, data, progress=False, stop_after=1)
    # other data, same folder: starts afresh (was: silently resumed from the other data's epoch 1)
    out = train(cfg, tmp_path / "run", other, other, progress=False, stop_after=1)
    assert "training starts afresh" in capfd.readouterr().err
    assert [h["epoch"] for h in out["history"]] == [1]
    for (k, x), y in zip(fresh_other.state_dict().items(), out["model"].state_dict().values()):
        assert torch.allclose(x, y, atol=1e-6), k
    # another configuration (was: ValueError "delete it"): afresh with a message
    out = train(TrainConfig(epochs=2, schedule=(2,), batch_size=8, lr=5e-3), tmp_path / "run", other, other,
                progress=False, stop_after=1)  # fmt: skip
    assert "other settings or data" in capfd.readouterr().err and len(out["history"]) == 1
    # a truncated checkpoint (full disk): afresh, not a crash
    last = tmp_path / "run" / "zf_last.pt"
    last.write_bytes(last.read_bytes()[:100])
    out = train(TrainConfig(epochs=1, schedule=(1,), batch_size=8), tmp_path / "run", other, other, progress=False)
    assert "unreadable checkpoint" in capfd.readouterr().err and len(out["history"]) == 1


# --------------------------------------------------------------------------- CLI parameter checks
FIXTURE_PARAMS = """\
profile = "offline"  # models
n = 1  # figures to save [0..5]
tag = "a"  # figure name suffix {a, b}
fail = False  # raise after saving
threshold = 0.5  # a score [0..1]
images = ["chelsea", "coffee"]  # photos [1..3]
layers = ["relu1"]  # layers {relu1, relu2, relu3}
pair = ["chelsea", "coffee"]  # exactly two [2..2]
image = "chelsea"  # one photo
seed = 0  # no range declared
interactive = True
"""
FIXTURE_BODY = """\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import zfhelpers
run = zfhelpers.notebook.start("00_demo", globals())
for i in range(n):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, i])
    run.save_figure(fig, f"00_demo_{tag}{i}", model="m", data="d", formats=("png",))
if fail:
    raise RuntimeError("boom after saving")
"""


@pytest.fixture(scope="module")
def fixture_notebooks(tmp_path_factory):
    import nbformat

    folder = tmp_path_factory.mktemp("nbs")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(FIXTURE_PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(FIXTURE_BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "00_demo.ipynb")
    return folder


BAD_VALUES = {
    "n": ("abc", "expected an integer in 0..5"),
    "threshold": ("true", "expected a number in 0..1"),
    "tag": ("c", "expected one of {a, b}"),
    "images": ("[]", "expected a list of 1 to 3 strings"),
    "layers": ("[relu9]", "expected a list of 1 or more strings from {relu1, relu2, relu3}; 'relu9' is not among them"),
    "pair": ("[chelsea]", "expected a list of exactly 2 strings"),
    "image": ("[chelsea, coffee]", "expected a string"),
    "fail": ("1", "expected true or false"),
    "profile": ("papr", "expected one of {offline, paper}"),
}
GOOD_VALUES = {"n": ("5", 5), "threshold": ("1", 1.0), "images": ("chelsea", ["chelsea"]), "image": ("2024", "2024"),
               "seed": ("-7", -7), "pair": ("[a, b]", ["a", "b"]), "fail": ("false", False)}  # fmt: skip


def _plan(folder, raw, preset=None):
    user = {k: cli.parse_value(v) for k, v in raw.items()}
    (params,) = cli.build_parameters(cli.select_notebooks(None, folder), user, preset, None, folder, raw=raw).values()
    return params


@pytest.mark.parametrize("name", BAD_VALUES)
def test_each_bad_value_names_notebook_parameter_value_and_what_is_allowed(fixture_notebooks, name):
    value, allowed = BAD_VALUES[name]
    with pytest.raises(cli.CliError) as err:
        _plan(fixture_notebooks, {name: value})
    assert f"00_demo: -p {name} {value!r} is not allowed; {allowed}" in str(err.value)
    assert err.value.status == 2


def test_good_values_are_taken_with_the_notebooks_types(fixture_notebooks):
    params = _plan(fixture_notebooks, {k: v for k, (v, _) in GOOD_VALUES.items()})
    for name, (_, expected) in GOOD_VALUES.items():
        assert params[name] == expected and type(params[name]) is type(expected), name


def test_real_notebooks_refuse_the_issues_values():
    for nb, name, value, allowed in [("01", "n_maps", "abc", "an integer"), ("01", "n_maps", "true", "an integer"),
                                     ("01", "n_maps", "3.5", "an integer"), ("01", "n_maps", "[1, 2]", "an integer"),
                                     ("01", "image", "[chelsea, coffee]", "a string"),
                                     ("00", "images", "[]", "a list of 1 or more strings")]:  # fmt: skip
        with pytest.raises(cli.CliError, match=f"-p {name} '{re.escape(value)}' is not allowed; expected {allowed}"):
            cli.build_parameters(cli.select_notebooks([nb]), {name: cli.parse_value(value)}, None, None,
                                 raw={name: value})  # fmt: skip


def test_bad_preset_values_name_the_preset(fixture_notebooks):
    (fixture_notebooks / "presets.yaml").write_text('big: {"00": {n: 100}}\n')
    try:
        with pytest.raises(
            cli.CliError, match=r"00_demo: n = 100 \(preset big\) is not allowed; expected an integer in 0..5"
        ):
            _plan(fixture_notebooks, {}, preset="big")
    finally:
        (fixture_notebooks / "presets.yaml").unlink()


def test_malformed_range_is_the_notebooks_fault():
    with pytest.raises(parameters.ParameterError, match="malformed allowed values"):
        parameters.spec_from_inspection({"name": "k", "default": "1", "help": "count [a..b]"})


# --------------------------------------------------------------------------- CLI end to end (subprocesses)
def _env(tmp: Path, **extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), ZFHELPERS_BUILD_DIR=str(tmp / "build"),
               ZFHELPERS_FIGURES_DIR=str(tmp / "figures"), **extra)  # fmt: skip
    env.pop("JUPYTER_PATH", None)
    return env


def _launch(args, env):
    return subprocess.Popen([sys.executable, "-m", "zfhelpers", *args], env=env, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory, fixture_notebooks):
    """Every CLI case, launched at once: {case: (returncode, stdout, stderr)}."""
    tmp = tmp_path_factory.mktemp("cli")
    torch_home = tmp / "torch"
    src = weights.SOURCES["mobilenet_v2"].path
    dest = torch_home / "hub" / "checkpoints" / src.name
    dest.parent.mkdir(parents=True)
    data = bytearray(src.read_bytes())
    data[12345] ^= 0x01
    dest.write_bytes(bytes(data))
    corrupt = _env(tmp, TORCH_HOME=str(torch_home), ZFHELPERS_CACHE_DIR=str(tmp / "cache"))
    nbs = str(fixture_notebooks)
    every_bad = [a for name, (value, _) in BAD_VALUES.items() for a in ("-p", name, value)]
    cases = {
        "n_maps abc": (["figures", "--only", "01", "-p", "n_maps", "abc"], _env(tmp)),
        "images []": (["figures", "--only", "00", "-p", "images", "[]"], _env(tmp)),
        "every bad value": (["figures", "--notebooks", nbs, *every_bad], _env(tmp)),
        "setup unknown key": (["setup", "--weights", "mobilenet_v2", "resnet50"], _env(tmp)),
        "train-twins unknown": (["train-twins", "zf", "vgg"], _env(tmp)),
        "setup corrupt": (["setup", "--weights", "mobilenet_v2"], corrupt),
        "models corrupt": (["models", "--profile", "offline"], corrupt),
    }
    procs = {name: _launch(args, env) for name, (args, env) in cases.items()}
    return {name: (p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for name, p in procs.items()}


CLI_EXPECTED = {
    "n_maps abc": (2, "01_feature_maps_and_filters: -p n_maps 'abc' is not allowed; expected an integer"),
    "images []": (2, "00_setup_check: -p images '[]' is not allowed; expected a list of 1 or more strings"),
    "every bad value": (2, "00_demo: -p fail '1' is not allowed; expected true or false"),
    "setup unknown key": (2, "unknown weights 'resnet50'; valid: mobilenet_v2, vgg16_hed"),
    "train-twins unknown": (2, "unknown twin(s) 'vgg'; valid: zf, alexnet"),
    "setup corrupt": (1, "and rerun `make setup`"),
    "models corrupt": (1, "corrupt"),
}
#: The same promise in-process, for every subcommand (cheap: no torch import per case).
IN_PROCESS = {
    "figures --timeout 0": ["figures", "--only", "00", "--timeout", "0"],
    "figures unknown notebook": ["figures", "--only", "42"],
    "figures unknown preset": ["figures", "--only", "00", "--preset", "ultra"],
    "figures unknown parameter": ["figures", "--only", "01", "-p", "nope", "1"],
    "figures missing folder": ["figures", "--notebooks", "/nonexistent/zf"],
    "figures -p without value": ["figures", "-p", "n_maps"],
    "models bad profile": ["models", "--profile", "imagenet"],
    "setup no keys": ["setup", "--weights"],
    "claims no results": ["claims", "--results", "/nonexistent/zf"],
    "refresh unknown notebook": ["refresh-notebooks", "--only", "99"],
    "train-twins unknown": ["train-twins", "resnet"],
    "no subcommand": [],
    "unknown subcommand": ["plot"],
}


@pytest.mark.parametrize("case", IN_PROCESS)
def test_no_subcommand_shows_a_traceback_for_a_user_error(case, capsys):
    try:
        status = cli.main(IN_PROCESS[case])
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and "error:" in err and "Traceback" not in err


@pytest.mark.parametrize("case", CLI_EXPECTED)
def test_cli_user_errors_exit_cleanly_without_traceback(cli_runs, case):
    rc, out, err = cli_runs[case]
    status, text = CLI_EXPECTED[case]
    assert rc == status, (out, err)
    assert text in out + err
    assert "Traceback" not in out + err


def test_cli_reports_every_bad_value_at_once(cli_runs):
    _, _, err = cli_runs["every bad value"]
    for name, (value, allowed) in BAD_VALUES.items():
        assert f"-p {name} {value!r} is not allowed; {allowed}" in err, name


def test_models_says_corrupt_and_how_to_repair(cli_runs):
    _, out, _ = cli_runs["models corrupt"]
    line = next(x for x in out.splitlines() if x.startswith("mobilenet_v2"))
    assert "corrupt" in line and "rm " in line and "make setup" in line and "available" not in line


def test_failed_run_keeps_old_figures_and_concurrent_runs_keep_their_own_manifests(tmp_path, fixture_notebooks):
    """Two `figures` runs of the same notebook at once: one saves two figures and then fails, the
    other saves one. The failed run publishes nothing and the old figure stays; each summary counts
    only its own run's figures; stale temporaries of dead runs are gone, nothing new is left."""
    env = _env(tmp_path)
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "00_demo_a0.png").write_bytes(b"old figure")
    dead = _dead_pid()
    (figures / f".00_demo_a1.png.p{dead}.xyz.part").write_bytes(b"half")
    base = ["figures", "--notebooks", str(fixture_notebooks), "--timeout", "300"]
    failing = _launch([*base, "-p", "tag", "a", "-p", "n", "2", "-p", "fail", "true"], env)
    passing = _launch([*base, "-p", "tag", "b", "-p", "n", "1"], env)
    (rc_f, out_f, err_f), (rc_p, out_p, err_p) = [(p.wait(timeout=400), p.stdout.read(), p.stderr.read())
                                                  for p in (failing, passing)]  # fmt: skip
    assert rc_f == 1 and "FAILED" in out_f and "2 new figure(s) discarded" in out_f, (out_f, err_f)
    assert rc_p == 0, (out_p, err_p)
    assert (figures / "00_demo_a0.png").read_bytes() == b"old figure"
    assert not (figures / "00_demo_a1.png").exists() and (figures / "00_demo_b0.png").is_file()
    assert sorted(p.name for p in figures.iterdir()) == ["00_demo_a0.png", "00_demo_b0.png", "results"]
    assert [p.name for p in (figures / "results").iterdir()] == ["00_demo.offline.json"]
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "build" / "runs").glob("*/summary.json")]
    by_tag = {row["discarded"][0][-2] if row["discarded"] else row["figures"][0][-2]: row for (row,) in summaries}
    assert by_tag["a"]["figures"] == [] and by_tag["a"]["discarded"] == ["00_demo_a0", "00_demo_a1"]
    assert by_tag["b"]["figures"] == ["00_demo_b0"] and by_tag["b"]["ok"]
    assert "Traceback" not in err_f + err_p
