"""Summary statistics reported over seeds and episodes (NumPy, float64)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def ci95(values: ArrayLike, axis: int | None = None) -> float | np.ndarray:
    """Half-width of the 95% confidence interval of the mean (Student's t with n - 1 degrees of
    freedom times the standard error), of all values or along ``axis``; 0 where there is a single
    value. Student's t rather than the normal 1.96 because results here are over a few seeds:
    with 3 seeds the normal interval would be 2.2 times too narrow (t = 4.30)."""
    # SciPy comes with JAX. scipy.special's quantile rather than scipy.stats.t: the same number,
    # and an import of 0.06 s instead of 0.4 s at the end of every command.
    from scipy.special import stdtrit

    v = np.asarray(values, dtype=np.float64)
    if axis is None:
        v, axis = v.ravel(), 0
    n = v.shape[axis]
    if n < 2:
        half = np.zeros(np.delete(v.shape, axis))
    else:
        half = stdtrit(n - 1, 0.975) * v.std(axis=axis, ddof=1) / np.sqrt(n)
    return float(half) if np.ndim(half) == 0 else half


def return_summary(returns: ArrayLike) -> dict[str, float]:
    """Mean, standard deviation, minimum and maximum of episode returns."""
    r = np.asarray(returns, dtype=np.float64)
    return {
        "mean_return": float(r.mean()),
        "std_return": float(r.std()),
        "min_return": float(r.min()),
        "max_return": float(r.max()),
    }


class RunningSummary:
    """:func:`return_summary` over returns that arrive in chunks (Chan et al.'s pairwise update
    of the mean and the sum of squared deviations, in float64), so that streaming needs no
    array of every return."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.low, self.high = np.inf, -np.inf

    def add(self, returns: ArrayLike) -> None:
        r = np.asarray(returns, dtype=np.float64).ravel()
        if r.size == 0:
            return
        n, mean = r.size, float(r.mean())
        delta, total = mean - self.mean, self.n + n
        self.m2 += float(np.sum(np.square(r - mean))) + delta**2 * self.n * n / total
        self.mean += delta * n / total
        self.n = total
        self.low, self.high = min(self.low, float(r.min())), max(self.high, float(r.max()))

    def summary(self) -> dict[str, float]:
        return {
            "mean_return": self.mean,
            "std_return": float(np.sqrt(self.m2 / max(self.n, 1))),
            "min_return": self.low,
            "max_return": self.high,
        }


__all__ = ["RunningSummary", "ci95", "return_summary"]
