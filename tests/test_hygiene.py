"""The layout keeps its promises: compute never imports plotting, no module reaches into another's
private names, functions stay short (or say why not), every file a comment or doc points to exists."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "zfhelpers"
MODULES = sorted(PACKAGE.rglob("*.py"))
PLOTTING = ("matplotlib", "ipywidgets", "IPython", "zfhelpers.notebook")
MAX_LINES = 60


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every import in ``path``."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((module, [a.name for a in node.names]))
    return out


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# The command line drives notebooks (publishing their staged figures), so it is exempt like the notebook layer.
COMPUTE = [p for p in MODULES if not {"notebook", "course"} & set(p.parts) and p.name not in ("cli.py", "__main__.py")]


@pytest.mark.parametrize("path", COMPUTE, ids=_rel)
def test_compute_modules_never_import_plotting(path):
    bad = [m for m, names in _imports(path) for p in PLOTTING
           if m == p or m.startswith(p + ".") or (m == "zfhelpers" and "notebook" in names)]  # fmt: skip
    assert not bad, f"{_rel(path)} imports plotting/notebook code: {bad}"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_private_names_imported_across_modules(path):
    bad = [f"{m}.{n}" for m, names in _imports(path) if m.startswith("zfhelpers")
           for n in names if n.startswith("_") and not n.startswith("__")]  # fmt: skip
    assert not bad, f"{_rel(path)} imports private names of other modules: {bad}"


def _long_functions(path: Path):
    source = path.read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            body = "\n".join(lines[node.lineno - 1 : node.end_lineno])
            if length > MAX_LINES and "long:" not in body:
                yield f"{node.name} ({length} lines)"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_functions_are_short_or_say_why(path):
    long = list(_long_functions(path))
    assert not long, f"{_rel(path)}: functions over {MAX_LINES} lines without a '# long: <reason>' comment: {long}"


REFERENCE = re.compile(
    r"(?<![\w/.])((?:docs|data|notebooks|figures|benchmarks|tests)/[\w./\-]+\.(?:md|json|yaml|py|ipynb|cfg|toml|sh))"
)


def _texts():
    for path in [
        *MODULES,
        *sorted((ROOT / "tests").rglob("*.py")),
        *sorted((ROOT / "benchmarks").glob("*.py")),
        *sorted((ROOT / "notebooks").glob("*.py")),
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]:
        yield path, path.read_text()


def test_every_file_a_comment_or_doc_names_exists():
    missing = []
    for path, text in _texts():
        for ref in REFERENCE.findall(text):
            ref = ref.rstrip(".")
            if "*" in ref or "<" in ref or ref.startswith("data/twins/") and "epoch" in ref:
                continue
            if not (ROOT / ref).exists():
                missing.append(f"{_rel(path)} → {ref}")
    assert not missing, "references to files that do not exist:\n" + "\n".join(sorted(set(missing)))


def test_no_bare_papers_md_references():
    """The paper notes live in docs/papers.md; the bare file name points nowhere."""
    bad = [f"{_rel(p)}:{i}" for p, text in _texts() for i, line in enumerate(text.splitlines(), 1)
           if re.search(r"(?<!docs/)\bpapers\.md", line)]  # fmt: skip
    assert not bad, f"write docs/papers.md: {bad}"
