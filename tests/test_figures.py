import json

import matplotlib.pyplot as plt
import pytest
from PIL import Image

from zfhelpers.notebook.save import save_figure


def _fig():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def test_png_and_pdf_with_provenance(figures_tmp, monkeypatch):
    manifest = figures_tmp / "manifest.jsonl"
    monkeypatch.setenv("ZFHELPERS_MANIFEST", str(manifest))
    paths = save_figure(_fig(), "99_demo", model="m", data="d", params={"k": 1})
    assert [p.name for p in paths] == ["99_demo.png", "99_demo.pdf"]
    info = json.loads(Image.open(paths[0]).text["Description"])
    assert info == {"model": "m", "data": "d", "params": {"k": 1}}
    assert json.loads(manifest.read_text())["name"] == "99_demo"
    assert b"CreationDate" not in paths[1].read_bytes()  # deterministic PDF


def test_saving_is_deterministic(figures_tmp):
    first = save_figure(_fig(), "99_same", model="m", data="d")[0].read_bytes()
    second = save_figure(_fig(), "99_same", model="m", data="d")[0].read_bytes()
    assert first == second


def test_failed_write_leaves_old_file_and_no_debris(figures_tmp, monkeypatch):
    old = save_figure(_fig(), "99_atomic", model="m", data="d", formats=("png",))[0]
    before = old.read_bytes()
    fig = _fig()

    def broken(path, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, "99_atomic", model="m", data="d", formats=("png",))
    assert old.read_bytes() == before
    assert sorted(p.name for p in figures_tmp.iterdir()) == ["99_atomic.png"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "Fig 1"}, "NN_slug"),
        ({"model": ""}, "model= and data="),
        ({"formats": ("svg",)}, "valid: png, pdf"),
    ],
)
def test_bad_arguments(figures_tmp, kwargs, match):
    args = {"name": "99_ok", "model": "m", "data": "d"} | kwargs
    with pytest.raises(ValueError, match=match):
        save_figure(_fig(), args.pop("name"), **args)
    assert not list(figures_tmp.iterdir())


def test_staged_figures_reach_figures_only_when_published(figures_tmp, monkeypatch):
    from zfhelpers.notebook.save import STAGING_ENV, publish

    staging = figures_tmp / ".staging-99.p1.x.part"
    monkeypatch.setenv(STAGING_ENV, str(staging))
    save_figure(_fig(), "99_staged", model="m", data="d", formats=("png",))
    (staging / "results").mkdir()
    (staging / "results" / "99_staged.offline.json").write_text("{}")
    assert not (figures_tmp / "99_staged.png").exists()
    moved = publish(staging)
    assert sorted(p.relative_to(figures_tmp).as_posix() for p in moved) == ["99_staged.png",
                                                                          "results/99_staged.offline.json"]  # fmt: skip
    assert not staging.exists()
