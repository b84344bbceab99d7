"""The claims machinery: results files, the paper registry, the README/markdown check, statistics."""

import numpy as np
import pytest

from zfhelpers.analysis import stats
from zfhelpers.claims import check, paper, record, table
from zfhelpers.claims.record import Claim, Results


def _results(tmp_path, value=0.404):
    res = Results("08_correspondence", "offline", "full", model="m", data="d", params={"random_draws": 20})
    res.add(Claim("08.delta.layer5", "Δ parts below random at layer 5", value, "reproduced", "CI below random",
                  ci=(0.391, 0.417), decimals=3, tolerance=1e-3, paper="zf2014.table1.random.layer5"))  # fmt: skip
    res.save(tmp_path)
    return record.load_folder(tmp_path)


def test_results_round_trip_atomically(tmp_path):
    loaded = _results(tmp_path)
    (key,) = loaded
    assert key == "08_correspondence.offline"
    c = loaded[key].claims["08.delta.layer5"]
    assert c.ci == (0.391, 0.417) and c.formatted() == "0.404 [0.391, 0.417]"
    assert not list(tmp_path.glob(".*part"))


def test_claims_refuse_unknown_verdicts_and_non_finite_values():
    with pytest.raises(ValueError, match="valid: reproduced"):
        Claim("x", "s", 1.0, "probably", "r")
    with pytest.raises(ValueError, match="finite"):
        Claim("x", "s", float("nan"), "reproduced", "r")


def test_every_registry_entry_names_a_known_paper_and_a_source():
    papers = paper.papers()
    for key, e in paper.registry().items():
        assert e["paper"] in papers, key
        assert e.get("source"), key
    assert "0.067 ± 0.007" in paper.describe("zf2014.table1.right_eye.layer5")


def test_check_accepts_recorded_numbers_at_their_precision_and_flags_others(tmp_path):
    results = _results(tmp_path)
    values = check.supported(list(results.values()))
    assert check.unsupported_numbers("parts 0.404 [0.391, 0.417] vs ZF 0.067; 20 draws", values) == []
    assert check.unsupported_numbers("about 0.40 and 40.4 %", values) == []
    assert check.unsupported_numbers("nodes 0.7316 vs 0.2861", values) == ["0.7316", "0.2861"]
    # sections and versions are not measurements; a measured-looking number after them still is
    assert check.unsupported_numbers("ZF §2.1, §4.3 and Python 3.11, torch 2.14", values) == []
    assert check.unsupported_numbers("§2 reports 0.7316", values) == ["0.7316"]


def test_readme_block_must_be_current(tmp_path):
    results = _results(tmp_path)
    values = check.supported(list(results.values()))
    good = f"intro\n{check.readme_block(results)}\nend"
    assert check.check_readme(good, results, values) == []
    stale = good.replace("0.404", "0.399")
    assert any("not the current claims table" in p for p in check.check_readme(stale, results, values))
    assert "reproduced" in table.markdown(results)


def test_compare_flags_claims_outside_their_tolerance(tmp_path):
    ref = _results(tmp_path / "a")
    close = _results(tmp_path / "b", value=0.4045)
    far = _results(tmp_path / "c", value=0.41)
    assert check.compare(close, ref) == []
    assert "tolerance" in check.compare(far, ref)[0]


def test_bootstrap_interval_covers_the_mean_and_is_seeded():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.5, 200)
    lo, hi = stats.bootstrap_ci(x, seed=1)
    assert lo < x.mean() < hi and hi - lo < 0.2
    assert stats.bootstrap_ci(x, seed=1) == (lo, hi)


def test_permutation_tests_detect_a_shift_and_not_its_absence():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 40), rng.normal(0, 1, 40)
    assert stats.paired_permutation_test(a - 1.0, a, alternative="less", n_perm=2000) < 0.01
    assert stats.permutation_test(a, b, n_perm=2000) > 0.05
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired_permutation_test(a, b[:3])


def test_wilson_interval_stays_inside_zero_one():
    assert stats.binomial_ci(0, 10)[0] == 0.0 and stats.binomial_ci(10, 10)[1] == 1.0
    lo, hi = stats.binomial_ci(46, 100)
    assert lo < 0.46 < hi
