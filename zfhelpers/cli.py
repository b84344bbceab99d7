"""Command line: ``python -m zfhelpers {setup,models,figures,refresh-notebooks,scan,…}``.

``figures`` executes the numbered notebooks with papermill (kernel ``python3`` bound to this
interpreter, cwd ``notebooks/``, a per-cell timeout, executed copies under ``build/executed/``)
and prints a line per notebook plus a closing summary."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

from .notebook.session import PRESET_ENV
from .paths import REPO_ROOT, build_dir, figures_dir, notebooks_dir

CELL_TIMEOUT_S = 1800
PRESETS_FILE = "presets.yaml"
# Parameters the CLI itself sets; every notebook must declare them.
CLI_PARAMETERS = ("profile", "interactive")


class CliError(Exception):
    """A user error: printed without a traceback, exit status 2."""


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

    return dict(papermill.inspect_notebook(str(path)))


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
                     folder: Path | None = None) -> dict[Path, dict]:  # fmt: skip
    """Per-notebook parameters: preset < profile < user ``-p``; unknown names are errors."""
    presets = load_presets(folder)
    if preset is not None and preset not in presets:
        raise CliError(f"unknown preset {preset!r}; valid presets: {', '.join(presets) or '(none)'}")
    result = {}
    for nb in notebooks:
        declared = notebook_parameters(nb)
        params = dict((presets.get(preset) or {}).get(nb.name[:2], {})) if preset else {}
        if profile is not None:
            params["profile"] = profile
        params.update(user)
        params["interactive"] = False
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise CliError(f"{nb.name}: unknown parameter(s) {', '.join(unknown)}; "
                           f"valid parameters: {', '.join(declared)}")  # fmt: skip
        result[nb] = params
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


def run_notebooks(plan: dict[Path, dict], timeout: int = CELL_TIMEOUT_S, preset: str | None = None) -> list[dict]:
    import papermill

    ensure_kernel()
    executed = build_dir() / "executed"
    manifests = build_dir() / "manifests"
    executed.mkdir(parents=True, exist_ok=True)
    manifests.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (nb, params) in enumerate(plan.items(), 1):
        manifest = manifests / f"{nb.stem}.jsonl"
        manifest.unlink(missing_ok=True)
        os.environ["ZFHELPERS_MANIFEST"] = str(manifest)
        os.environ[PRESET_ENV] = preset or "quick"
        shown = " ".join(f"{k}={v!r}" for k, v in params.items())
        print(f"[{i}/{len(plan)}] {nb.stem}  ({shown})", flush=True)
        start = time.perf_counter()
        error = None
        try:
            papermill.execute_notebook(
                str(nb), str(executed / nb.name), parameters=params, kernel_name="python3",
                cwd=str(nb.parent), progress_bar=False, log_output=False, start_timeout=180,
                execution_timeout=timeout,
            )  # fmt: skip
        except Exception as exc:  # report and go on with the other notebooks
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        finally:
            os.environ.pop("ZFHELPERS_MANIFEST", None)
            os.environ.pop(PRESET_ENV, None)
        seconds = time.perf_counter() - start
        records = [json.loads(line) for line in manifest.read_text().splitlines()] if manifest.exists() else []
        row = {
            "notebook": nb.stem,
            "ok": error is None,
            "seconds": round(seconds, 1),
            "figures": [r["name"] for r in records],
            "models": sorted({r["model"] for r in records}),
            "data": sorted({r["data"] for r in records}),
            "error": error,
        }
        rows.append(row)
        status = "ok" if error is None else f"FAILED ({error})"
        print(f"      {status} in {seconds:.1f} s, {len(records)} figure(s)", flush=True)
    return rows


def print_summary(rows: list[dict]) -> None:
    print("\nSummary (figures in " + str(figures_dir()) + ")")
    print(f"{'notebook':34} {'status':7} {'seconds':>8} {'figs':>4}  model / data")
    for r in rows:
        models = "; ".join(r["models"]) or "-"
        data = "; ".join(r["data"]) or "-"
        print(f"{r['notebook']:34} {'ok' if r['ok'] else 'FAILED':7} {r['seconds']:8.1f} "
              f"{len(r['figures']):4d}  {models} / {data}")  # fmt: skip
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':34} {'':7} {total:8.1f} {sum(len(r['figures']) for r in rows):4d}")


def cmd_figures(args) -> int:
    folder = Path(args.notebooks) if args.notebooks else notebooks_dir()
    notebooks = select_notebooks(args.only, folder)
    if not notebooks:
        raise CliError(f"no notebooks found in {folder}")
    user = {name: parse_value(value) for name, value in (args.param or [])}
    plan = build_parameters(notebooks, user, args.preset, args.profile, folder)
    rows = run_notebooks(plan, timeout=args.timeout, preset=args.preset)
    print_summary(rows)
    summary = build_dir() / "figures_summary.json"
    summary.write_text(json.dumps(rows, indent=1))
    failed = [r["notebook"] for r in rows if not r["ok"]]
    if failed:
        print(f"\nFAILED notebooks: {', '.join(failed)} (executed copies in {build_dir() / 'executed'})",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


# --------------------------------------------------------------------------- setup / models
def cmd_setup(args) -> int:
    from .models import weights

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
    from .models.zoo import availability

    for row in availability(args.profile):
        state = "available" if row["available"] else "missing"
        print(f"{row['model']:14} {row['profile']:8} {state:10} {row['weights']:32} {row['how']}")
    return 0


def cmd_train_twins(args) -> int:
    """Train (resuming where a run stopped) and export the committed twins (ZF §3 at CPU scale)."""
    from .models import trained

    for variant in args.variants or list(trained.VARIANTS):
        trained.check_variant(variant)
    for variant in args.variants or list(trained.VARIANTS):
        start = time.perf_counter()
        result = trained.train_variant(variant, progress=not args.quiet)
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
    :data:`REFRESH_PARAMETERS`, which are appended to the parameters cell for the run only."""
    import shutil

    import nbformat
    from nbclient import NotebookClient

    ensure_kernel()
    os.environ.setdefault("ZFHELPERS_FIGURES_DIR", str(build_dir() / "refresh-figures"))
    os.environ[PRESET_ENV] = "quick"
    folder = Path(args.notebooks) if args.notebooks else None
    reference = (folder or notebooks_dir()) / "results"  # the quick run's claims: what a re-run must reproduce
    for nb_path in select_notebooks(args.only, folder):
        start = time.perf_counter()
        for stale in (figures_dir() / "results").glob(f"{nb_path.stem}.*.json"):
            stale.unlink()
        nb = nbformat.read(nb_path, as_version=4)
        params = parameters_cell(nb, nb_path.name)
        source = params.source
        params.source = source.rstrip("\n") + "\n" + "".join(
            f"{k} = {v!r}  # set by refresh-notebooks\n" for k, v in REFRESH_PARAMETERS.items()
        )
        # store_widget_state=False breaks nbclient's Output-widget capture (KeyError on the comm
        # id), so widget state is recorded and then stripped. coalesce_streams keeps only the
        # final line of a text progress bar.
        client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", coalesce_streams=True,
                                resources={"metadata": {"path": str(nb_path.parent)}})  # fmt: skip
        try:
            client.execute()
        finally:
            params.source = source
        strip_notebook(nb)
        tmp = nb_path.with_suffix(".ipynb.part")
        nbformat.write(nb, tmp)
        os.replace(tmp, nb_path)
        reference.mkdir(exist_ok=True)
        for res in (figures_dir() / "results").glob(f"{nb_path.stem}.*.json"):
            shutil.copyfile(res, reference / res.name)
        print(f"refreshed {nb_path.name} in {time.perf_counter() - start:.1f} s")
    return 0


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
    parser = argparse.ArgumentParser(prog="python -m zfhelpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("figures", help="regenerate figures by executing the numbered notebooks")
    p.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers to run (default: all)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override a notebook parameter (repeatable)")  # fmt: skip
    p.add_argument("--profile", choices=["offline", "paper"], default=None,
                   help="model profile passed to every notebook (default: the notebooks' own, offline)")
    p.add_argument("--preset", default=None, help=f"named parameter set from notebooks/{PRESETS_FILE} (e.g. full)")
    p.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="per-cell timeout in seconds")
    p.add_argument("--notebooks", default=None, help="folder of NN_*.ipynb (default: the repository's notebooks/)")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("setup", help="fetch and verify the offline weights")
    p.add_argument("--weights", nargs="+", default=["mobilenet_v2", "vgg16_hed"],
                   help="weight keys (mobilenet_v2, vgg16_hed, alexnet, vgg16, vgg19)")
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
    p.add_argument("--check", action="store_true",
                   help="exit 1 when README or a notebook quotes a number no results file supports")
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
        return 2
