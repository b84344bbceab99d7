import subprocess
import sys

import pytest

from zfhelpers import cli


def test_parse_value_infers_types_like_papermill():
    assert cli.parse_value("3") == 3 and cli.parse_value("0.5") == 0.5
    assert cli.parse_value("true") is True and cli.parse_value("[a, b]") == ["a", "b"]
    assert cli.parse_value("chelsea") == "chelsea" and cli.parse_value("") == ""


def test_unknown_parameter_names_the_valid_ones():
    nb = cli.select_notebooks(["01"])
    with pytest.raises(cli.CliError, match=r"unknown parameter\(s\) nope; valid parameters: profile, model"):
        cli.build_parameters(nb, {"nope": 1}, None, None)


def test_unknown_notebook_and_preset():
    with pytest.raises(cli.CliError, match="valid: 00, 01"):
        cli.select_notebooks(["42"])
    with pytest.raises(cli.CliError, match="valid presets: full"):
        cli.build_parameters(cli.select_notebooks(["00"]), {}, "ultra", None)


def test_parameters_layering():
    plan = cli.build_parameters(cli.select_notebooks(["01"]), {"image": "coffee"}, "full", "paper")
    (params,) = plan.values()
    assert params["image"] == "coffee" and params["profile"] == "paper" and params["interactive"] is False
    assert params["n_maps"] == 64  # from presets.yaml


def test_every_preset_names_real_parameters():
    for preset, per_notebook in cli.load_presets().items():
        for number in per_notebook:
            cli.build_parameters(cli.select_notebooks([number]), {}, preset, None)


def test_cli_refuses_unknown_parameter_end_to_end():
    """The issue's acceptance check: `python -m zfhelpers figures --only 01 -p nope 1`."""
    result = subprocess.run([sys.executable, "-m", "zfhelpers", "figures", "--only", "01", "-p", "nope", "1"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "unknown parameter(s) nope" in result.stderr and "valid parameters:" in result.stderr


def test_kernel_spec_points_at_this_interpreter(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("ZFHELPERS_BUILD_DIR", str(tmp_path))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    spec_dir = cli.ensure_kernel()
    assert json.loads((spec_dir / "kernel.json").read_text())["argv"][0] == sys.executable
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable


def _notebook(path, body):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "offline"\ninteractive = True')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_failing_notebook_is_named_and_exit_is_nonzero(tmp_path, monkeypatch, capsys):
    """A broken notebook does not stop the others; the run exits 1 and names it."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "00_fine.ipynb", "x = 1")
    _notebook(folder / "01_broken.ipynb", "raise RuntimeError('boom')")
    monkeypatch.setenv("ZFHELPERS_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    status = cli.main(["figures", "--notebooks", str(folder), "--timeout", "120"])
    out = capsys.readouterr()
    assert status == 1
    assert "FAILED notebooks: 01_broken" in out.err
    assert "00_fine" in out.out and "boom" in out.out
    assert list((tmp_path / "build" / "runs").glob("*/executed/01_broken.ipynb"))


def test_refresh_runs_explorers_non_interactively_and_keeps_the_source(tmp_path, monkeypatch):
    """Committed notebooks store the explorer's note, never a live widget; a text progress bar
    keeps only its last line."""
    import nbformat

    folder = tmp_path / "nbs"
    folder.mkdir()
    body = ("from zfhelpers.notebook import widgets\nfrom zfhelpers.progress import tqdm\n"
            "for _ in tqdm(range(3), desc='scan'): pass\n"
            "widgets.explore(interactive, lambda: widgets.controls_explorer(lambda **kw: None, "
            "{'size': __import__('ipywidgets').IntSlider()}))")  # fmt: skip
    _notebook(folder / "01_explorer.ipynb", body)
    before = nbformat.read(folder / "01_explorer.ipynb", as_version=4)
    monkeypatch.setenv("ZFHELPERS_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    assert cli.main(["refresh-notebooks", "--notebooks", str(folder)]) == 0
    nb = nbformat.read(folder / "01_explorer.ipynb", as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in before.cells]
    outputs = nb.cells[1].outputs
    kinds = [sorted(o.get("data", {})) or o.get("name") for o in outputs]
    assert ["text/markdown", "text/plain"] in kinds and "widgets" not in nb.metadata
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    (bar,) = [o.text for o in outputs if o.get("name") == "stderr"]
    assert "scan: 100%" in bar and "\r" not in bar and " 0%" not in bar


def test_refresh_leaves_a_failing_notebook_unchanged_and_names_it(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "01_broken.ipynb", "raise RuntimeError('boom')")
    before = (folder / "01_broken.ipynb").read_bytes()
    monkeypatch.setenv("ZFHELPERS_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("ZFHELPERS_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    assert cli.main(["refresh-notebooks", "--notebooks", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "FAILED 01_broken.ipynb" in err and "boom" in err and "Traceback" not in err
    assert (folder / "01_broken.ipynb").read_bytes() == before
    assert not [p for p in (tmp_path / "figures").iterdir() if p.name.startswith(".staging")]
