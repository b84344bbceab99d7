"""The "paper vs here" table: per notebook, each measured claim beside the paper's number or
statement, our value with its uncertainty, and the verdict."""

from __future__ import annotations

from .paper import describe
from .record import Results

COLUMNS = ("notebook", "claim", "paper", "here", "verdict")


def rows(results: dict[str, Results]) -> list[dict[str, str]]:
    out = []
    for key in sorted(results):
        res = results[key]
        for c in res.claims.values():
            out.append({
                "notebook": res.notebook,
                "claim": c.statement,
                "paper": describe(c.paper) if c.paper else "—",
                "here": c.formatted() + (f" (chance {c.chance:g})" if c.chance is not None else ""),
                "verdict": c.verdict,
                "reason": c.reason,
                "preset": res.preset,
                "model": res.model,
            })  # fmt: skip
    return out


def text(results: dict[str, Results]) -> str:
    """A plain-text table for the terminal, grouped by notebook."""
    lines, current = [], None
    for r in rows(results):
        if r["notebook"] != current:
            current = r["notebook"]
            lines.append(f"\n== {current}  (preset {r['preset']}; {r['model']})")
        lines.append(f"  [{r['verdict']}] {r['claim']}")
        lines.append(f"      here:  {r['here']}")
        lines.append(f"      paper: {r['paper']}")
        lines.append(f"      why:   {r['reason']}")
    return "\n".join(lines).lstrip("\n")


def markdown(results: dict[str, Results]) -> str:
    """The README's results section: one table, one row per claim."""
    head = "| notebook | claim | paper | here (95 % CI or p) | verdict |\n|---|---|---|---|---|"
    body = [f"| {r['notebook']} | {_cell(r['claim'])} | {_cell(r['paper'])} | {_cell(r['here'])} | "
            f"**{r['verdict']}** — {_cell(r['reason'])} |" for r in rows(results)]  # fmt: skip
    return "\n".join([head, *body])


def counts(results: dict[str, Results]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows(results):
        out[r["verdict"]] = out.get(r["verdict"], 0) + 1
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
