"""The exercise registry: a checker and a reference solution per exercise key ("NN.name")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import checks


@dataclass
class CheckResult:
    ok: bool
    message: str
    attempted: bool = True

    def __str__(self) -> str:
        mark = "✓" if self.ok else ("…" if not self.attempted else "✗")
        return f"{mark} {self.message}"


@dataclass
class Exercise:
    key: str
    notebook: str
    title: str
    checker: Callable[[Callable], CheckResult]
    solution: Callable | None = None
    #: a plausible wrong answer the checker must reject (tests prove the checker checks something)
    mistake: Callable | None = None


EXERCISES: dict[str, Exercise] = {}


def exercise(key: str, *, notebook: str, title: str):
    """Register ``checker(student_fn) -> CheckResult`` under ``key``."""

    def register(checker: Callable[[Callable], CheckResult]):
        if key in EXERCISES:
            raise ValueError(f"exercise {key!r} is registered twice")
        EXERCISES[key] = Exercise(key, notebook, title, checker)
        return checker

    return register


def solution(key: str, *, mistake: Callable | None = None):
    """Register the reference solution of ``key`` (and optionally a typical mistake)."""

    def register(fn: Callable):
        if key not in EXERCISES:
            raise ValueError(f"register the checker of {key!r} (@exercise) before its solution")
        EXERCISES[key].solution = fn
        EXERCISES[key].mistake = mistake
        return fn

    return register


def _load() -> None:
    """Import the topic modules, which register their exercises."""
    from . import topics  # noqa: F401


def all_exercises() -> dict[str, Exercise]:
    _load()
    return dict(EXERCISES)


def check(key: str, student: Callable) -> CheckResult:
    """Run the checker of ``key`` on the student's function and print the verdict."""
    _load()
    checks.choice(key, sorted(EXERCISES), name="exercise")
    try:
        result = EXERCISES[key].checker(student)
    except NotImplementedError:
        result = CheckResult(False, f"{EXERCISES[key].title}: not attempted yet — replace the "
                                    "`raise NotImplementedError` with your code and run the cell again", False)  # fmt: skip
    except Exception as exc:  # the student's code failed: say how, do not stop the notebook
        result = CheckResult(False, f"{EXERCISES[key].title}: your function raised {type(exc).__name__}: {exc}")
    print(result)
    return result
