"""The two environment files agree, and the notebooks have the shape the pipeline relies on."""

import ast
import re
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from zfhelpers import cli
from zfhelpers.paths import REPO_ROOT

CONDA_NAMES = {"pytorch": "torch"}


def _norm(req: str) -> str:
    """``name<spec>`` with conda names mapped to PyPI names and spaces removed."""
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req.strip()).groups()
    return CONDA_NAMES.get(name.lower(), name.lower()).replace("_", "-") + spec.replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in conda and "pip" in conda and "-e .[dev]" in pip
    listed = {_norm(r) for r in conda if not r.startswith(("python=", "pip"))}
    listed |= {_norm(r) for r in pip if not r.startswith("-e")}
    assert listed == wanted


NOTEBOOKS = cli.list_notebooks()


def test_notebooks_exist():
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["00", "01"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path: Path):
    nb = nbformat.read(path, as_version=4)
    assert re.match(r"^\d{2}_[a-z0-9_]+\.ipynb$", path.name)
    assert nb.metadata.kernelspec.name == "python3"
    assert "widgets" not in nb.metadata and "papermill" not in nb.metadata
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    tree = ast.parse(params[0].source)
    names = []
    for node in tree.body:  # literals only: derived values would not follow papermill overrides
        # plain or annotated (`images: list[str] = []`: the annotation types an empty default)
        assert isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None, ast.dump(node)
        ast.literal_eval(node.value)
        names += [t.id for t in node.targets] if isinstance(node, ast.Assign) else [node.target.id]
    assert {"profile", "interactive"} <= set(names)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "commit notebooks executed"
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    assert "save_figure(" in "".join(c.source for c in code)
    widget_cells = [c for c in code if "interactive" in c.source and c.source.startswith("if interactive")]
    for c in widget_cells:
        assert "nbval-ignore-output" in c.metadata.get("tags", [])
