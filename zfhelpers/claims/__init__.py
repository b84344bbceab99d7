"""Every number the companion states, with its uncertainty and a verdict against the paper:
results files written by the runs (:mod:`.record`), the paper registry (:mod:`.paper`), the
paper-vs-here table (:mod:`.table`) and the README/markdown check (:mod:`.check`)."""

from .record import VERDICTS, Claim, Results

__all__ = ["VERDICTS", "Claim", "Results"]
