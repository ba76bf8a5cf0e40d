"""LightGBM fits with feature elimination, shrinkage and sigma, and the daily retrain.

Daily open-to-close direction of large US stocks is at best about 51-52% predictable, so every
fit falls back to the naive forecast (return 0, close = open) unless the training rows
themselves give out-of-sample evidence of skill:

* **Shrinkage.** ``fit_model`` replays its whole procedure (feature elimination + LightGBM) on
  an inner, time-ordered split of the training rows: the second half of the rows is cut into
  ``INNER_FOLDS`` consecutive blocks and each block is predicted by a model fitted on every row
  before it. On those out-of-sample pairs (prediction ``p``, actual ``y``) the calibration
  slope through the origin is ``b = sum(p*y) / sum(p*p)`` with standard error
  ``se = sqrt(sum((y - b*p)**2) / (m - 1) / sum(p*p))``. The shrinkage factor is the lower end
  of a one-standard-error band, ``clip(b - se, 0, 1)``: a slope that cannot be told apart from
  zero gives 0 (the naive forecast) and only a clearly positive slope lets predictions through.
  Predictions are ``shrinkage * booster prediction`` (shrunk towards 0, not towards the mean).
* **Sigma.** The root-mean-square of the shrunk inner out-of-sample residuals, floored at
  ``SIGMA_FLOOR_FRACTION`` times a robust spread of the training target (1.4826 * MAD, the
  sample standard deviation if the MAD is 0). Daily returns are barely predictable, so residuals
  that look tighter than the target's own spread are more likely luck on a few rows than skill.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from zdte_assets.features.volatility import Calibration, calibrate, standardized_residuals
from zdte_assets.model.distribution import PredictiveDistribution, predictive_distribution
from zdte_assets.model.params import (
    DATE,
    MIN_TRAIN_ROWS,
    SESSION_VOL,
    TARGET,
    InsufficientHistoryError,
    ModelParams,
    candidate_columns,
    check_training_frame,
    feature_matrix,
    numeric_columns,
    rows_before,
    target_values,
)
from zdte_assets.model.scoring import objective_accuracy

#: Consecutive blocks the second half of the training rows is cut into for the inner evidence.
INNER_FOLDS = 2
#: Trees in each elimination-ranking booster (at most ``n_estimators``).
RANK_ROUNDS = 30
#: Sigma is never below this multiple of the target's robust spread.
SIGMA_FLOOR_FRACTION = 1.0
#: Scales a median absolute deviation to a standard deviation under normality.
MAD_TO_SD = 1.4826
#: Smallest sigma a model carries (a constant target is refused earlier; this guards rounding).
SIGMA_EPSILON = 1e-12


def _train_booster(
    x: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    params: ModelParams,
    rounds: int | None = None,
) -> lgb.Booster:
    lgb_params = params.lightgbm_params()
    data = lgb.Dataset(x, label=y, feature_name=list(names), params=lgb_params)
    # The same loop lgb.train runs without callbacks or validation sets, minus its parameter
    # copying and its final model-to-text-and-back round trip, which on a few dozen rows cost
    # more than the boosting itself.
    booster = lgb.Booster(params=lgb_params, train_set=data)
    for _ in range(params.n_estimators if rounds is None else rounds):
        booster.update()
    return booster


def _predict(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(x, num_threads=1), dtype=np.float64)


def select_features(
    train: pl.DataFrame, candidates: Sequence[str], params: ModelParams
) -> list[str]:
    """Recursive elimination by LightGBM gain in at most two rounds, on ``train`` rows only.

    Round one drops half of the surplus over ``params.n_features``, round two (on the survivors,
    re-ranked) the rest: re-ranking is what makes it recursive, two rounds keep it cheap. The
    ranking boosters stop after ``RANK_ROUNDS`` trees: a ranking needs to know which features
    the first trees split on, not a converged fit. Ties (typically features never split on)
    keep the earlier column. Returns names in column order.
    """
    names = list(candidates)
    if min(params.n_features, len(names)) >= len(names):
        return names
    kept = _select_columns(feature_matrix(train, names), target_values(train), names, params)
    return [names[i] for i in kept]


def _select_columns(
    x: np.ndarray, y: np.ndarray, names: Sequence[str], params: ModelParams
) -> list[int]:
    """`select_features` on a prebuilt matrix: the indices of the kept columns, in order."""
    keep_n = min(params.n_features, len(names))
    if keep_n >= len(names):
        return list(range(len(names)))
    surplus = len(names) - keep_n
    schedule = [keep_n + surplus // 2, keep_n] if surplus >= 2 else [keep_n]
    kept = list(range(len(names)))
    for size in schedule:
        booster = _train_booster(
            x[:, kept], y, [names[i] for i in kept], params, min(params.n_estimators, RANK_ROUNDS)
        )
        gain = booster.feature_importance(importance_type="gain")
        splits = booster.feature_importance(importance_type="split")
        order = sorted(range(len(kept)), key=lambda j: (-gain[j], -splits[j], j))
        kept = sorted(kept[j] for j in order[:size])
    return kept


def _fit_core(
    x: np.ndarray, y: np.ndarray, names: Sequence[str], params: ModelParams
) -> tuple[lgb.Booster, list[int]]:
    """Elimination then the final booster, on rows of a matrix built once per `fit_model`:
    converting polars columns for every inner fit cost about as much as the small fits."""
    kept = _select_columns(x, y, names, params)
    booster = _train_booster(x[:, kept], y, [names[i] for i in kept], params)
    return booster, kept


def inner_blocks(n_rows: int) -> list[tuple[int, int]]:
    """(start, end) of the inner out-of-sample blocks: the second half in ``INNER_FOLDS`` parts."""
    start = n_rows // 2
    bounds = np.linspace(start, n_rows, INNER_FOLDS + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def _calibration(pred: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Slope of actual on predicted through the origin, and its standard error."""
    ss = float(np.dot(pred, pred))
    if ss <= 0 or len(pred) < 2:
        return 0.0, math.inf
    slope = float(np.dot(pred, actual)) / ss
    resid = actual - slope * pred
    se = math.sqrt(float(np.dot(resid, resid)) / (len(pred) - 1) / ss)
    return slope, se


def robust_spread(y: np.ndarray) -> float:
    """1.4826 * MAD (a standard deviation under normality, unmoved by a few outliers)."""
    mad = float(np.median(np.abs(y - np.median(y))))
    spread = MAD_TO_SD * mad
    if spread <= 0:
        spread = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
    return spread


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A LightGBM booster plus what is needed to use it honestly (shrinkage, sigma, features)."""

    booster: lgb.Booster
    features: tuple[str, ...]
    shrinkage: float
    sigma: float
    params: ModelParams
    diagnostics: dict[str, Any] = field(default_factory=dict)
    #: Tail shape and conformal factor of the session distribution (``volatility.calibrate``).
    calibration: Calibration = field(default_factory=Calibration)

    def predict_raw(self, frame: pl.DataFrame) -> np.ndarray:
        """Booster output before shrinkage, for diagnostics only."""
        return _predict(self.booster, feature_matrix(frame, self.features))

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Shrunk predicted log returns (``+ 0.0`` turns ``-0.0`` into ``0.0``)."""
        return self.shrinkage * self.predict_raw(frame) + 0.0

    def predictive(self, frame: pl.DataFrame) -> list[PredictiveDistribution]:
        return [predictive_distribution(m, self.sigma) for m in self.predict(frame)]

    def importance(self) -> tuple[list[str], list[float]]:
        """Selected features by total gain, largest first (ties in column order)."""
        gains = self.booster.feature_importance(importance_type="gain")
        order = sorted(range(len(self.features)), key=lambda j: (-gains[j], j))
        return [self.features[j] for j in order], [float(gains[j]) for j in order]

    def validation_metrics(self) -> dict[str, float]:
        """The inner out-of-sample evidence as plain floats (what MLflow metrics accept)."""
        keys = (
            "inner_rmse",
            "inner_naive_rmse",
            "inner_accuracy",
            "calibration_slope",
            "calibration_se",
            "target_robust_spread",
            "n_inner_oos",
        )
        out = {}
        for key in keys:
            value = self.diagnostics.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                out[key] = float(value)
        if out.get("inner_naive_rmse"):
            out["inner_rmse_ratio"] = out["inner_rmse"] / out["inner_naive_rmse"]
        return out

    def to_dir(self, path: str | os.PathLike[str]) -> Path:
        """Text booster + JSON metadata (``persistence.save_model_dir``); never pickled."""
        from zdte_assets.model.persistence import save_model_dir

        return save_model_dir(self, path)

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str]) -> FittedModel:
        """The model ``to_dir`` wrote (``persistence.load_model_dir``)."""
        from zdte_assets.model.persistence import load_model_dir

        return load_model_dir(path)


def fit_model(train: pl.DataFrame, params: ModelParams) -> FittedModel:
    """Elimination, final fit, shrinkage and sigma, all from ``train`` rows only.

    Shrinkage and sigma come from replaying the full procedure (elimination included) on the
    inner time-ordered blocks, so the evidence for them is out-of-sample and the selection seen
    by each inner model never includes the block it predicts.
    """
    check_training_frame(train)
    n = train.height
    if n < MIN_TRAIN_ROWS:
        raise ValueError(f"fit_model needs at least {MIN_TRAIN_ROWS} rows, got {n}")
    y = target_values(train)
    if float(np.ptp(y)) == 0.0:
        raise ValueError("target is constant over the training rows; nothing to learn")
    candidates = candidate_columns(numeric_columns(train), params.n_lags)
    if not candidates:
        raise ValueError("training frame has no numeric feature columns")

    x = feature_matrix(train, candidates)
    oos_pred, oos_actual = [], []
    for start, end in inner_blocks(n):
        booster, kept = _fit_core(x[:start], y[:start], candidates, params)
        oos_pred.append(_predict(booster, x[start:end][:, kept]))
        oos_actual.append(y[start:end])
    pred = np.concatenate(oos_pred)
    actual = np.concatenate(oos_actual)
    slope, se = _calibration(pred, actual)
    shrinkage = float(np.clip(slope - se, 0.0, 1.0))
    resid = actual - shrinkage * pred
    sigma_oos = math.sqrt(float(np.mean(resid**2)))
    spread = robust_spread(y)
    sigma = max(sigma_oos, SIGMA_FLOOR_FRACTION * spread, SIGMA_EPSILON)

    booster, kept = _fit_core(x, y, candidates, params)
    selected = [candidates[i] for i in kept]
    dates = train.get_column(DATE)
    diagnostics = {
        "n_train_rows": n,
        "train_start": dates[0].isoformat(),
        "train_end": dates[-1].isoformat(),
        "n_inner_oos": len(actual),
        "calibration_slope": slope,
        "calibration_se": se if math.isfinite(se) else None,
        "sigma_oos": sigma_oos,
        "target_robust_spread": spread,
        "inner_rmse": sigma_oos,
        "inner_naive_rmse": math.sqrt(float(np.mean(actual**2))),
        "inner_accuracy": objective_accuracy(shrinkage * pred + 0.0, actual),
    }
    return FittedModel(
        booster=booster,
        features=tuple(selected),
        shrinkage=shrinkage,
        sigma=sigma,
        params=params,
        diagnostics=diagnostics,
    )


def train_daily(
    rows: pl.DataFrame, params: ModelParams, *, before: dt.date | None = None
) -> FittedModel:
    """Daily refit on the last ``params.train_window`` rows, calibrated on all rows given.

    The caller passes rows with ``date < t``; passing ``before=t`` makes the cut here as well,
    so a frame that still holds day ``t`` or later cannot leak into the fit. The session
    distribution's shape and conformal factor come from every row passed (the most recent
    ``volatility.CALIBRATION_WINDOW``), each a return standardized by the volatility forecast
    made before it.
    """
    if before is not None:
        rows = rows_before(rows, before)
    check_training_frame(rows)
    if rows.height < params.train_window:
        raise InsufficientHistoryError(params.train_window, rows.height, "daily retrain")
    model = fit_model(rows.tail(params.train_window), params)
    if SESSION_VOL not in rows.columns:
        return model
    z = standardized_residuals(rows[TARGET].to_numpy(), rows[SESSION_VOL].to_numpy())
    return dataclasses.replace(model, calibration=calibrate(z))
