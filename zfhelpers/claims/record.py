"""What a notebook run measured: one results file per notebook and profile, written atomically
beside its figures (``<figures>/results/<notebook>.<profile>.json``) by the run that made them.

A :class:`Claim` is one measured statement with its uncertainty, the paper number it answers (an
id in ``paper_numbers.yaml``) and a verdict. README and the notebooks quote these files only
(``python -m zfhelpers claims --check``)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import checks
from ..io import atomic_write

VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "not comparable")


@dataclass
class Claim:
    """One measured statement.

    ``value`` ± its 95 % interval ``ci`` (or a test's ``p_value``); ``tolerance`` is how far a re-run
    of the same preset on another CPU may land (absolute, in the value's unit) — the rerun test
    asserts it; ``decimals`` is how the value is quoted. ``paper`` names the paper number or claim
    compared against; ``verdict`` is one of :data:`VERDICTS`, ``reason`` says why in one line."""

    id: str
    statement: str
    value: float | None
    verdict: str
    reason: str
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    test: str | None = None
    n: int | None = None
    unit: str = ""
    decimals: int = 3
    tolerance: float = 0.0
    paper: str | None = None
    chance: float | None = None

    def __post_init__(self):
        checks.choice(self.verdict, VERDICTS, name="verdict")
        if self.value is not None and not math.isfinite(self.value):
            raise checks.InputError(f"claim {self.id}: value must be finite, got {self.value}")
        if self.ci is not None:
            self.ci = (float(self.ci[0]), float(self.ci[1]))

    def formatted(self) -> str:
        """``0.404 [0.391, 0.417]`` — the value as quoted, with its interval or p-value."""
        if self.value is None:
            return "—"
        fmt = f"{{:.{self.decimals}f}}"
        text = fmt.format(self.value) + (f" {self.unit}" if self.unit and self.unit != "%" else self.unit)
        if self.ci is not None:
            text += f" [{fmt.format(self.ci[0])}, {fmt.format(self.ci[1])}]"
        if self.p_value is not None:
            text += f" (p = {format_p(self.p_value)})"
        return text


def format_p(p: float) -> str:
    return f"{p:.1g}" if p < 0.001 else f"{p:.3f}"


@dataclass
class Results:
    """The results file of one notebook run."""

    notebook: str
    profile: str
    preset: str
    model: str = ""
    data: str = ""
    params: dict = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)

    def add(self, claim: Claim) -> Claim:
        self.claims[claim.id] = claim
        return claim

    def to_json(self) -> str:
        d = asdict(self)
        d["claims"] = [asdict(c) for c in self.claims.values()]
        return json.dumps(d, indent=1, sort_keys=False, default=_jsonable) + "\n"

    def save(self, folder: Path) -> Path:
        path = Path(folder) / f"{self.notebook}.{self.profile}.json"
        return atomic_write(path, lambda tmp: Path(tmp).write_text(self.to_json()))


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def load(path: Path) -> Results:
    raw = json.loads(Path(path).read_text())
    claims = {c["id"]: Claim(**{**c, "ci": tuple(c["ci"]) if c.get("ci") else None}) for c in raw.pop("claims")}
    return Results(**raw, claims=claims)


def load_folder(folder: Path, profile: str | None = None) -> dict[str, Results]:
    """``{notebook: Results}`` of every results file in ``folder`` (of one profile if given)."""
    out = {}
    for path in sorted(Path(folder).glob("*.json")):
        res = load(path)
        if profile is None or res.profile == profile:
            out[f"{res.notebook}.{res.profile}"] = res
    return out
