"""The paper dry run (`make paper-dry-run`): random weights only when asked, loudly, never in figures/."""

import argparse

import pytest
import torch

from zfhelpers import cli
from zfhelpers.data.synthetic import make_image_folder
from zfhelpers.models import zoo
from zfhelpers.paths import STAND_IN_ENV


def test_without_the_switch_paper_weights_are_never_random(monkeypatch, tmp_path):
    monkeypatch.delenv(STAND_IN_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no AlexNet weights here
    monkeypatch.setenv("ZFHELPERS_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(Exception, match="alexnet"):
        zoo.load_model("alexnet", "paper", download=False)


def test_stand_in_is_labelled_seeded_and_shaped_like_the_paper_model(monkeypatch):
    monkeypatch.setenv(STAND_IN_ENV, "random")
    a, b = zoo.load_model("alexnet", "paper"), zoo.load_model("alexnet", "paper")
    assert "RANDOM-WEIGHT STAND-IN" in a.label and a.provenance["stand_in"] == "random"
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert a.shape(a.role("layer5")) == (256, 13, 13) and a.shape("fc8") == (1000,)
    state = torch.random.get_rng_state()
    zoo.load_model("vgg16", "paper")
    assert torch.equal(state, torch.random.get_rng_state()), "the stand-in must not move the global RNG"


def test_stand_in_never_touches_offline_models(monkeypatch):
    monkeypatch.setenv(STAND_IN_ENV, "random")
    assert "STAND-IN" not in zoo.load_model("mobilenet_v2", "offline").label


def test_unknown_stand_in_names_the_valid_one(monkeypatch):
    monkeypatch.setenv(STAND_IN_ENV, "zeros")
    with pytest.raises(ValueError, match="valid: random"):
        zoo.load_model("alexnet", "paper")


def _args(**kw):
    return argparse.Namespace(**{"stand_in": "random", "profile": "paper", **kw})


def test_cli_stand_in_needs_the_paper_profile_and_keeps_out_of_figures(monkeypatch):
    with pytest.raises(cli.CliError, match="--profile paper"), cli.stand_in(_args(profile=None)):
        pass
    monkeypatch.setenv("ZFHELPERS_FIGURES_DIR", str(cli.REPO_ROOT / "figures"))
    with pytest.raises(cli.CliError, match="never writes into"), cli.stand_in(_args()):
        pass


def test_cli_stand_in_redirects_and_restores(monkeypatch):
    monkeypatch.delenv("ZFHELPERS_FIGURES_DIR", raising=False)
    monkeypatch.delenv(STAND_IN_ENV, raising=False)
    with cli.stand_in(_args()):
        assert "paper-dry-run" in str(cli.figures_dir())
        assert cli.os.environ[STAND_IN_ENV] == "random"
    assert STAND_IN_ENV not in cli.os.environ and "ZFHELPERS_FIGURES_DIR" not in cli.os.environ


def test_synthetic_folder_is_deterministic_and_checks_its_arguments(tmp_path):
    a = make_image_folder(tmp_path / "a", classes=2, per_class=3, size=48)
    b = make_image_folder(tmp_path / "b", classes=2, per_class=3, size=48)
    assert len(a) == 6 and len({p.parent.name for p in a}) == 2
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    with pytest.raises(ValueError, match="classes must be in 1.."):
        make_image_folder(tmp_path / "c", classes=99)
