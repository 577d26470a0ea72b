"""Headless matplotlib figures (PNG). Library code: returns the path it wrote."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from awmctl.stats import ci95


def pyplot():
    """matplotlib's pyplot without a display, imported only when something draws."""
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
    xlabel: str = "step",
    ylabel: str = "",
    legend: Sequence[str] = (),
) -> Path:
    """One line per metric key against ``step``, named by ``legend`` (the keys if empty)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for key, name in zip(keys, legend or keys):
        pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def seed_curves(
    steps, values, path: str | os.PathLike, title: str, ylabel: str, xlabel: str = "policy update"
) -> Path:
    """One thin line per seed plus the mean and a 95% interval (Student's t over the seeds)."""
    import numpy as np

    plt = pyplot()
    values = np.asarray(values, dtype=np.float64)  # [points, seeds]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for s in range(values.shape[1]):
        ax.plot(steps, values[:, s], color="tab:blue", alpha=0.3, lw=0.8)
    mean = values.mean(axis=1)
    ax.plot(steps, mean, color="tab:blue", lw=2, label=f"mean of {values.shape[1]} seed(s)")
    if values.shape[1] > 1:
        half = ci95(values, axis=1)
        ax.fill_between(
            steps, mean - half, mean + half, color="tab:blue", alpha=0.2, label="95% interval"
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def norm_vs_horizon(
    horizons, curves: dict[str, dict[str, Any]], path: str | os.PathLike, title: str
) -> Path:
    """Gradient norms against H on a log scale, one panel per quantity, one line per model.

    ``curves[label][quantity]`` holds ``center``, ``low`` and ``high`` arrays over ``horizons``
    (the line and its spread band).
    """
    plt = pyplot()
    quantities = list(next(iter(curves.values())))
    fig, axes = plt.subplots(
        1, len(quantities), figsize=(5.2 * len(quantities), 4.0), dpi=120, squeeze=False
    )
    for ax, quantity in zip(axes[0], quantities):
        for label, per_quantity in curves.items():
            c = per_quantity[quantity]
            (line,) = ax.plot(horizons, c["center"], marker="o", ms=3, label=label)
            ax.fill_between(horizons, c["low"], c["high"], color=line.get_color(), alpha=0.15)
        ax.set_yscale("log")
        ax.set_xlabel("horizon H")
        ax.set_ylabel(quantity)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def curves_1d(
    grid,
    panels: dict[str, dict[str, Any]],
    path: str | os.PathLike,
    title: str,
    xlabel: str,
    log_panels: Sequence[str] = (),
) -> Path:
    """Stacked panels sharing the x axis; ``panels[ylabel][label]`` is one curve over ``grid``."""
    plt = pyplot()
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(7.0, 3.2 * len(panels)), dpi=120, sharex=True, squeeze=False
    )
    for ax, (ylabel, lines) in zip(axes[:, 0], panels.items()):
        for label, values in lines.items():
            style = {"color": "black", "lw": 1.6} if label == "simulator" else {"lw": 1.0}
            ax.plot(grid, values, label=label, **style)
        if ylabel in log_panels:
            ax.set_yscale("log")
        elif "simulator" in lines:
            _clip_to_reference(ax, lines)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def _clip_to_reference(ax, lines: dict[str, Any]) -> None:
    """Keep the simulator's curve readable when a model's curve runs off by orders of magnitude
    (a diverging Markovian rollout): limit the axis to the simulator's range plus a margin."""
    import numpy as np

    ref = np.asarray(lines["simulator"], dtype=np.float64)
    lo, hi = float(np.min(ref)), float(np.max(ref))
    margin = 0.5 * (hi - lo) if hi > lo else 1.0
    values = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in lines.values()])
    finite = values[np.isfinite(values)]
    if not np.all(np.isfinite(values)) or (
        finite.size and (finite.min() < lo - 3 * margin or finite.max() > hi + 3 * margin)
    ):
        ax.set_ylim(lo - margin, hi + margin)
        ax.text(
            0.01,
            0.02,
            "axis limited to the simulator's range; curves leaving it are cut",
            transform=ax.transAxes,
            fontsize=7,
            color="gray",
        )


def heatmaps(alphas, surfaces: dict[str, Any], path: str | os.PathLike, title: str) -> Path:
    """One heatmap per model of a surface over ``alphas x alphas`` (rows: first direction)."""
    import numpy as np

    plt = pyplot()
    n = len(surfaces)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 0.8, 3.8), dpi=120, squeeze=False)
    extent = (float(alphas[0]), float(alphas[-1]), float(alphas[0]), float(alphas[-1]))
    # One colour scale for every panel (the finite values of all), so that colours compare.
    finite = np.concatenate([np.ravel(s)[np.isfinite(np.ravel(s))] for s in surfaces.values()])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    for ax, (label, surface) in zip(axes[0], surfaces.items()):
        image = ax.imshow(
            np.asarray(surface).T,
            origin="lower",
            extent=extent,
            aspect="auto",
            cmap="viridis",
            vmin=low,
            vmax=high,
        )
        ax.plot([0], [0], marker="+", color="white", ms=10)
        kind = "true return" if label == "simulator" else "imagined return"
        ax.set_title(f"{label}: {kind}")
        ax.set_xlabel("direction 1")
        ax.set_ylabel("direction 2")
    fig.suptitle(title)
    fig.tight_layout()
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.85, label="return")
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def compare_runs(
    curves: dict[str, tuple[Sequence[int | float], Any]],
    path: str | os.PathLike,
    title: str,
    ylabel: str,
    xlabel: str = "step",
) -> Path:
    """Several runs' curves on one plot: each run's mean over its seeds and a 95% interval
    (Student's t) where it has more than one; ``curves`` maps a label to ``(steps, values[points,
    seeds])``."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for label, (steps, values) in curves.items():
        values = np.asarray(values, dtype=np.float64).reshape(len(steps), -1)
        mean = values.mean(axis=1)
        (line,) = ax.plot(
            steps,
            mean,
            lw=1.6,
            label=f"{label} ({values.shape[1]} seed{'s' if values.shape[1] > 1 else ''})",
        )
        if values.shape[1] > 1:
            half = ci95(values, axis=1)
            ax.fill_between(steps, mean - half, mean + half, color=line.get_color(), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
