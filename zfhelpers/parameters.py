"""Notebook parameters: their types and allowed values, checked before papermill runs a notebook.

A parameter's type is its annotation when it has one (papermill's ``inferred_type_name``), else the
type of its default. Its allowed values are declared at the end of its comment in the parameters
cell (``docs/parameters.md``)::

    n_maps = 32  # feature maps in the grid [1..256]
    images = ["chelsea", "coffee"]  # photos [1..8]
    recipe = "modern"  # optimisation recipe {modern, authors}
    threshold = 0.5  # settled score [0..1]

``[lo..hi]`` bounds a number (inclusive; either end may be left out) or, for a list, its length;
``{a, b}`` lists the allowed values (for a list: the allowed elements; YAML flow syntax, so ``""``
is the empty string). Lists whose default is not empty need at least one element unless a range
says otherwise. No torch import: the CLI checks parameters in a fraction of a second."""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

import yaml

#: The machine-readable tail of a parameter's comment: ranges and choice sets, in any order.
_TAIL = re.compile(r"(?:\s*(?:\[[^\[\]]*\.\.[^\[\]]*\]|\{[^{}]*\}))+\s*$")
_TOKEN = re.compile(r"\[([^\[\]]*)\.\.([^\[\]]*)\]|\{([^{}]*)\}")
_KINDS = {"bool": "bool", "int": "int", "float": "float", "str": "str", "list": "list", "dict": "dict"}
_NOUNS = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
          "list": "a list", "dict": "a mapping", "any": "any value"}  # fmt: skip


class ParameterError(ValueError):
    """A parameter value that the notebook does not allow; the message says what it allows."""


@dataclass(frozen=True)
class ParamSpec:
    """What a notebook parameter accepts."""

    name: str
    kind: str  # bool, int, float, str, list, dict or any
    default: object = None
    item: str = "any"  # element kind of a list
    low: float | None = None  # number: smallest value; list: fewest elements
    high: float | None = None
    choices: tuple | None = None
    help: str = ""

    def describe(self) -> str:
        """What is allowed, in words: ``an integer in 1..256``, ``a list of 1 to 8 strings``."""
        if self.kind == "list":
            text = f"a list of {_count(self.low, self.high)} {_PLURALS[self.item]}"
            return text + (f" from {_set(self.choices)}" if self.choices else "")
        if self.choices:
            return f"one of {_set(self.choices)}"
        low, high = self.low, self.high
        if low is not None and high is not None:
            return f"{_NOUNS[self.kind]} in {_num(low)}..{_num(high)}"
        if low is not None or high is not None:
            return f"{_NOUNS[self.kind]} {'≥ ' + _num(low) if low is not None else '≤ ' + _num(high)}"
        return _NOUNS[self.kind]


_PLURALS = {"bool": "true/false values", "int": "integers", "float": "numbers", "str": "strings",
            "list": "lists", "dict": "mappings", "any": "values"}  # fmt: skip


def _count(low, high) -> str:
    low = int(low) if low is not None else 0
    if high is None:
        return f"{low} or more" if low else "any number of"
    high = int(high)
    return f"exactly {low}" if low == high else f"{low} to {high}"


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _set(values) -> str:
    return "{" + ", ".join(repr(v) if v == "" else str(v) for v in values) + "}"


def _kind_of(value) -> str:
    if isinstance(value, bool):
        return "bool"
    for t, name in ((int, "int"), (float, "float"), (str, "str"), (list | tuple, "list"), (dict, "dict")):
        if isinstance(value, t):
            return name
    return "any"


def parse_tail(help_text: str) -> tuple[float | None, float | None, tuple | None, str]:
    """(low, high, choices, prose) from a parameter comment (see the module docstring)."""
    m = _TAIL.search(help_text or "")
    if not m:
        return None, None, None, (help_text or "").strip()
    low = high = choices = None
    for token in _TOKEN.finditer(m.group(0)):
        if token.group(3) is not None:
            choices = tuple(yaml.safe_load("{" + token.group(3) + "}") or {})
        else:
            lo, hi = token.group(1).strip(), token.group(2).strip()
            low, high = (float(lo) if lo else None), (float(hi) if hi else None)
    return low, high, choices, help_text[: m.start()].strip()


def spec_from_inspection(entry: dict) -> ParamSpec:
    """A :class:`ParamSpec` from one entry of ``papermill.inspect_notebook``."""
    try:
        default = ast.literal_eval(entry.get("default", ""))
        literal = True
    except (ValueError, SyntaxError):
        default, literal = None, False
    annotated = (entry.get("inferred_type_name") or "None").lower()
    base = re.split(r"[\[|]", annotated)[0].strip()
    if base.startswith("typing."):
        base = base[len("typing.") :]
    kind = _KINDS.get(base) or (_kind_of(default) if literal and default is not None else "any")
    item = "any"
    if kind == "list":
        inner = re.search(r"\[(\w+)\]", annotated)
        kinds = {_kind_of(v) for v in default} if isinstance(default, list | tuple) else set()
        item = _KINDS.get(inner.group(1), "any") if inner else (kinds.pop() if len(kinds) == 1 else "any")
    try:
        low, high, choices, prose = parse_tail(entry.get("help", ""))
    except (ValueError, yaml.YAMLError) as exc:
        raise ParameterError(f"parameter {entry['name']}: malformed allowed values in its comment "
                             f"{entry.get('help', '')!r} ({exc}); see docs/parameters.md") from None  # fmt: skip
    if kind == "list" and low is None and high is None and default:
        low = 1.0  # an empty list where the notebook ships a non-empty one is never what it expects
    return ParamSpec(entry["name"], kind, default, item, low, high, choices, prose)


def _number_ok(value, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    return isinstance(value, int | float) and math.isfinite(value)


def check(spec: ParamSpec, value, raw: str | None = None):
    """The value the notebook gets (a lone string for a list of strings becomes a list of one;
    a number given for a string parameter is taken as the text typed), or :class:`ParameterError`."""
    if value is None and spec.default is None:
        return value
    kind = spec.kind
    if kind == "str" and raw is not None and isinstance(value, int | float | bool):
        value = raw  # `-p image 2024` names a file "2024", not the number
    if kind == "list" and isinstance(value, str) and spec.item in ("str", "any"):
        value = [value]
    ok = {
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: _number_ok(v, "int"),
        "float": lambda v: _number_ok(v, "float"),
        "str": lambda v: isinstance(v, str),
        "list": lambda v: isinstance(v, list),
        "dict": lambda v: isinstance(v, dict),
        "any": lambda v: True,
    }[kind](value)
    if not ok:
        raise ParameterError(f"expected {spec.describe()}")
    if kind == "float":
        value = float(value)
    if kind == "list":
        _check_list(spec, value)
    elif spec.choices is not None and value not in spec.choices:
        raise ParameterError(f"expected {spec.describe()}")
    elif kind in ("int", "float") and not _in_range(value, spec.low, spec.high):
        raise ParameterError(f"expected {spec.describe()}")
    return value


def _in_range(x, low, high) -> bool:
    return (low is None or x >= low) and (high is None or x <= high)


def _check_list(spec: ParamSpec, value: list) -> None:
    expected = f"expected {spec.describe()}"
    if spec.item != "any":
        for v in value:
            if not (_number_ok(v, spec.item) if spec.item in ("int", "float") else _kind_of(v) == spec.item):
                raise ParameterError(f"{expected}; {v!r} is not {_NOUNS[spec.item]}")
    if spec.choices is not None:
        bad = [v for v in value if v not in spec.choices]
        if bad:
            raise ParameterError(
                f"{expected}; {', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not among them"
            )
    if not _in_range(len(value), spec.low, spec.high):
        raise ParameterError(f"{expected}; got {len(value)}")
