"""Command line: ``python -m zfhelpers {setup,models,figures,train-twins,claims,scan,…}`` (``--help`` lists all).

``figures`` checks every ``-p`` value against the notebook's parameter types and declared ranges
(:mod:`zfhelpers.parameters`), executes the numbered notebooks with papermill (kernel ``python3``
bound to this interpreter, cwd ``notebooks/``, a per-cell timeout), stages each notebook's figures
and publishes them only when it succeeds, and prints a line per notebook plus a closing summary.
Each run keeps its own manifests, executed copies and summary under ``build/runs/<run id>/``.
A user error prints one line and exits 2, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from . import parameters as nbparams
from .io import atomic_write, atomic_write_text, clean_stale_parts, pid_alive
from .models.zoo import PROFILES
from .notebook.save import MANIFEST_ENV, STAGING_ENV, publish
from .paths import PRESET_ENV, REPO_ROOT, STAND_IN_ENV, build_dir, data_dir, figures_dir, notebooks_dir

CELL_TIMEOUT_S = 1800
KEEP_RUNS = 20  # build/runs/ keeps the newest runs' executed notebooks and summaries
PRESETS_FILE = "presets.yaml"


class CliError(Exception):
    """A user error (exit status 2) or a failure the user must act on (``status=1``): printed as
    one line, without a traceback."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- notebooks
def list_notebooks(folder: Path | None = None) -> list[Path]:
    folder = folder or notebooks_dir()
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(only: list[str] | None, folder: Path | None = None) -> list[Path]:
    notebooks = list_notebooks(folder)
    if not only:
        return notebooks
    by_number = {p.name[:2]: p for p in notebooks}
    wanted = []
    for key in only:
        key = key.zfill(2) if key.isdigit() else key
        match = by_number.get(key[:2]) if key[:2].isdigit() else None
        if match is None:
            raise CliError(f"no notebook {key!r}; valid: {', '.join(sorted(by_number))} "
                           f"({', '.join(p.stem for p in notebooks)})")  # fmt: skip
        if match not in wanted:
            wanted.append(match)
    return wanted


def notebook_parameters(path: Path) -> dict[str, dict]:
    """The names declared in the notebook's ``parameters`` cell (via papermill's inspector)."""
    import papermill

    try:
        return dict(papermill.inspect_notebook(str(path)))
    except Exception as exc:  # unreadable JSON, no kernel name ...: the notebook, not the user, is at fault
        raise CliError(f"{path.name}: cannot read its parameters ({type(exc).__name__}: {exc})", status=1) from None


def parameter_specs(path: Path) -> dict[str, nbparams.ParamSpec]:
    """Each declared parameter's type and allowed values (:mod:`zfhelpers.parameters`)."""
    try:
        specs = {name: nbparams.spec_from_inspection(e) for name, e in notebook_parameters(path).items()}
    except nbparams.ParameterError as exc:
        raise CliError(f"{path.name}: {exc}", status=1) from None
    if "profile" in specs and specs["profile"].choices is None:
        specs["profile"] = nbparams.ParamSpec(**{**specs["profile"].__dict__, "choices": PROFILES})
    return specs


def parse_value(text: str):
    """``-p`` values as papermill infers them: numbers, booleans, lists via YAML; else string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if value is None and text.strip().lower() not in ("null", "none", "~") else value


def load_presets(folder: Path | None = None) -> dict:
    path = (folder or notebooks_dir()) / PRESETS_FILE
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def build_parameters(notebooks: list[Path], user: dict, preset: str | None, profile: str | None,
                     folder: Path | None = None, raw: dict | None = None) -> dict[Path, dict]:  # fmt: skip
    """Per-notebook parameters: preset < profile < user ``-p``, each checked against the notebook's
    declared types and ranges. Unknown names and disallowed values are errors naming the notebook,
    the parameter, the value and what is allowed (``raw``: the ``-p`` texts as typed)."""
    presets = load_presets(folder)
    if preset is not None and preset not in presets:
        raise CliError(f"unknown preset {preset!r}; valid presets: {', '.join(presets) or '(none)'}")
    raw = raw or {}
    result, problems = {}, []
    for nb in notebooks:
        specs = parameter_specs(nb)
        params = dict((presets.get(preset) or {}).get(nb.name[:2], {})) if preset else {}
        origin = dict.fromkeys(params, f"preset {preset}")
        if profile is not None:
            params["profile"], origin["profile"] = profile, "--profile"
        params.update(user)
        origin.update(dict.fromkeys(user, "-p"))
        params["interactive"] = False
        unknown = sorted(set(params) - set(specs))
        if unknown:
            raise CliError(f"{nb.name}: unknown parameter(s) {', '.join(unknown)}; "
                           f"valid parameters: {', '.join(specs)}")  # fmt: skip
        for name, value in params.items():
            spec = specs[name]
            try:
                params[name] = nbparams.check(spec, value, raw.get(name) if origin.get(name) == "-p" else None)
            except nbparams.ParameterError as exc:
                where = origin.get(name, "the CLI")
                given = f"-p {name} {raw[name]!r}" if where == "-p" and name in raw else f"{name} = {value!r} ({where})"
                problems.append(f"{nb.stem}: {given} is not allowed; {exc} (default {spec.default!r})")
        result[nb] = params
    if problems:
        raise CliError("\n       ".join(problems))
    return result


def ensure_kernel() -> Path:
    """Register a ``python3`` kernelspec for *this* interpreter in ``build/jupyter`` and put that
    folder first on JUPYTER_PATH, so no user-level ``python3`` kernel elsewhere is picked up."""
    root = build_dir() / "jupyter"
    spec_dir = root / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        # CRITICAL: hide ipykernel's start-up chatter (TCP notice, shutdown interrupt); cell
        # errors still reach papermill as messages.
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--log-level=CRITICAL"],
        "display_name": "Python 3 (zfhelpers)",
        "language": "python",
        "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    paths = [str(root)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    os.environ["JUPYTER_PATH"] = os.pathsep.join(paths)
    return spec_dir


def new_run_dir() -> Path:
    """``build/runs/<time>-p<pid>``: this run's manifests, executed notebooks and summary, apart
    from any other run (two concurrent ``figures`` runs never count each other's figures)."""
    root = build_dir() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    for old in sorted(root.iterdir())[:-KEEP_RUNS]:  # names start with the time: oldest first
        pid = old.name.split("-p")[-1].split("-")[0]
        if old.is_dir() and not (pid.isdigit() and pid_alive(int(pid))):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root, prefix=time.strftime("%Y%m%d-%H%M%S") + f"-p{os.getpid()}-"))


def stage(nb: Path) -> Path:
    """A staging folder inside the figures folder (same file system: publishing is a rename per
    file); its name ends in ``.part`` with our pid, so a killed run's is cleaned by the next."""
    out = figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out, prefix=f".staging-{nb.stem}.p{os.getpid()}.", suffix=".part"))


def clean_stale(*extra: Path) -> None:
    """Remove what killed runs left behind: ``.part`` files and staging folders of dead processes."""
    removed = clean_stale_parts([figures_dir(), build_dir(), *extra])
    if removed:
        print(f"cleaned {len(removed)} stale temporary file(s) left by interrupted runs", flush=True)


def execute_staged(nb: Path, params: dict, output: Path, manifest: Path, timeout: int, preset: str | None):
    """Run one notebook with papermill, its figures and results staged, and publish them only on
    success (an interrupt or a failure discards them). Returns (error or None, manifest records)."""
    import papermill

    staging = stage(nb)
    env = {MANIFEST_ENV: str(manifest), PRESET_ENV: preset or "quick", STAGING_ENV: str(staging)}
    os.environ.update(env)
    error = None
    try:
        try:
            papermill.execute_notebook(
                str(nb), str(output), parameters=params, kernel_name="python3",
                cwd=str(nb.parent), progress_bar=False, log_output=False, start_timeout=180,
                execution_timeout=timeout,
            )  # fmt: skip
        except Exception as exc:  # report and go on with the other notebooks
            text = str(exc).strip()
            error = f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}"
        finally:
            for key in env:
                os.environ.pop(key, None)
        if error is None:
            publish(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    records = [json.loads(line) for line in manifest.read_text().splitlines()] if manifest.exists() else []
    return error, records


def run_notebooks(plan: dict[Path, dict], timeout: int = CELL_TIMEOUT_S, preset: str | None = None,
                  run_dir: Path | None = None) -> list[dict]:  # fmt: skip
    ensure_kernel()
    run_dir = run_dir or new_run_dir()
    (run_dir / "executed").mkdir(parents=True, exist_ok=True)
    (run_dir / "manifests").mkdir(exist_ok=True)
    rows = []
    for i, (nb, params) in enumerate(plan.items(), 1):
        shown = " ".join(f"{k}={v!r}" for k, v in params.items())
        print(f"[{i}/{len(plan)}] {nb.stem}  ({shown})", flush=True)
        start = time.perf_counter()
        error, records = execute_staged(nb, params, run_dir / "executed" / nb.name,
                                        run_dir / "manifests" / f"{nb.stem}.jsonl", timeout, preset)  # fmt: skip
        seconds = time.perf_counter() - start
        row = {
            "notebook": nb.stem,
            "ok": error is None,
            "seconds": round(seconds, 1),
            "figures": [r["name"] for r in records] if error is None else [],
            "discarded": [] if error is None else [r["name"] for r in records],
            "models": sorted({r["model"] for r in records}),
            "data": sorted({r["data"] for r in records}),
            "error": error,
        }
        rows.append(row)
        if error is None:
            print(f"      ok in {seconds:.1f} s, {len(records)} figure(s)", flush=True)
        else:
            print(f"      FAILED ({error}) in {seconds:.1f} s; {len(records)} new figure(s) discarded, "
                  "the previous ones kept", flush=True)  # fmt: skip
    return rows


def print_summary(rows: list[dict], budget: float | None = None) -> None:
    """One line per notebook; with ``budget`` (seconds), notebooks that took longer are marked."""
    print("\nSummary (figures in " + str(figures_dir()) + ")")
    print(f"{'notebook':34} {'status':7} {'seconds':>8} {'figs':>4}  model / data")
    for r in rows:
        models = "; ".join(r["models"]) or "-"
        data = "; ".join(r["data"]) or "-"
        over = budget is not None and r["seconds"] > budget
        status = ("ok" if not over else "SLOW") if r["ok"] else "FAILED"
        print(f"{r['notebook']:34} {status:7} {r['seconds']:8.1f} "
              f"{len(r['figures']):4d}  {models} / {data}")  # fmt: skip
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':34} {'':7} {total:8.1f} {sum(len(r['figures']) for r in rows):4d}")
    if budget is not None:
        slow = [r["notebook"] for r in rows if r["seconds"] > budget]
        print(f"budget {budget:g} s per notebook: " + (f"over in {', '.join(slow)}" if slow else "all within"))


def use_folder(plan: dict[Path, dict], root: Path) -> None:
    """``--data PATH``: the image folder becomes the scan set of every notebook that takes one
    (a ``dataset`` parameter whose empty default means the profile's scan set)."""
    if not root.is_dir():
        raise CliError(f"--data {root}: not a folder (give an ImageFolder of class sub-folders, or a flat folder)")
    # only where `dataset` defaults to "" (the profile's scan set): a notebook whose dataset is the twins'
    # Fashion-MNIST keeps it
    takers = [nb for nb in plan if (spec := parameter_specs(nb).get("dataset")) is not None and spec.default == ""]
    if not takers:
        raise CliError("--data: none of the selected notebooks takes a dataset (a `dataset` parameter)")
    for nb in takers:
        plan[nb]["dataset"] = str(root.resolve())


@contextlib.contextmanager
def stand_in(args):
    """``--stand-in random``: the paper dry run. The notebooks' paper models get seeded random
    weights (:func:`zfhelpers.models.zoo.load_model`), every figure a banner, and everything goes
    under ``build/paper-dry-run/`` — never into the committed ``figures/``."""
    if not args.stand_in:
        yield
        return
    if args.profile != "paper":
        raise CliError("--stand-in random replaces the paper models' weights; use it with --profile paper")
    committed = (REPO_ROOT / "figures").resolve()
    if os.environ.get("ZFHELPERS_FIGURES_DIR") and figures_dir() == committed:
        raise CliError(f"--stand-in never writes into {committed}; point ZFHELPERS_FIGURES_DIR elsewhere")
    saved = {k: os.environ.get(k) for k in (STAND_IN_ENV, "ZFHELPERS_FIGURES_DIR")}
    if figures_dir() == committed:
        os.environ["ZFHELPERS_FIGURES_DIR"] = str(build_dir() / "paper-dry-run" / "figures")
    os.environ[STAND_IN_ENV] = args.stand_in
    print(f"DRY RUN: paper models with {args.stand_in}-weight stand-ins; figures in {figures_dir()}", flush=True)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cmd_synthetic_folder(args) -> int:
    from .data.synthetic import make_image_folder

    paths = make_image_folder(args.out, classes=args.classes, per_class=args.per_class, size=args.size, seed=args.seed)
    print(f"wrote {len(paths)} JPEGs in {args.classes} class folders under {args.out}")
    return 0


def cmd_figures(args) -> int:
    folder = Path(args.notebooks) if args.notebooks else notebooks_dir()
    if args.timeout <= 0:
        raise CliError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    notebooks = select_notebooks(args.only, folder)
    if not notebooks:
        raise CliError(f"no notebooks found in {folder}")
    raw = dict(args.param or [])
    user = {name: parse_value(value) for name, value in raw.items()}
    plan = build_parameters(notebooks, user, args.preset, args.profile, folder, raw=raw)
    if args.data:
        use_folder(plan, Path(args.data))
    with stand_in(args):
        clean_stale()
        run_dir = new_run_dir()
        rows = run_notebooks(plan, timeout=args.timeout, preset=args.preset, run_dir=run_dir)
        print_summary(rows, args.budget)
    text = json.dumps(rows, indent=1)
    atomic_write_text(run_dir / "summary.json", text)
    atomic_write_text(build_dir() / "figures_summary.json", text)  # the latest run's, for convenience
    failed = [r["notebook"] for r in rows if not r["ok"]]
    if failed:
        print(f"\nFAILED notebooks: {', '.join(failed)} (executed copies in {run_dir / 'executed'})",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


# --------------------------------------------------------------------------- setup / models
def cmd_setup(args) -> int:
    from .models import weights

    bad = [k for k in args.weights if k not in weights.SOURCES]
    if bad:
        raise CliError(f"unknown weights {', '.join(map(repr, bad))}; valid: {', '.join(weights.SOURCES)}")
    clean_stale(*weights.weight_folders())
    failed = False
    for key in args.weights:
        try:
            path = weights.ensure(key, download=True)
            info = weights.provenance(key)
            print(f"weights {key:14} ok  {path}  sha256 {info['sha256'][:16]}…")
        except weights.WeightsError as exc:
            print(f"weights {key:14} UNAVAILABLE: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def cmd_models(args) -> int:
    """Each model of the profile with the state of its weight file, sha256 verified."""
    from .models.zoo import availability

    rows = availability(args.profile)
    for row in rows:
        state = "available" if row["state"] == "ready" else row["state"]
        print(f"{row['model']:14} {row['profile']:8} {state:10} {row['weights']:32} {row['how']}")
    return 1 if any(r["state"] == "corrupt" for r in rows) else 0


def cmd_train_twins(args) -> int:
    """Train (resuming where a run stopped) and export the committed twins (ZF §3 at CPU scale)."""
    from .models import trained

    variants = args.variants or list(trained.VARIANTS)
    bad = [v for v in variants if v not in trained.VARIANTS]
    if bad:
        raise CliError(f"unknown twin(s) {', '.join(map(repr, bad))}; valid: {', '.join(trained.VARIANTS)}")
    clean_stale(build_dir() / "twins", data_dir() / "twins")
    for variant in variants:
        start = time.perf_counter()
        try:
            result = trained.train_variant(variant, progress=not args.quiet)
        except FileNotFoundError as exc:  # the data set is not installed: say what to do
            raise CliError(str(exc), status=1) from None
        last = result["history"][-1] if result["history"] else {}
        print(f"{variant}: epoch {last.get('epoch')} test accuracy {last.get('test_accuracy', float('nan')):.4f}"
              f" ({time.perf_counter() - start:.0f} s)")  # fmt: skip
        if not args.no_export:
            for path in trained.export(variant):
                print(f"  wrote {path}")
    return 0


def cmd_claims(args) -> int:
    """Print the paper-vs-here table; with --check, verify README and notebook markdown against it."""
    from .claims import check, record, table

    folder = Path(args.results) if args.results else figures_dir() / "results"
    results = record.load_folder(folder, args.profile)
    if not results:
        raise CliError(f"no results files for profile {args.profile!r} in {folder}; run `make figures` first")
    readme = REPO_ROOT / "README.md"
    if args.write_readme:
        text = readme.read_text()
        if check.BEGIN not in text:
            raise CliError(f"README.md has no {check.BEGIN!r} … {check.END!r} section to fill")
        start, end = text.index(check.BEGIN), text.index(check.END) + len(check.END)
        readme.write_text(text[:start] + check.readme_block(results) + text[end:])
        print(f"wrote the claims table ({sum(len(r.claims) for r in results.values())} claims) into {readme}")
    if args.check:
        quick = record.load_folder(notebooks_dir() / "results")
        values = check.supported([*results.values(), *quick.values()])
        problems = check.check_readme(readme.read_text(), results, values)
        problems += check.check_notebooks(list_notebooks(), values)
        for p in problems:
            print(f"claims --check: {p}", file=sys.stderr)
        print(f"claims --check: {len(problems)} problem(s) in README.md and {len(list_notebooks())} notebooks")
        return 1 if problems else 0
    if not args.write_readme:
        print(table.markdown(results) if args.markdown else table.text(results))
        print("\nverdicts:", ", ".join(f"{k} {v}" for k, v in sorted(table.counts(results).items())))
    return 0


def strip_notebook(nb) -> None:
    """Drop volatile metadata (timings, papermill, widget state); keep outputs for nbval."""
    for key in ("widgets", "papermill", "jupytext"):
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in ("execution", "papermill", "ExecuteTime", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)


# What refresh-notebooks runs with: the notebooks' defaults except these. Committed notebooks must
# not hold live widgets, so the explorer cells run non-interactively (they store a short note).
REFRESH_PARAMETERS = {"interactive": False}


def parameters_cell(nb, name: str):
    """The cell tagged ``parameters`` (papermill's convention); every numbered notebook has one."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell
    raise CliError(f"{name}: no cell tagged 'parameters'")


def cmd_refresh(args) -> int:
    """Execute notebooks in place with their default parameters (what nbval replays), except
    :data:`REFRESH_PARAMETERS`, which are appended to the parameters cell for the run only. A
    notebook that fails is left as it was (its figures and results discarded) and named at the end."""
    os.environ.setdefault("ZFHELPERS_FIGURES_DIR", str(build_dir() / "refresh-figures"))
    folder = Path(args.notebooks) if args.notebooks else None
    notebooks = select_notebooks(args.only, folder)
    ensure_kernel()
    clean_stale_parts([folder or notebooks_dir()], recursive=False)
    clean_stale()
    run_dir = new_run_dir()
    failed = []
    for nb_path in notebooks:
        start = time.perf_counter()
        error = refresh_one(nb_path, folder, run_dir)
        if error:
            failed.append(nb_path.stem)
            print(f"FAILED {nb_path.name} ({error}); left unchanged (executed copy in {run_dir})", file=sys.stderr)
        else:
            print(f"refreshed {nb_path.name} in {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


def refresh_one(nb_path: Path, folder: Path | None, run_dir: Path) -> str | None:
    """Execute one notebook in place (staged figures and results); return the error, if any."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    reference = (folder or notebooks_dir()) / "results"  # the quick run's claims: what a re-run must reproduce
    nb = nbformat.read(nb_path, as_version=4)
    params = parameters_cell(nb, nb_path.name)
    source = params.source
    params.source = (
        source.rstrip("\n")
        + "\n"
        + "".join(f"{k} = {v!r}  # set by refresh-notebooks\n" for k, v in REFRESH_PARAMETERS.items())
    )
    staging = stage(nb_path)
    env = {PRESET_ENV: "quick", STAGING_ENV: str(staging)}
    os.environ.update(env)
    # store_widget_state=False breaks nbclient's Output-widget capture (KeyError on the comm id), so
    # widget state is recorded and then stripped. coalesce_streams keeps only a text bar's last line.
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", coalesce_streams=True,
                            resources={"metadata": {"path": str(nb_path.parent)}})  # fmt: skip
    try:
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
            nbformat.write(nb, run_dir / nb_path.name)
            text = str(exc).strip()
            return f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}"
        finally:
            params.source = source
            for key in env:
                os.environ.pop(key, None)
        for stale in (figures_dir() / "results").glob(f"{nb_path.stem}.*.json"):
            stale.unlink()  # the results of this notebook are exactly the new run's
        publish(staging)
    finally:  # a failure or an interrupt discards what the run staged
        shutil.rmtree(staging, ignore_errors=True)
    strip_notebook(nb)
    atomic_write(nb_path, lambda tmp: nbformat.write(nb, tmp))
    reference.mkdir(exist_ok=True)
    for res in (figures_dir() / "results").glob(f"{nb_path.stem}.*.json"):
        shutil.copyfile(res, reference / res.name)
    return None


# --------------------------------------------------------------------------- scan (ZF Fig. 2 over a folder)
def scan_model_names() -> list[str]:
    """Models ``scan --model`` accepts: the zoo's, and the twins trained here (``twin_<variant>``)."""
    from .models.trained import VARIANTS
    from .models.zoo import SPECS

    return list(SPECS) + [v if v == "parts_vgg" else f"twin_{v}" for v in VARIANTS]


def load_scan_model(name: str):
    """The model called ``name`` (paper-profile zoo models need their weights on this machine)."""
    from .models import trained, weights
    from .models.zoo import SPECS, load_model

    valid = scan_model_names()
    if name not in valid:
        raise CliError(f"unknown model {name!r}; valid models: {', '.join(valid)}")
    try:
        if name in SPECS:
            return load_model(name, SPECS[name].profile, download=False)
        return trained.load_twin(name.removeprefix("twin_"))
    except (weights.WeightsError, FileNotFoundError, ValueError) as exc:
        raise CliError(f"cannot load model {name!r}: {exc}") from exc


def check_scan_args(args, lm) -> None:
    """User errors of ``scan`` as :class:`CliError` (exit 2, no traceback)."""
    if not Path(args.data).is_dir():
        raise CliError(f"--data {args.data}: no such folder (pass a folder of images, class sub-folders or flat)")
    unknown = [layer for layer in args.layers if layer not in lm.layers]
    if unknown:
        raise CliError(f"unknown layer(s) {', '.join(unknown)} for {lm.name}; valid layers: {', '.join(lm.layers)}")
    for name in ("k", "batch_size"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(args, name)}")
    if args.workers is not None and args.workers < 0:
        raise CliError(f"--workers must be ≥ 0, got {args.workers}")
    if Path(args.out).is_dir():
        raise CliError(f"--out {args.out} is a folder; pass a file name such as result.json")


def cmd_scan(args) -> int:
    """Top-k per channel over an image folder; under ``torchrun`` sharded over the ranks."""
    from .checks import InputError
    from .data.images import ImageLoadError
    from .distributed import run_scan

    lm = load_scan_model(args.model)
    check_scan_args(args, lm)
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else build_dir() / "scans" / Path(args.out).stem
    try:
        run = run_scan(lm, Path(args.data), layers=args.layers, k=args.k, out=Path(args.out),
                       batch_size=args.batch_size, workers=args.workers, device=args.device,
                       channels_last=args.channels_last, autocast=None if args.autocast == "off" else args.autocast,
                       skip_unreadable=args.skip_unreadable, checkpoint_dir=None if args.no_checkpoint else ckpt,
                       progress=not args.quiet, stop_after=args.stop_after)  # fmt: skip
    except (InputError, ImageLoadError) as exc:
        raise CliError(str(exc)) from exc
    if run is not None:
        data = run.document["data"]
        rate = f", {run.images / run.seconds:.0f} images/s" if run.images and run.seconds > 0 else ""
        print(f"wrote {args.out}: {', '.join(args.layers)} of {lm.name}, top-{args.k} over {data['images']} images"
              f" ({len(data['skipped'])} skipped){rate}")  # fmt: skip
    return 0


def add_scan_parser(sub) -> None:
    p = sub.add_parser("scan", help="top-k activations per channel over an image folder (ZF Fig. 2); torchrun-ready",
                       description="Top-k activations per channel over an image folder, streamed through DataLoader "
                       "workers; under `torchrun --nproc-per-node N -m zfhelpers scan …` sharded over N processes "
                       "with the same RESULT.json. See docs/scanning.md.")  # fmt: skip
    p.add_argument("--data", required=True, help="folder of images (class sub-folders as ImageFolder, or flat)")
    p.add_argument("--model", required=True, help="zoo model or twin (e.g. mobilenet_v2, alexnet, twin_zf)")
    p.add_argument("--layers", required=True, nargs="+", metavar="LAYER", help="layers to scan in one pass")
    p.add_argument("--k", type=int, default=9, help="entries per channel (default 9, as ZF)")
    p.add_argument("--out", required=True, help="RESULT.json to write (atomically)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=None, help="DataLoader decode processes per rank (default: "
                   "this rank's CPUs less one on CPU, all on GPU, at most 8)")  # fmt: skip
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format (faster convolutions on GPUs)")
    p.add_argument("--autocast", default="off", choices=["off", "bf16", "fp16"],
                   help="mixed precision of the forward pass (changes values ~1e-2 relative; default off)")  # fmt: skip
    p.add_argument("--skip-unreadable", action="store_true",
                   help="skip (and list in the result) files that cannot be decoded, instead of stopping")  # fmt: skip
    p.add_argument("--checkpoint-dir", default=None, help="per-rank checkpoints (default build/scans/<out stem>)")
    p.add_argument("--no-checkpoint", action="store_true", help="do not checkpoint (no resume after a kill)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)  # tests: stop as a kill would
    p.set_defaults(func=cmd_scan)


def make_parser() -> argparse.ArgumentParser:
    # long: declarations of every subcommand, read top to bottom
    parser = argparse.ArgumentParser(prog="python -m zfhelpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("figures", help="regenerate figures by executing the numbered notebooks")
    p.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers to run (default: all)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override a notebook parameter (repeatable)")  # fmt: skip
    p.add_argument(
        "--profile",
        choices=["offline", "paper"],
        default=None,
        help="model profile passed to every notebook (default: the notebooks' own, offline)",
    )
    p.add_argument("--preset", default=None, help=f"named parameter set from notebooks/{PRESETS_FILE} (e.g. full)")
    p.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="per-cell timeout in seconds")
    p.add_argument("--notebooks", default=None, help="folder of NN_*.ipynb (default: the repository's notebooks/)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="image folder (ImageFolder or flat): the scan set of notebooks with a `dataset`")  # fmt: skip
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="mark notebooks that take longer (make course: 60)")  # fmt: skip
    p.add_argument("--stand-in", default=None, choices=["random"],
                   help="paper dry run: the paper models get seeded random weights, every figure a banner, "
                        "output under build/paper-dry-run/ (needs --profile paper)")  # fmt: skip
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("synthetic-folder", help="write a small ImageFolder of photo crops (for the paper dry run)")
    p.add_argument("out", help="folder to write (class sub-folders)")
    p.add_argument("--classes", type=int, default=4, help="class folders, one per sample photo (default 4)")
    p.add_argument("--per-class", type=int, default=8, help="JPEGs per class (default 8)")
    p.add_argument("--size", type=int, default=160, help="side in pixels (default 160)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synthetic_folder)

    p = sub.add_parser("setup", help="fetch and verify the offline weights")
    p.add_argument(
        "--weights",
        nargs="+",
        default=["mobilenet_v2", "vgg16_hed"],
        help="weight keys (mobilenet_v2, vgg16_hed, alexnet, vgg16, vgg19)",
    )
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("models", help="list the zoo and which weights are on this machine")
    p.add_argument("--profile", choices=["offline", "paper"], default="paper")
    p.set_defaults(func=cmd_models)

    from .models.trained import VARIANTS

    p = sub.add_parser("train-twins", help="train the ZF/AlexNet twins on Fashion-MNIST and export data/twins")
    p.add_argument("variants", nargs="*", metavar="VARIANT", help=f"which twins: {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--no-export", action="store_true", help="train only; leave data/twins unchanged")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train_twins)

    p = sub.add_parser("claims", help="the paper-vs-here table of every measured claim (and --check README)")
    p.add_argument("--results", default=None, help="folder of results files (default: <figures>/results)")
    p.add_argument("--profile", choices=["offline", "paper"], default="offline")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument(
        "--check", action="store_true", help="exit 1 when README or a notebook quotes a number no results file supports"
    )
    p.add_argument("--write-readme", action="store_true", help="regenerate README's results section")
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("refresh-notebooks", help="(developers) execute notebooks in place with defaults")
    p.add_argument("--only", nargs="+", metavar="NN")
    p.add_argument("--notebooks", default=None, help="folder of NN_*.ipynb (default: the repository's notebooks/)")
    p.set_defaults(func=cmd_refresh)

    add_scan_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
