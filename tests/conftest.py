import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def figures_tmp(tmp_path, monkeypatch):
    """Redirect save_figure into a temporary folder."""
    monkeypatch.setenv("ZFHELPERS_FIGURES_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def mobilenet():
    from zfhelpers import load_model

    return load_model("mobilenet_v2")


@pytest.fixture(scope="session")
def hed():
    from zfhelpers import load_model

    return load_model("vgg16_hed")


def pytest_report_header(config):
    return f"torch {torch.__version__}, threads {torch.get_num_threads()}, cwd {os.getcwd()}"


def pytest_addoption(parser):
    parser.addoption("--run-ui", action="store_true", help="run the real-browser tests in tests/ui (make ui-test)")
