"""The rules that turn a statistic into a verdict on a paper's statement, written once so that every
claim of notebooks 05, 07, 08 and 10 words its verdict by the same standard.

* :func:`sign_rule` — the paper says a quantity is positive (or negative): reproduced when the
  95 % interval (or a one-sided test at ``alpha``) excludes zero on the paper's side, partly
  reproduced when only the point estimate is on that side, otherwise not reproduced.
* :func:`threshold_rule` — the paper makes a qualitative statement ("stable", "quasi-linear") that
  we operationalise as a stated threshold: reproduced when the whole interval is on the paper's
  side of it, partly when only the estimate is."""

from __future__ import annotations

ALPHA = 0.05


def sign_evidence(value: float, *, ci=None, p_value=None, expected: str = "positive", alpha: float = ALPHA,
                  p_label: str = "one-sided p") -> tuple[bool, bool, str]:  # fmt: skip
    """(established, leaning, evidence): is ``value`` on the ``expected`` side of 0 by its 95 % CI
    (or, without one, by ``p_value`` < ``alpha``); is the point estimate there; and the words for it."""
    if expected not in ("positive", "negative"):
        raise ValueError(f"expected must be 'positive' or 'negative', got {expected!r}")
    sign = 1.0 if expected == "positive" else -1.0
    side = "above" if sign > 0 else "below"
    if ci is not None:
        certain = sign * ci[0] > 0 and sign * ci[1] > 0
        evidence = f"95 % CI {'entirely' if certain else 'not entirely'} {side} 0"
    else:
        certain = p_value is not None and p_value < alpha and sign * value > 0
        evidence = f"{p_label} {'<' if certain else '≥'} {alpha}" if p_value is not None else "no test"
    return certain, sign * value > 0, evidence


def sign_rule(
    value: float,
    *,
    ci: tuple[float, float] | None = None,
    p_value: float | None = None,
    expected: str = "positive",
    what: str = "the difference",
    alpha: float = ALPHA,
) -> tuple[str, str]:
    """(verdict, reason) for a paper statement that ``value`` is ``expected`` ("positive" or "negative")."""
    certain, _, evidence = sign_evidence(value, ci=ci, p_value=p_value, expected=expected, alpha=alpha)
    side = "above" if expected == "positive" else "below"
    sign = 1.0 if expected == "positive" else -1.0
    if certain:
        return "reproduced", f"{what} is {side} 0 as the paper says ({evidence})"
    if sign * value > 0:
        return "partly reproduced", f"{what} points the paper's way but is not established ({evidence})"
    return "not reproduced", f"{what} is not {side} 0 ({evidence})"


def threshold_rule(
    value: float, ci: tuple[float, float], *, threshold: float, above: bool, meaning: str
) -> tuple[str, str]:
    """(verdict, reason) for a qualitative statement read as "``value`` ≥ ``threshold``" (``above``)
    or "``value`` < ``threshold``"; ``meaning`` names the reading, e.g. "stable = keeps ≥ 75 %"."""
    inside = (lambda v: v >= threshold) if above else (lambda v: v < threshold)
    if inside(ci[0]) and inside(ci[1]):
        return "reproduced", f"whole 95 % CI on the paper's side of {threshold:g} ({meaning})"
    if inside(value):
        return "partly reproduced", f"estimate on the paper's side of {threshold:g} but the CI crosses it ({meaning})"
    return "not reproduced", f"estimate on the wrong side of {threshold:g} ({meaning})"
