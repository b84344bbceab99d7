"""The registry of numbers and checkable statements the papers make (``paper_numbers.yaml``), each
with its source and whether it was checked against the paper's text; see ``docs/papers.md``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

REGISTRY = Path(__file__).with_name("paper_numbers.yaml")


@lru_cache(maxsize=1)
def registry() -> dict[str, dict]:
    raw = yaml.safe_load(REGISTRY.read_text())
    return {k: v for k, v in raw.items() if k != "papers"}


@lru_cache(maxsize=1)
def papers() -> dict[str, dict]:
    return yaml.safe_load(REGISTRY.read_text())["papers"]


def entry(key: str) -> dict:
    reg = registry()
    if key not in reg:
        raise KeyError(f"{key!r} is not in {REGISTRY.name}; add it there with its source")
    return reg[key]


def describe(key: str) -> str:
    """``0.067 ± 0.007 (ZF Table 1)`` or the statement for a qualitative claim."""
    e = entry(key)
    where = e.get("where", "")
    short = papers().get(e["paper"], {}).get("short", e["paper"])
    if e.get("value") is None:
        return f"{e.get('statement') or 'no number retrieved'} ({short} {where})".strip()
    unc = f" ± {e['uncertainty']}" if e.get("uncertainty") is not None else ""
    unit = e.get("unit") or ""
    return f"{e['value']}{unc}{unit} ({short} {where})"
