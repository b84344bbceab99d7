"""tests/ui drives JupyterLab in a real browser; `make unit` skips it, `make ui-test` runs it."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-ui"):
        return
    skip = pytest.mark.skip(reason="real-browser test: run `make ui-test` (pytest tests/ui --run-ui)")
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    from lab_harness import FILTERED_CONSOLE, TIMINGS

    if FILTERED_CONSOLE:
        terminalreporter.section("SEVERE console entries filtered as harmless")
        for line in FILTERED_CONSOLE:
            terminalreporter.write_line(line)
    if not TIMINGS:
        return
    terminalreporter.section("explorer redraws (kernel: the status line's time; seen: key press → new image)")
    for row in TIMINGS:
        kernel = f"{row['kernel_s']:5.2f} s" if "kernel_s" in row else "      "
        extra = f"  busy shown: {'yes' if row.get('busy_seen') else 'no '}" if "busy_seen" in row else ""
        note = f"  [{row['note']}]" if row.get("note") else ""
        terminalreporter.write_line(
            f"{row['notebook']:28} {row['move']:34} kernel {kernel}  seen {row['seen_s']:6.2f} s{extra}{note}"
        )
