"""PNG figures for MLflow artifacts and replay reports (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _save(fig: plt.Figure, path: Path, *, tight_bbox: bool = False) -> Path:
    """`tight_bbox` crops the saved image to what is drawn, long tick labels included."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight" if tight_bbox else None)
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
    """Horizontal bars sorted by gain, the largest on top, 0.35 inch per feature so that labels
    never overlap; the image is cropped to its labels, however long."""
    order = np.argsort(np.asarray(gains, dtype=float), kind="stable")
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(names) + 1.2)))
    ax.barh([names[i] for i in order], [float(gains[i]) for i in order])
    ax.tick_params(axis="y", labelsize=9)
    ax.set_xlabel("LightGBM gain")
    return _save(fig, path, tight_bbox=True)


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


def event_timeline(
    x: Sequence[object],
    events: dict[str, Sequence[bool]],
    path: Path,
    title: str = "",
    markers: Sequence[object] = (),
) -> Path:
    """One row of dots per named event (e.g. each drift trigger) on the days it happened."""
    names = list(events) or ["(none)"]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * len(names)))
    for row, name in enumerate(names):
        days = [d for d, hit in zip(x, events.get(name, ()), strict=False) if hit]
        ax.scatter(days, [row] * len(days), s=14)  # type: ignore[arg-type]
    for m in markers:
        ax.axvline(m, color="red", alpha=0.4, linewidth=0.8)  # type: ignore[arg-type]
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.5, len(names) - 0.5)
    if x:
        ax.set_xlim(x[0], x[-1])  # type: ignore[arg-type]
    ax.set_title(title)
    fig.autofmt_xdate()
    return _save(fig, path)


def pit_histogram(counts: Sequence[int], path: Path, title: str = "") -> Path:
    """Counts of the probability integral transform in ten bins, with the flat line of a
    calibrated forecast."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    edges = np.linspace(0.0, 1.0, len(counts) + 1)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", edgecolor="white")
    total = float(sum(counts))
    if total:
        ax.axhline(total / len(counts), color="grey", linestyle="--", label="calibrated")
        ax.legend(fontsize=8)
    ax.set_xlabel("PIT (forecast probability below the realized return)")
    ax.set_ylabel("days")
    ax.set_title(title)
    return _save(fig, path)


def threshold_panels(
    x: Sequence[object],
    panels: Mapping[str, tuple[Sequence[float], float]],
    path: Path,
    title: str = "",
    markers: Sequence[object] = (),
) -> Path:
    """One small panel per statistic (e.g. each drift trigger's value) with its threshold as a
    dashed line: statistics on different scales (a ratio, a p-value, a count) stay readable,
    which one chart with a shared axis would not allow. `markers` draws red vertical lines."""
    names = list(panels) or ["(none)"]
    fig, axes = plt.subplots(
        len(names), 1, figsize=(8, 0.6 + 1.4 * len(names)), sharex=True, squeeze=False
    )
    for ax, name in zip(axes[:, 0], names, strict=True):
        values, threshold = panels.get(name, ((), float("nan")))
        ax.plot(list(x), [float("nan") if v is None else v for v in values], marker=".")  # type: ignore[arg-type]
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8)
        for m in markers:
            ax.axvline(m, color="red", alpha=0.4, linewidth=0.8)  # type: ignore[arg-type]
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=8)
    axes[0, 0].set_title(title)
    fig.autofmt_xdate()
    return _save(fig, path)
