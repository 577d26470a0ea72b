"""The 10-seed world-model comparison (benchmarks/power.py): which tasks count, the verdicts'
rules, and the results page's summary against the committed rows."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import power

from awmctl.aggregate import Difference, Interval


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_the_counted_tasks_follow_the_stated_rule_on_the_grids_rows(at_root):
    counted, excluded = power.which_tasks_count(power.load_rows(power.GRID))
    assert tuple(counted) == power.COUNTED
    assert excluded["bear-populations"].startswith("saturated")
    assert all(
        excluded[t].startswith("flagged") for t in ("bioreactor", "predator-prey", "glucose")
    )


def test_the_verdict_rules():
    assert power.improvement_verdict(Interval(0.7, 0.51, 0.9)) == "better"
    assert power.improvement_verdict(Interval(0.3, 0.1, 0.49)) == "worse"
    assert power.improvement_verdict(Interval(0.6, 0.5, 0.8)) == "not resolved"
    assert power.difference_verdict(Difference(0.02, 0.01, 0.01)) == "higher"
    assert power.difference_verdict(Difference(-0.02, 0.01, 0.01)) == "lower"
    assert power.difference_verdict(Difference(0.02, 0.03, 0.2)) == "not resolved"


def test_the_pages_summary_is_the_claims_recomputed_from_the_rows(at_root):
    """Every sentence of docs/results.md's summary: its verdict and numbers recomputed from the
    committed rows by the claim's rule. A hand edit, or rows that changed without the page, fail."""
    text = (ROOT / "docs" / "results.md").read_text()
    begin, end = "<!-- power:claims:begin -->\n", "\n<!-- power:claims:end -->"
    on_page = text.split(begin, 1)[1].split(end, 1)[0]
    recomputed = power.claims_table(
        power.claims(power.load_rows(power.GRID), power.converged_rows())
    )
    assert on_page == recomputed
