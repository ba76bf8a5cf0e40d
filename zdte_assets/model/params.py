"""Model parameters and the contract of a training frame (columns, dates, target).

Every other model module (fitting, walk-forward, study, persistence) takes frames and parameters
in the shape checked here, so a frame that breaks the contract fails here with one line naming
the column, not deep inside LightGBM.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import polars as pl

from zdte_assets.core.errors import ZdteError

TARGET = "target"
#: The volatility forecast column (see ``features.SESSION_VOL``), never a model input.
SESSION_VOL = "session_vol"
#: Columns that are never features even when numeric (`open` is a price level, not scale-free).
NON_FEATURE_COLUMNS = frozenset(
    {"date", "open", "high", "low", "close", "volume", "adj_close", TARGET, SESSION_VOL}
)
#: Any column named ``<something>_lag<k>`` is lag ``k`` (``ret_oc_lag3``, ``ret_cc_lag5``, ...).
LAG_PATTERN = re.compile(r"^(?P<base>.+)_lag(?P<k>[0-9]+)$")
DATE = "date"
#: Fewest rows ``fit_model`` accepts: the inner split needs a few rows on each side.
MIN_TRAIN_ROWS = 20


class InsufficientHistoryError(ZdteError, ValueError):
    """Fewer rows than a walk-forward or retrain needs; says how many are needed and given."""

    def __init__(self, needed: int, available: int, what: str = "walk-forward") -> None:
        self.needed = needed
        self.available = available
        super().__init__(f"{what} needs {needed} rows, got {available}")


@dataclass(frozen=True)
class ModelParams:
    """Everything needed to refit the same model; JSON round-trippable for MLflow and storage.

    ``n_features`` is a target count after elimination, capped by the candidates available.
    ``train_window`` is the number of most recent rows the daily retrain uses.
    """

    n_lags: int = 3
    n_features: int = 6
    train_window: int = 60
    num_leaves: int = 4
    n_estimators: int = 60
    learning_rate: float = 0.05
    min_child_samples: int = 10
    reg_lambda: float = 1.0
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "n_lags": self.n_lags >= 0,
            "n_features": self.n_features >= 1,
            "train_window": self.train_window >= MIN_TRAIN_ROWS,
            "num_leaves": self.num_leaves >= 2,
            "n_estimators": self.n_estimators >= 1,
            "learning_rate": self.learning_rate > 0,
            "min_child_samples": self.min_child_samples >= 1,
            "reg_lambda": self.reg_lambda >= 0,
            "feature_fraction": 0 < self.feature_fraction <= 1,
            "bagging_fraction": 0 < self.bagging_fraction <= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid ModelParams {bad}: {self}")

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelParams:
        """Strict on unknown keys so a typo in stored params fails loudly instead of defaulting."""
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown ModelParams keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = int(value) if known[name].type in ("int", int) else float(value)
        return cls(**kwargs)

    def lightgbm_params(self) -> dict[str, Any]:
        """Native LightGBM parameters; single-threaded and deterministic so reruns match."""
        return {
            "objective": "regression",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_child_samples,
            "lambda_l2": self.reg_lambda,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "verbose": -1,
        }


def candidate_columns(columns: Iterable[str], n_lags: int) -> list[str]:
    """Base features plus lag columns with ``k <= n_lags``, in the given order."""
    out = []
    for name in columns:
        if name in NON_FEATURE_COLUMNS:
            continue
        match = LAG_PATTERN.match(name)
        if match is not None and int(match["k"]) > n_lags:
            continue
        out.append(name)
    return out


def numeric_columns(frame: pl.DataFrame) -> list[str]:
    """Non-numeric columns (a ticker string, say) cannot feed LightGBM and are left out."""
    return [name for name, dtype in frame.schema.items() if dtype.is_numeric()]


def feature_matrix(frame: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks feature columns {missing}")
    if not names:
        return np.empty((frame.height, 0))
    # Column by column: a polars select + to_numpy costs more than the tree fit on small frames.
    return np.column_stack(
        [frame.get_column(n).cast(pl.Float64).to_numpy().astype(np.float64) for n in names]
    )


def target_values(frame: pl.DataFrame) -> np.ndarray:
    y = frame.get_column(TARGET).cast(pl.Float64).to_numpy().astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("target has null, NaN or infinite values")
    return y


def check_training_frame(frame: pl.DataFrame) -> None:
    for name in (DATE, TARGET):
        if name not in frame.columns:
            raise ValueError(f"training frame lacks column {name!r}")
    if frame.schema[DATE] != pl.Date:
        raise ValueError(f"column 'date' must be pl.Date, got {frame.schema[DATE]}")
    dates = frame.get_column(DATE)
    if dates.null_count():
        raise ValueError("column 'date' has nulls")
    if frame.height > 1 and not bool((dates.diff().drop_nulls().dt.total_days() > 0).all()):
        raise ValueError("dates must be sorted ascending and unique")


def rows_before(frame: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Rows strictly before ``day``: the only rows a model for ``day`` may learn from."""
    return frame.filter(pl.col(DATE) < day)
