"""Summary statistics reported over seeds and episodes (NumPy, float64)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def ci95(values: ArrayLike, axis: int | None = None) -> float | np.ndarray:
    """Half-width of the normal 95% confidence interval of the mean (1.96 standard errors), of
    all values or along ``axis``; 0 where there is a single value."""
    v = np.asarray(values, dtype=np.float64)
    if axis is None:
        v, axis = v.ravel(), 0
    n = v.shape[axis]
    if n < 2:
        half = np.zeros(np.delete(v.shape, axis))
    else:
        half = 1.96 * v.std(axis=axis, ddof=1) / np.sqrt(n)
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


__all__ = ["ci95", "return_summary"]
