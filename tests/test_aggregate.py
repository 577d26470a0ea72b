"""Aggregate metrics over tasks and seeds, against values worked out by hand and SciPy's own."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from awmctl.aggregate import (
    difference,
    interquartile_mean,
    mean_score,
    probability_of_improvement,
    stratified_bootstrap,
)
from awmctl.errors import BadInputError


def test_interquartile_mean_drops_a_quarter_at_each_end():
    # 8 scores sorted: -50, 0, 1, 2, 3, 4, 5, 100; the middle four are 1, 2, 3, 4
    scores = np.array([[0.0, 2.0, 4.0, 100.0], [1.0, 3.0, 5.0, -50.0]])
    assert interquartile_mean(scores) == pytest.approx(2.5)
    assert mean_score(scores) == pytest.approx(np.mean([0.5, 2.5, 4.5, 25.0]))


def test_statistics_reduce_the_last_two_axes_of_a_stack_of_samples_as_scipy_does():
    stack = np.random.default_rng(3).normal(size=(5, 7, 3))  # [samples, seeds, tasks]
    iqm = interquartile_mean(stack)
    for k in range(5):
        assert iqm[k] == pytest.approx(scipy_stats.trim_mean(stack[k].ravel(), 0.25))
        assert interquartile_mean(stack[k]) == pytest.approx(iqm[k])
        assert mean_score(stack)[k] == pytest.approx(stack[k].mean())
        other = stack[(k + 1) % 5]
        assert probability_of_improvement(stack, stack[::-1])[k] == pytest.approx(
            probability_of_improvement(stack[k], stack[4 - k])
        )
        assert probability_of_improvement(stack[k], other) + probability_of_improvement(
            other, stack[k]
        ) == pytest.approx(1.0)


def test_probability_of_improvement_is_mann_whitney_u_over_pairs_per_task():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.6, 0.1, (10, 3)), rng.normal(0.5, 0.1, (7, 3))
    x[0, 0] = y[0, 0]  # one tie, which counts one half
    per_task = [scipy_stats.mannwhitneyu(x[:, t], y[:, t]).statistic / (10 * 7) for t in range(3)]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(per_task))
    # hand-worked: X beats Y on every pair of task 0, on no pair of task 1
    assert (
        probability_of_improvement(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [0.5, 2.0]]))
        == 0.5
    )
    assert probability_of_improvement(np.ones((1, 1)), np.ones((1, 1))) == 0.5


def test_stratified_bootstrap_resamples_seeds_within_tasks_only():
    # every seed of a task scores the same: any resample within tasks gives the same aggregate,
    # so the interval is a point (a resample across tasks would not be)
    scores = np.tile([0.1, 0.5, 0.9], (5, 1))
    found = stratified_bootstrap({"m": scores}, mean_score, reps=200)
    assert found.value == found.low == found.high == pytest.approx(0.5)


def test_stratified_bootstrap_interval_covers_the_estimate_and_repeats_with_its_seed():
    rng = np.random.default_rng(1)
    scores = rng.normal(0.8, 0.1, (10, 4))
    a = stratified_bootstrap({"m": scores}, interquartile_mean, reps=500, seed=3)
    b = stratified_bootstrap({"m": scores}, interquartile_mean, reps=500, seed=3)
    assert a == b
    assert a.low < a.value < a.high
    # close to the normal-theory interval of the mean of 40 scores (the IQM is close to it here)
    assert a.high - a.low == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(40), rel=0.5)


def test_stratified_bootstrap_of_a_comparison_resamples_both_methods():
    x, y = np.full((4, 2), 1.0), np.full((3, 2), 0.0)
    found = stratified_bootstrap({"x": x, "y": y}, probability_of_improvement, reps=100)
    assert (found.value, found.low, found.high) == (1.0, 1.0, 1.0)
    with pytest.raises(BadInputError, match="same tasks"):
        stratified_bootstrap({"x": x, "y": np.zeros((3, 5))}, probability_of_improvement)


def test_difference_is_welchs_interval_and_test():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 0.2, 10), rng.normal(0.8, 0.5, 6)
    found = difference(a, b)
    welch = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert found.diff == pytest.approx(a.mean() - b.mean())
    assert found.p_value == pytest.approx(welch.pvalue)
    low, high = welch.confidence_interval(0.95)
    assert (found.low, found.high) == (pytest.approx(low), pytest.approx(high))
    same = difference([0.5, 0.5], [0.5, 0.5, 0.5])
    assert (same.diff, same.half_width, same.p_value) == (0.0, 0.0, 1.0)
    with pytest.raises(BadInputError, match="2 or more seeds"):
        difference([1.0], [1.0, 2.0])
