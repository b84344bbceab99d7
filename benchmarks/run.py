"""Run every benchmark script (``bench_*.py`` next to this file, found automatically) and collect
its figures of merit.

Each script prints one line per figure of merit, ``RESULT <name> <ratio> goal <goal>``: a ratio
measured side by side in one run on the same inputs, higher is better, the goal met when
ratio >= goal. This runner starts the scripts one after another (``--quick`` by default: fewer
repeats and smaller inputs, the same comparisons), shows their output, then prints the collected
RESULT lines and a summary table with ``MISSED`` beside every goal not reached. It exits non-zero
when a script fails to run (an error, a time-out, or no RESULT line); a missed goal is reported,
not a failure.

    python benchmarks/run.py [--full] [--only occlusion scan] [--timeout 900]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT = re.compile(r"^RESULT (\S+) (\S+) goal (\S+)\s*$")


@dataclass
class Run:
    script: str
    seconds: float = 0.0
    error: str | None = None
    results: list[tuple[str, float, float]] = field(default_factory=list)


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        found = [p for p in found if any(word in p.stem for word in only)]
    return found


def _echo(stream, run: Run) -> None:
    for line in stream:
        print(f"  | {line}", end="", flush=True)
        match = RESULT.match(line)
        if match:
            run.results.append((match[1], float(match[2]), float(match[3])))


def run_script(path: Path, quick: bool, timeout: float) -> Run:
    """Run one script, echoing its output as it comes, and parse its RESULT lines."""
    run = Run(path.name)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, str(path)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    with subprocess.Popen(command, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:  # fmt: skip
        reader = threading.Thread(target=_echo, args=(proc.stdout, run), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # only the process this runner started
            proc.wait()
            run.error = f"timed out after {timeout:.0f} s"
        reader.join()
    run.seconds = time.perf_counter() - start
    if run.error is None and proc.returncode != 0:
        run.error = f"exit status {proc.returncode}"
    elif run.error is None and not run.results:
        run.error = "no RESULT line"
    return run


def summary(runs: list[Run]) -> str:
    rows = [("figure of merit", "ratio", "goal", "status")]
    for run in runs:
        for name, ratio, goal in run.results:
            rows.append((name, f"{ratio:.2f}", f"{goal:g}", "ok" if ratio >= goal else "MISSED"))
        if run.error:
            rows.append((run.script, "-", "-", f"FAILED: {run.error}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines += [f"{run.script}: {run.seconds:.0f} s" + (f" ({run.error})" if run.error else "") for run in runs]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the scripts' full settings instead of --quick")
    parser.add_argument("--only", nargs="+", help="run only scripts whose name contains one of these words")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per script")
    args = parser.parse_args()
    paths = scripts(args.only)
    if not paths:
        parser.error(f"no benchmark script matches {args.only}; scripts: "
                     + ", ".join(p.stem for p in scripts(None)))  # fmt: skip
    runs = []
    for path in paths:
        print(f"== {path.name}{'' if args.full else ' --quick'}", flush=True)
        runs.append(run_script(path, quick=not args.full, timeout=args.timeout))
    print()
    for run in runs:
        for name, ratio, goal in run.results:
            print(f"RESULT {name} {ratio:.2f} goal {goal:g}")
    print()
    print(summary(runs))
    return 1 if any(run.error for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
