"""Summary statistics: the interval over seeds, and the streamed summary against the direct one."""

import numpy as np
import pytest

from awmctl.stats import RunningSummary, ci95, return_summary


def test_ci95_is_students_t_interval_worked_out_by_hand():
    # [0, 1, 2]: standard deviation 1, standard error 1/sqrt(3); t(0.975, 2 dof) = 4.302653
    assert ci95([0.0, 1.0, 2.0]) == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    # many values: t tends to the normal 1.96 (t(0.975, 999) = 1.962341)
    values = np.arange(1000.0)
    assert ci95(values) == pytest.approx(1.962341 * values.std(ddof=1) / np.sqrt(1000), rel=1e-5)
    assert ci95([3.0]) == 0.0


def test_ci95_along_an_axis_matches_each_column():
    values = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(ci95(values, axis=0), [ci95(values[:, j]) for j in range(3)])


def test_running_summary_equals_the_summary_of_all_returns():
    returns = np.random.default_rng(1).normal(3.0, 2.0, size=1001)
    running = RunningSummary()
    for chunk in np.array_split(returns, [1, 10, 500, 1000]):
        running.add(chunk)
    for key, value in return_summary(returns).items():
        assert running.summary()[key] == pytest.approx(value, rel=1e-12)
