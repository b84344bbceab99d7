"""Folder scans (issue #15): streamed through DataLoader workers, sharded, resumable, merged exactly;
RESULT.json round trip; the CLI; and a 2-rank torchrun run against the single-process result."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from zfhelpers import cli
from zfhelpers.analysis import top9
from zfhelpers.analysis.scan import merge_topk, scan_files, scan_topk
from zfhelpers.analysis.scan_result import load_scan_result
from zfhelpers.data.folders import ImageFiles, list_images
from zfhelpers.data.images import ImageLoadError
from zfhelpers.distributed import run_scan
from zfhelpers.models.zoo import LoadedModel, Preprocess, adapt

REPO = Path(__file__).resolve().parents[1]


def make_folder(root: Path, n: int, *, classes: int = 3, seed: int = 0) -> Path:
    """``n`` random images of varied sizes and modes: JPEG and PNG, RGB and grey, in class folders
    (``classes=0``: flat)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / f"c{i % classes}" if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        h, w = rng.integers(24, 64, 2)
        arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(arr) if i % 4 else Image.fromarray(arr[..., 0]).convert("L")
        img.save(folder / f"im{i:03d}.{'png' if i % 5 == 0 else 'jpg'}")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("imgs"), 26)


def small_model() -> LoadedModel:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 5, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 5, 3)).eval()
    lm = adapt(net)
    lm.preprocess = Preprocess(resize=36, crop=32)
    return lm


def same(a, b, atol=1e-5):
    return (torch.equal(a.images, b.images) and torch.equal(a.positions, b.positions)
            and torch.allclose(a.values, b.values, rtol=0, atol=atol))  # fmt: skip


def test_listing_is_sorted_recursive_and_takes_flat_folders(tmp_path, folder):
    paths = list_images(folder)
    assert paths == sorted(paths) and len(paths) == 26 and paths[0] == "c0/im000.png"
    flat = make_folder(tmp_path / "flat", 5, classes=0)
    (flat / "notes.txt").write_text("not an image")
    (flat / ".hidden.jpg").write_bytes(b"")
    assert list_images(flat) == [f"im{i:03d}.{'png' if i == 0 else 'jpg'}" for i in range(5)]
    files = ImageFiles(flat, Preprocess(resize=36, crop=32))
    assert files[1].shape == (3, 32, 32) and files[1].dtype == torch.uint8 and files[[0, 2]].shape == (2, 3, 32, 32)


def test_folder_scan_equals_the_tensor_scan_of_the_decoded_images(folder):
    lm = small_model()
    files = ImageFiles(folder, lm.preprocess)
    decoded = files[range(len(files))]  # what the workers produce, decoded here in one process
    ref = scan_topk(lm, decoded, layer=["1", "3"], k=4, batch_size=6, prepare=files.to_model_input, progress=False)
    streamed = scan_topk(lm, files, layer=["1", "3"], k=4, batch_size=6, workers=2, progress=False)
    for name in ("1", "3"):
        assert same(streamed[name], ref[name], atol=0)


def test_shards_merge_to_the_single_pass_result(folder):
    lm = small_model()
    files = ImageFiles(folder, lm.preprocess)
    whole = scan_files(lm, files, layer="3", k=5, batch_size=8, progress=False).tops["3"]
    for world in (2, 3):
        parts = [scan_files(lm, files, layer="3", k=5, batch_size=3, shard=(r, world), progress=False).tops["3"]
                 for r in range(world)]  # fmt: skip
        assert same(merge_topk(parts, 5), whole)
        assert same(merge_topk(parts[::-1], 5), whole)


def test_a_killed_shard_resumes_from_its_checkpoint(tmp_path, folder, capsys):
    lm = small_model()
    files = ImageFiles(folder, lm.preprocess)
    ckpt = tmp_path / "rank1.pt"
    full = scan_files(lm, files, layer="3", k=3, batch_size=2, shard=(1, 2), progress=False)
    cut = scan_files(lm, files, layer="3", k=3, batch_size=2, shard=(1, 2), checkpoint=ckpt, save_every=1,
                     stop_after=2, progress=False)  # fmt: skip
    assert cut.tops["3"].images.max() < 13 + 4  # only the first two batches of the shard (images 13…)
    resumed = scan_files(lm, files, layer="3", k=3, batch_size=2, shard=(1, 2), checkpoint=ckpt, progress=False)
    assert resumed.resumed == 4 and same(resumed.tops["3"], full.tops["3"], atol=0)
    scan_files(lm, files, layer="3", k=3, batch_size=2, shard=(0, 2), checkpoint=ckpt, progress=False)
    assert "differs in: shard" in capsys.readouterr().err  # another rank's checkpoint is never taken


def test_unreadable_files_stop_the_scan_by_name_or_are_skipped_and_counted(tmp_path):
    root = make_folder(tmp_path / "d", 7, classes=0)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    lm = small_model()
    files = ImageFiles(root, lm.preprocess)
    with pytest.raises(ImageLoadError, match=r"broken\.jpg"):
        scan_files(lm, files, layer="3", k=2, batch_size=3, workers=1, progress=False)
    res = scan_files(lm, files, layer="3", k=2, batch_size=3, workers=1, skip_unreadable=True, progress=False)
    assert [files.relpath(i) for i, _ in res.skipped] == ["broken.jpg"] and "broken.jpg" in res.skipped[0][1]
    clean = ImageFiles(root, lm.preprocess, [p for p in files.relpaths() if p != "broken.jpg"])
    ref = scan_files(lm, clean, layer="3", k=2, batch_size=3, progress=False).tops["3"]
    got = res.tops["3"]
    assert [[files.relpath(i) for i in row] for row in got.images.tolist()] == [
        [clean.relpath(i) for i in row] for row in ref.images.tolist()]  # fmt: skip


def _twin():
    from zfhelpers.models import trained

    return trained.load_twin("zf")


def test_result_file_round_trip_feeds_the_top9_projection(tmp_path, folder):
    lm = _twin()
    out = tmp_path / "result.json"
    run = run_scan(lm, folder, layers=["relu1", "relu2"], k=3, out=out, batch_size=8, workers=0, device="cpu",
                   progress=False)  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc == run.document and doc["k"] == 3 and doc["data"]["images"] == 26
    row = doc["layers"]["relu2"]["top"][0]
    assert [e["value"] for e in row] == sorted((e["value"] for e in row), reverse=True) and len(row) == 3
    res = load_scan_result(out)
    files = ImageFiles(folder, lm.preprocess)
    ref = scan_topk(lm, files, layer="relu2", k=3, batch_size=8, progress=False)
    got = res.tops["relu2"]
    assert torch.equal(got.values, ref.values) and torch.equal(got.positions, ref.positions)
    assert [res.images.relpath(i) for i in got.images.flatten()] == [files.relpath(i) for i in ref.images.flatten()]
    tp = top9.project_topk(lm, got, [0, 3], res.images)  # images by path, normalised by the result's preprocess
    assert torch.allclose(tp.reprojected, tp.values, rtol=1e-4, atol=1e-5)


def test_cli_names_the_valid_models_and_layers(capsys, folder, tmp_path):
    args = ["scan", "--data", str(folder), "--layers", "relu1", "--out", str(tmp_path / "r.json")]
    assert cli.main([*args, "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope'" in err and "twin_zf" in err and "mobilenet_v2" in err
    assert cli.main(["scan", "--data", str(tmp_path / "missing"), "--model", "twin_zf", "--layers", "relu1",
                     "--out", "r.json"]) == 2  # fmt: skip
    assert "no such folder" in capsys.readouterr().err
    result = subprocess.run([sys.executable, "-m", "zfhelpers", *args[:-4], "--layers", "relu9", "--model", "twin_zf",
                             "--out", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown layer(s) relu9 for twin_zf; valid layers: conv1, relu1" in result.stderr


def entries(doc):
    return {name: [[(e["image"], e["y"], e["x"]) for e in row] for row in layer["top"]]
            for name, layer in doc["layers"].items()}  # fmt: skip


@pytest.mark.slow
def test_two_torchrun_ranks_equal_the_single_process_scan(tmp_path, folder):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun is installed with torch"
    layers = ["relu1", "relu3", "relu5"]
    single = run_scan(_twin(), folder, layers=layers, k=4, out=tmp_path / "one.json", batch_size=4, workers=0,
                      device="cpu", progress=False).document  # fmt: skip
    start = time.perf_counter()
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "zfhelpers", "scan", "--data", str(folder),
           "--model", "twin_zf", "--layers", *layers, "--k", "4", "--batch-size", "4", "--workers", "1",
           "--device", "cpu", "--out", str(tmp_path / "two.json"), "--checkpoint-dir", str(tmp_path / "ck"),
           "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"torchrun 2 ranks: {time.perf_counter() - start:.1f} s")
    two = json.loads((tmp_path / "two.json").read_text())
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["rank000-of-002.pt", "rank001-of-002.pt"]
    assert entries(two) == entries(single)
    for name in layers:
        for row1, row2 in zip(single["layers"][name]["top"], two["layers"][name]["top"]):
            assert np.allclose([e["value"] for e in row1], [e["value"] for e in row2], rtol=0, atol=1e-5)
    assert {k: v for k, v in two.items() if k != "layers"} == {k: v for k, v in single.items() if k != "layers"}


def test_a_folder_scan_set_streams_through_scan_topk_and_project_topk(folder):
    from zfhelpers.data import scansets

    lm = _twin()
    data = scansets.load_scan_set(str(folder), lm, 12)  # a folder path where a set name goes
    assert len(data) == 12 and data.name == f"folder_{folder.name}"
    assert data.labels.tolist() == [int(p[1]) for p in data.images.relpaths()]  # c0, c1, c2 → 0, 1, 2
    assert sorted(set(data.labels.tolist())) == [0, 1, 2]  # spread over every class, not the first
    top = scan_topk(lm, data.images, layer="relu2", k=3, batch_size=5, prepare=data.prepare, workers=1,
                    progress=False)  # fmt: skip
    ref = scan_topk(lm, data.images[range(12)], layer="relu2", k=3, batch_size=5, prepare=data.prepare,
                    progress=False)  # fmt: skip
    assert same(top, ref, atol=0)
    tp = top9.project_topk(lm, top, [1], data.images, prepare=data.prepare)
    assert torch.allclose(tp.reprojected, tp.values, rtol=1e-4, atol=1e-5)
