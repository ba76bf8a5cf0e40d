"""Walk-forward validation: the fixed test windows every trial is scored on.

The validation rows are the same for every trial: the last ``n_windows * test_days`` rows, cut
into ``n_windows`` consecutive test windows. Each test window is predicted by a model fitted on
the ``train_window`` rows immediately before it, the same length the daily retrain will use, so
the searched ``train_window`` is scored by exactly what it changes in production.
``WalkForwardConfig.train_days`` is the shortest window the study tries; the longest is
``MAX_TRAIN_WINDOW``, capped by the rows before the first test window (so
``train_days + n_windows * test_days`` rows still run a study, with the range collapsed to
``train_days``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import polars as pl

from zdte_assets.model.fitting import fit_model
from zdte_assets.model.params import (
    DATE,
    InsufficientHistoryError,
    ModelParams,
    check_training_frame,
    target_values,
)

#: Longest daily retrain window the default search space proposes (sizes the history to load).
MAX_TRAIN_WINDOW = 120
#: Rows between neighbouring ``train_window`` values the study searches (a coarse grid).
TRAIN_WINDOW_STEP = 10


@dataclass(frozen=True)
class WalkForwardConfig:
    """``n_windows`` rolling test windows of ``test_days`` rows at the end of the data.

    ``train_days`` is the default (and the study's shortest) number of training rows before
    each test window; ``rows_needed`` is therefore the least history any study accepts.
    """

    train_days: int = 30
    test_days: int = 10
    n_windows: int = 4

    def __post_init__(self) -> None:
        for name in ("train_days", "test_days", "n_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"WalkForwardConfig.{name} must be >= 1")

    @property
    def rows_needed(self) -> int:
        return self.train_days + self.test_days * self.n_windows

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WalkForwardConfig:
        return cls(**{f.name: int(data[f.name]) for f in fields(cls)})


def walk_forward_windows(
    n_rows: int, cfg: WalkForwardConfig, train_window: int | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices, oldest first, anchored so the last test row is the last row.

    The test windows depend on ``cfg`` only, so trials with different training lengths are
    scored on the same rows. Each window trains on the ``train_window`` rows (default
    ``cfg.train_days``) immediately before its test rows, mimicking the daily retrain, which fits
    on the most recent ``train_window`` rows before the day it predicts. Anchoring at the end
    keeps the validation as close as possible to the week being traded; older surplus rows are
    simply not used.
    """
    length = cfg.train_days if train_window is None else train_window
    if length < 1:
        raise ValueError("train_window must be >= 1")
    needed = length + cfg.n_windows * cfg.test_days
    if n_rows < needed:
        raise InsufficientHistoryError(
            needed,
            n_rows,
            f"walk-forward ({length} train + {cfg.n_windows} x {cfg.test_days} test)",
        )
    out = []
    for i in range(cfg.n_windows):
        test_end = n_rows - (cfg.n_windows - 1 - i) * cfg.test_days
        test_start = test_end - cfg.test_days
        out.append((np.arange(test_start - length, test_start), np.arange(test_start, test_end)))
    return out


def study_train_window_range(n_rows: int, cfg: WalkForwardConfig) -> tuple[int, int]:
    """Default ``train_window`` search range for a study on ``n_rows`` rows.

    From ``cfg.train_days`` up to ``MAX_TRAIN_WINDOW``, but never more than the rows before the
    first test window: a longer window could not be evaluated on the fixed validation rows. The
    cap is rounded down onto the ``TRAIN_WINDOW_STEP`` grid so the search keeps its coarse
    step. Short histories therefore narrow the range, down to ``(train_days, train_days)`` at
    ``cfg.rows_needed`` rows; a ``train_days`` above ``MAX_TRAIN_WINDOW`` wins over it.
    Raises ``InsufficientHistoryError`` below ``cfg.rows_needed`` rows.
    """
    walk_forward_windows(n_rows, cfg)
    lo = cfg.train_days
    available = n_rows - cfg.n_windows * cfg.test_days
    hi = max(lo, min(MAX_TRAIN_WINDOW, available))
    return lo, lo + (hi - lo) // TRAIN_WINDOW_STEP * TRAIN_WINDOW_STEP


@dataclass(frozen=True)
class WindowResult:
    """One walk-forward window: what was fitted where and what it predicted."""

    window: int
    train_start: dt.date
    train_end: dt.date
    test_dates: tuple[dt.date, ...]
    predicted: tuple[float, ...]
    actual: tuple[float, ...]
    features: tuple[str, ...]
    shrinkage: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_dates": [d.isoformat() for d in self.test_dates],
            "predicted": list(self.predicted),
            "actual": list(self.actual),
            "features": list(self.features),
            "shrinkage": self.shrinkage,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowResult:
        return cls(
            window=int(data["window"]),
            train_start=dt.date.fromisoformat(data["train_start"]),
            train_end=dt.date.fromisoformat(data["train_end"]),
            test_dates=tuple(dt.date.fromisoformat(d) for d in data["test_dates"]),
            predicted=tuple(float(v) for v in data["predicted"]),
            actual=tuple(float(v) for v in data["actual"]),
            features=tuple(data["features"]),
            shrinkage=float(data["shrinkage"]),
        )


def evaluate_walk_forward(
    frame: pl.DataFrame, cfg: WalkForwardConfig, params: ModelParams
) -> list[WindowResult]:
    """Predict each test window of ``cfg`` from the ``params.train_window`` rows just before it.

    Training on exactly the rows the daily retrain would see (the most recent
    ``params.train_window`` rows before the predicted day, none of them test rows) is what makes
    the study's choice of ``train_window`` meaningful. Needs
    ``params.train_window + n_windows * test_days`` rows.
    """
    check_training_frame(frame)
    dates = frame.get_column(DATE)
    out = []
    windows = walk_forward_windows(frame.height, cfg, params.train_window)
    for i, (train_idx, test_idx) in enumerate(windows):
        train = frame.slice(int(train_idx[0]), len(train_idx))
        test = frame.slice(int(test_idx[0]), len(test_idx))
        model = fit_model(train, params)
        out.append(
            WindowResult(
                window=i,
                train_start=dates[int(train_idx[0])],
                train_end=dates[int(train_idx[-1])],
                test_dates=tuple(test.get_column(DATE).to_list()),
                predicted=tuple(float(v) for v in model.predict(test)),
                actual=tuple(float(v) for v in target_values(test)),
                features=model.features,
                shrinkage=model.shrinkage,
            )
        )
    return out


def pooled(windows: Sequence[WindowResult]) -> tuple[np.ndarray, np.ndarray]:
    pred = np.array([v for w in windows for v in w.predicted], dtype=np.float64)
    actual = np.array([v for w in windows for v in w.actual], dtype=np.float64)
    return pred, actual
