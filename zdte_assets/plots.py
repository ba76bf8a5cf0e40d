"""PNG figures for MLflow artifacts and replay reports (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def pareto_front(
    rmse: Sequence[float],
    accuracy: Sequence[float],
    chosen: int | None,
    naive_rmse: float,
    base_rate: float,
    path: Path,
) -> Path:
    """Pareto-front trials (RMSE vs directional accuracy) with the naive and base-rate lines."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(rmse, accuracy, label="Pareto-front trials")
    if chosen is not None:
        ax.scatter(
            [rmse[chosen]],
            [accuracy[chosen]],
            s=120,
            facecolors="none",
            edgecolors="red",
            label="chosen",
        )
    ax.axvline(naive_rmse, color="grey", linestyle="--", label="naive RMSE (return 0)")
    ax.axhline(base_rate, color="orange", linestyle=":", label="up-day base rate")
    ax.set_xlabel("validation RMSE of the open-to-close log return")
    ax.set_ylabel("directional accuracy")
    ax.legend(fontsize=8)
    return _save(fig, path)


def feature_importance(names: Sequence[str], gains: Sequence[float], path: Path) -> Path:
    order = np.argsort(np.asarray(gains, dtype=float))
    fig, ax = plt.subplots(figsize=(6, max(2.0, 0.3 * len(names) + 1)))
    ax.barh([names[i] for i in order], [float(gains[i]) for i in order])
    ax.set_xlabel("LightGBM gain")
    return _save(fig, path)


def predicted_vs_actual(
    actual: Sequence[float], predicted: Sequence[float], path: Path, title: str = ""
) -> Path:
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(a, p, s=12)
    lim = float(np.nanmax(np.abs(np.concatenate([a, p, [1e-6]]))))
    ax.plot([-lim, lim], [-lim, lim], color="grey", linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.axvline(0, color="black", linewidth=0.5)
    ax.set_xlabel("actual open-to-close log return")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    return _save(fig, path)


def line_chart(
    x: Sequence[object],
    series: dict[str, Sequence[float]],
    path: Path,
    ylabel: str,
    title: str = "",
    markers: Sequence[object] = (),
) -> Path:
    """One or more series over dates; `markers` draws vertical lines (e.g. triggered re-optimizations)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, ys in series.items():
        ax.plot(list(x), list(ys), label=name)  # type: ignore[arg-type]
    for m in markers:
        ax.axvline(m, color="red", alpha=0.4, linewidth=0.8)  # type: ignore[arg-type]
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _save(fig, path)
