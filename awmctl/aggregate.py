"""Comparing methods over several tasks and seeds: the practice of Agarwal et al. (2021, "Deep RL
at the edge of the statistical precipice", the `rliable` library), in NumPy and SciPy.

Scores are one array per method, ``[seeds, tasks]``, with the same tasks in the same order (the
seeds of different methods are independent runs, so their counts may differ). Aggregates:

* :func:`interquartile_mean` -- the mean of the middle 50% of all (seed, task) scores: robust to
  a task whose few seeds fail, and less noisy than the median.
* :func:`stratified_bootstrap` -- a percentile confidence interval of any aggregate, resampling
  seeds with replacement *within each task* (tasks are fixed, not sampled), as rliable does.
* :func:`probability_of_improvement` -- P(X > Y): the chance that a run of method X on a task
  scores above a run of method Y on the same task (ties count one half), averaged over tasks;
  the Mann-Whitney U statistic divided by the number of pairs, per task.
* :func:`difference` -- per task, the difference of two methods' mean scores with its Welch
  (unequal variances) t interval and the two-sided test's p-value.

Why not the `rliable` package itself: it pulls in arch, pandas and seaborn for what is here about
sixty lines, and its bootstrap draws from NumPy's global generator; here every interval comes
from an explicit seed, so a report recomputes to the same digits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float
from numpy.typing import ArrayLike

from awmctl.errors import BadInputError


def _scores(scores: ArrayLike, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim < 2 or s.shape[-2] < 1 or s.shape[-1] < 1:
        raise BadInputError(
            f"{name} must be [seeds, tasks] with at least one of each, got {s.shape}"
        )
    return s


# Every statistic takes [..., seeds, tasks]: one call reduces a whole stack of bootstrap samples.


def interquartile_mean(scores: Float[np.ndarray, "*samples seeds tasks"]) -> float | np.ndarray:
    """The mean of the middle 50% of all (seed, task) scores (rliable's IQM: int(n / 4) scores cut
    from each end, as SciPy's ``trim_mean(x, 0.25)``)."""
    s = _scores(scores)
    flat = np.sort(s.reshape(*s.shape[:-2], -1), axis=-1)
    cut = flat.shape[-1] // 4
    found = flat[..., cut : flat.shape[-1] - cut].mean(axis=-1)
    return float(found) if found.ndim == 0 else found


def mean_score(scores: Float[np.ndarray, "*samples seeds tasks"]) -> float | np.ndarray:
    """The mean over tasks of each task's mean score over seeds (equal weight per task, whatever
    the seed counts)."""
    found = _scores(scores).mean(axis=-2).mean(axis=-1)
    return float(found) if found.ndim == 0 else found


def _resample(rng: np.random.Generator, s: np.ndarray, reps: int) -> np.ndarray:
    """``reps`` stratified bootstrap samples, [reps, seeds, tasks]: within each task (column),
    seeds drawn with replacement."""
    rows = rng.integers(0, s.shape[0], size=(reps, *s.shape))
    return np.take_along_axis(np.broadcast_to(s, rows.shape), rows, axis=1)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided percentile bootstrap interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def stratified_bootstrap(
    scores: Mapping[str, Float[np.ndarray, "seeds tasks"]],
    statistic: Callable[..., float],
    *,
    reps: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``statistic(*arrays)`` of the given methods' score arrays, with its percentile interval
    over ``reps`` stratified bootstrap samples (each method's seeds resampled within each task,
    independently of the other methods'). One method: an aggregate such as
    :func:`interquartile_mean`; two: a comparison such as :func:`probability_of_improvement`.
    ``statistic`` is called once on all the samples, [reps, seeds, tasks] per method, and
    returns one value per sample (the statistics here reduce the last two axes)."""
    arrays = [_scores(s, name) for name, s in scores.items()]
    if any(a.ndim != 2 for a in arrays):
        raise BadInputError("each method's scores must be one [seeds, tasks] array")
    if len({a.shape[1] for a in arrays}) != 1:
        raise BadInputError(
            "every method needs the same tasks: got task counts "
            + ", ".join(f"{n} {a.shape[1]}" for n, a in zip(scores, arrays))
        )
    rng = np.random.default_rng(seed)
    samples = np.asarray(statistic(*[_resample(rng, a, reps) for a in arrays]), np.float64)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(statistic(*arrays)), float(low), float(high))


def probability_of_improvement(
    x: Float[np.ndarray, "*samples seeds_x tasks"], y: Float[np.ndarray, "*samples seeds_y tasks"]
) -> float | np.ndarray:
    """P(X > Y), averaged over tasks: for each task the fraction of (run of X, run of Y) pairs in
    which X's score is higher, ties counting one half."""
    x, y = _scores(x, "x"), _scores(y, "y")
    if x.shape[-1] != y.shape[-1]:
        raise BadInputError(f"x and y need the same tasks, got {x.shape[-1]} and {y.shape[-1]}")
    # [..., seeds_x, seeds_y, tasks]
    a, b = x[..., :, None, :], y[..., None, :, :]
    found = ((a > b) + 0.5 * (a == b)).mean(axis=(-3, -2)).mean(axis=-1)
    return float(found) if found.ndim == 0 else found


@dataclass(frozen=True)
class Difference:
    """mean(x) - mean(y) over seeds, its Welch t interval and the two-sided p-value."""

    diff: float
    half_width: float
    p_value: float

    @property
    def low(self) -> float:
        return self.diff - self.half_width

    @property
    def high(self) -> float:
        return self.diff + self.half_width

    def as_dict(self) -> dict[str, float]:
        return {"diff": self.diff, "ci95": self.half_width, "p": self.p_value}


def difference(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Difference:
    """The difference of two independent samples' means (seeds of two methods on one task) with
    Welch's t interval and test (Welch-Satterthwaite degrees of freedom): the seeds of two methods
    are separate runs whose spreads differ, so the pooled-variance test would be wrong."""
    from scipy.special import stdtrit
    from scipy.stats import ttest_ind

    a, b = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if a.size < 2 or b.size < 2:
        raise BadInputError(
            f"a difference test needs 2 or more seeds each, got {a.size} and {b.size}"
        )
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff = float(a.mean() - b.mean())
    if va + vb == 0.0:  # both constant: the difference is exact
        return Difference(diff, 0.0, 1.0 if diff == 0.0 else 0.0)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(stdtrit(dof, 0.5 + level / 2) * np.sqrt(va + vb))
    p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return Difference(diff, half, p)


__all__ = [
    "Difference",
    "Interval",
    "difference",
    "interquartile_mean",
    "mean_score",
    "probability_of_improvement",
    "stratified_bootstrap",
]
