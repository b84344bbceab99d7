"""Run after nbval (``make nbval`` does): every claim the committed quick-preset results hold
(``notebooks/results``) must come out of the re-run (``<figures>/results`` of the nbval run) within
the claim's stated tolerance — the numbers are machine-independent to the precision they claim.

Collected only when named explicitly (its name does not match ``test_*.py``)."""

import pytest

from zfhelpers.claims import check, record
from zfhelpers.paths import figures_dir, notebooks_dir

REFERENCE = record.load_folder(notebooks_dir() / "results")
RERUN = record.load_folder(figures_dir() / "results")


def test_every_notebook_with_claims_was_rerun():
    assert REFERENCE, "notebooks/results holds no reference results (run `make refresh-notebooks`)"
    missing = sorted(set(REFERENCE) - set(RERUN))
    assert not missing, f"no re-run results for {missing} in {figures_dir() / 'results'}"


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_claims_match_the_reference_within_tolerance(key):
    problems = check.compare({key: RERUN[key]} if key in RERUN else {}, {key: REFERENCE[key]})
    assert not problems, "\n".join(problems)
