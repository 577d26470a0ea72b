"""Headless matplotlib figures (PNG). Library code: returns the path it wrote."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # never needs a display
    import matplotlib.pyplot as plt

    return plt


def learning_curves(
    records: Sequence[dict[str, Any]],
    keys: Sequence[str],
    path: str | os.PathLike,
    title: str,
    log_y: bool = True,
) -> Path:
    """One line per metric key against ``step``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for key in keys:
        pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=key)
    ax.set_xlabel("step")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def seed_curves(steps, values, path: str | os.PathLike, title: str, ylabel: str, xlabel: str = "policy update") -> Path:
    """One thin line per seed plus the mean and a 95% interval (1.96 standard errors)."""
    import numpy as np

    plt = _pyplot()
    values = np.asarray(values, dtype=np.float64)  # [points, seeds]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for s in range(values.shape[1]):
        ax.plot(steps, values[:, s], color="tab:blue", alpha=0.3, lw=0.8)
    mean = values.mean(axis=1)
    ax.plot(steps, mean, color="tab:blue", lw=2, label=f"mean of {values.shape[1]} seed(s)")
    if values.shape[1] > 1:
        half = 1.96 * values.std(axis=1, ddof=1) / np.sqrt(values.shape[1])
        ax.fill_between(steps, mean - half, mean + half, color="tab:blue", alpha=0.2, label="95% interval")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
