"""Walk-forward evaluation, feature elimination, LightGBM fits and the weekly Optuna study.

Daily open-to-close direction of large US stocks is at best about 51-52% predictable, so every
piece here is built to fall back to the naive forecast (return 0, close = open) unless the
training rows themselves give out-of-sample evidence of skill:

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
* **Predictive distribution.** Student-t with ``DEFAULT_DF`` degrees of freedom, scaled so its
  standard deviation equals sigma (fat tails without inflating the spread); ``df=None`` gives a
  normal distribution.
* **Directional accuracy.** ``evaluation.directional_accuracy``, the platform's one definition:
  hits over calls, where a forecast of exactly 0 is no call and a call on a flat day is a miss;
  a window without any call scores 0.5 (a coin) so the objective stays a number.
* **Walk-forward validation.** The validation rows are the same for every trial: the last
  ``n_windows * test_days`` rows, cut into ``n_windows`` consecutive test windows. Each test
  window is predicted by a model fitted on the ``train_window`` rows immediately before it, the
  same length the daily retrain will use, so the searched ``train_window`` is scored by exactly
  what it changes in production. ``WalkForwardConfig.train_days`` is the shortest window the
  study tries; the longest is ``MAX_TRAIN_WINDOW``, capped by the rows before the first test
  window (so ``train_days + n_windows * test_days`` rows still run a study, with the range
  collapsed to ``train_days``).
* **Study objectives.** Pooled over all validation rows of all windows (every window has
  ``test_days`` rows, so pooled accuracy equals the mean of the window accuracies and pooled RMSE
  is the root of the mean window MSE).
* **Choice rule** (``choose_trial``): a Pareto trial *beats naive* when its RMSE is strictly
  below the naive RMSE (predicting 0 on the same rows) and its accuracy is strictly above the
  majority rate ``max(base_rate, 1 - base_rate)`` (what always-up or always-down scores). If any
  trial beats naive, pick the highest accuracy among them, ties to lower RMSE, then lower trial
  number. If none does, ``beats_naive`` is False and the pick is the lowest RMSE, ties to higher
  accuracy, then lower trial number. This is a point comparison on few rows, not a significance
  test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, overload

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import optuna
import polars as pl
from optuna.trial import TrialState
from scipy import stats

from zdte_assets.core import timing
from zdte_assets.core.errors import ZdteError
from zdte_assets.evaluation import metrics as evaluation
from zdte_assets.features.volatility import Calibration, calibrate, standardized_residuals

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
#: Consecutive blocks the second half of the training rows is cut into for the inner evidence.
INNER_FOLDS = 2
#: Trees in each elimination-ranking booster (at most ``n_estimators``).
RANK_ROUNDS = 30
#: Sigma is never below this multiple of the target's robust spread.
SIGMA_FLOOR_FRACTION = 1.0
#: Degrees of freedom of the Student-t predictive distribution.
DEFAULT_DF = 5.0
#: Study search-space bounds.
STUDY_LAGS = (2, 5)
STUDY_MAX_FEATURES = 12
#: Longest daily retrain window the default search space proposes (sizes the history to load).
MAX_TRAIN_WINDOW = 120
TRAIN_WINDOW_STEP = 10
#: Part of every study fingerprint: a stored study scored by an older scheme (one that trained
#: every window on ``train_days`` rows, or one that scored a flat day or a zero forecast as half
#: a hit) must not be resumed as if comparable.
STUDY_EVALUATION_VERSION = 3
METADATA_FILE = "metadata.json"
BOOSTER_FILE = "booster.txt"
METADATA_FORMAT = 1


class InsufficientHistoryError(ZdteError, ValueError):
    """Fewer rows than a walk-forward or retrain needs; says how many are needed and given."""

    def __init__(self, needed: int, available: int, what: str = "walk-forward") -> None:
        self.needed = needed
        self.available = available
        super().__init__(f"{what} needs {needed} rows, got {available}")


# --------------------------------------------------------------------------- walk-forward


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


def rows_before(frame: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Rows strictly before ``day``: the only rows a model for ``day`` may learn from."""
    return frame.filter(pl.col(DATE) < day)


# --------------------------------------------------------------------------- parameters


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


def _numeric_columns(frame: pl.DataFrame) -> list[str]:
    """Non-numeric columns (a ticker string, say) cannot feed LightGBM and are left out."""
    return [name for name, dtype in frame.schema.items() if dtype.is_numeric()]


def _matrix(frame: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks feature columns {missing}")
    if not names:
        return np.empty((frame.height, 0))
    # Column by column: a polars select + to_numpy costs more than the tree fit on small frames.
    return np.column_stack(
        [frame.get_column(n).cast(pl.Float64).to_numpy().astype(np.float64) for n in names]
    )


def _target(frame: pl.DataFrame) -> np.ndarray:
    y = frame.get_column(TARGET).cast(pl.Float64).to_numpy().astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("target has null, NaN or infinite values")
    return y


def _check_training_frame(frame: pl.DataFrame) -> None:
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


# --------------------------------------------------------------------------- fitting


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
    kept = _select_columns(_matrix(train, names), _target(train), names, params)
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
    spread = 1.4826 * mad
    if spread <= 0:
        spread = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
    return spread


@dataclass(frozen=True)
class PredictiveDistribution:
    """Distribution of the log open-to-close return: Student-t (std = sigma) or normal."""

    mean: float
    sigma: float
    df: float | None = DEFAULT_DF

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"need a finite mean and a positive sigma, got {self}")
        if self.df is not None and not self.df > 2:
            raise ValueError("df must be > 2 (finite variance) or None for a normal")

    def _frozen(self) -> Any:
        if self.df is None:
            return stats.norm(loc=self.mean, scale=self.sigma)
        scale = self.sigma * math.sqrt((self.df - 2) / self.df)
        return stats.t(self.df, loc=self.mean, scale=scale)

    @overload
    def prob_above(self, log_threshold: float) -> float: ...

    @overload
    def prob_above(self, log_threshold: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

    def prob_above(
        self, log_threshold: float | npt.NDArray[np.float64]
    ) -> float | npt.NDArray[np.float64]:
        """P(return > log_threshold); ``log(strike / open)`` gives P(close > strike)."""
        out = self._frozen().sf(log_threshold)
        return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)

    @overload
    def quantile(self, q: float) -> float: ...

    @overload
    def quantile(self, q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

    def quantile(self, q: float | npt.NDArray[np.float64]) -> float | npt.NDArray[np.float64]:
        """Inverse CDF; arrays are accepted so pricing can integrate payoffs over quantiles."""
        out = self._frozen().ppf(q)
        return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)

    @property
    def p_up(self) -> float:
        return self.prob_above(0.0)

    @property
    def q05(self) -> float:
        return self.quantile(0.05)

    @property
    def q95(self) -> float:
        return self.quantile(0.95)

    def to_dict(self) -> dict[str, float | None]:
        return {
            "mean": self.mean,
            "sigma": self.sigma,
            "df": self.df,
            "p_up": self.p_up,
            "q05": self.q05,
            "q95": self.q95,
        }


def predictive_distribution(
    mean: float, sigma: float, df: float | None = DEFAULT_DF
) -> PredictiveDistribution:
    """Student-t by default because daily returns have fatter tails than a normal."""
    return PredictiveDistribution(mean=float(mean), sigma=float(sigma), df=df)


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
        return _predict(self.booster, _matrix(frame, self.features))

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
        """Text booster + JSON metadata: readable, diffable, and never unpickled."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(out / BOOSTER_FILE))
        meta = {
            "format": METADATA_FORMAT,
            "features": list(self.features),
            "shrinkage": self.shrinkage,
            "sigma": self.sigma,
            "params": self.params.to_dict(),
            "diagnostics": self.diagnostics,
            "calibration": self.calibration.to_dict(),
        }
        (out / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return out

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str]) -> FittedModel:
        src = Path(path)
        meta = json.loads((src / METADATA_FILE).read_text())
        if meta.get("format") != METADATA_FORMAT:
            raise ValueError(f"unsupported model metadata format {meta.get('format')!r}")
        booster = lgb.Booster(model_file=str(src / BOOSTER_FILE))
        features = tuple(meta["features"])
        if tuple(booster.feature_name()) != features:
            raise ValueError("booster feature names do not match metadata")
        return cls(
            booster=booster,
            features=features,
            shrinkage=float(meta["shrinkage"]),
            sigma=float(meta["sigma"]),
            params=ModelParams.from_dict(meta["params"]),
            diagnostics=dict(meta.get("diagnostics", {})),
            calibration=Calibration.from_dict(meta["calibration"])
            if "calibration" in meta
            else Calibration(),
        )


def fit_model(train: pl.DataFrame, params: ModelParams) -> FittedModel:
    """Elimination, final fit, shrinkage and sigma, all from ``train`` rows only.

    Shrinkage and sigma come from replaying the full procedure (elimination included) on the
    inner time-ordered blocks, so the evidence for them is out-of-sample and the selection seen
    by each inner model never includes the block it predicts.
    """
    _check_training_frame(train)
    n = train.height
    if n < MIN_TRAIN_ROWS:
        raise ValueError(f"fit_model needs at least {MIN_TRAIN_ROWS} rows, got {n}")
    y = _target(train)
    if float(np.ptp(y)) == 0.0:
        raise ValueError("target is constant over the training rows; nothing to learn")
    candidates = candidate_columns(_numeric_columns(train), params.n_lags)
    if not candidates:
        raise ValueError("training frame has no numeric feature columns")

    x = _matrix(train, candidates)
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
    sigma = max(sigma_oos, SIGMA_FLOOR_FRACTION * spread, 1e-12)

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
        "inner_accuracy": directional_accuracy(shrinkage * pred + 0.0, actual),
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
    _check_training_frame(rows)
    if rows.height < params.train_window:
        raise InsufficientHistoryError(params.train_window, rows.height, "daily retrain")
    model = fit_model(rows.tail(params.train_window), params)
    if SESSION_VOL not in rows.columns:
        return model
    z = standardized_residuals(rows[TARGET].to_numpy(), rows[SESSION_VOL].to_numpy())
    return dataclasses.replace(model, calibration=calibrate(z))


# --------------------------------------------------------------------------- evaluation


def directional_accuracy(pred: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """`evaluation.directional_accuracy` (hits over calls; a flat day is a miss), with 0.5 - a
    coin - when the forecast never calls, because an objective must be a number and a model
    that always abstains has shown no directional skill."""
    p = np.asarray(pred, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if p.shape != a.shape or p.size == 0:
        raise ValueError("pred and actual must be non-empty and of equal shape")
    acc = evaluation.directional_accuracy(a, p)
    return 0.5 if math.isnan(acc) else acc


def rmse(pred: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return math.sqrt(float(np.mean(diff**2)))


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
    _check_training_frame(frame)
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
                actual=tuple(float(v) for v in _target(test)),
                features=model.features,
                shrinkage=model.shrinkage,
            )
        )
    return out


def _pooled(windows: Sequence[WindowResult]) -> tuple[np.ndarray, np.ndarray]:
    pred = np.array([v for w in windows for v in w.predicted], dtype=np.float64)
    actual = np.array([v for w in windows for v in w.actual], dtype=np.float64)
    return pred, actual


# --------------------------------------------------------------------------- study


@dataclass(frozen=True)
class TrialSummary:
    """One Pareto trial: its number, parameters and the two pooled objectives."""

    number: int
    params: ModelParams
    rmse: float
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "params": self.params.to_dict(),
            "rmse": self.rmse,
            "accuracy": self.accuracy,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSummary:
        return cls(
            number=int(data["number"]),
            params=ModelParams.from_dict(data["params"]),
            rmse=float(data["rmse"]),
            accuracy=float(data["accuracy"]),
        )


def choose_trial(
    pareto: Sequence[TrialSummary], naive_rmse: float, base_rate: float
) -> tuple[TrialSummary, bool]:
    """Pick one Pareto trial by the rule in the module docstring; returns (trial, beats_naive).

    Requiring both lower RMSE than 0 and higher accuracy than the majority direction means a
    model that only learned the drift (always up) does not count as beating naive.
    """
    if not pareto:
        raise ValueError("no Pareto trials to choose from")
    majority = max(base_rate, 1.0 - base_rate)
    winners = [t for t in pareto if t.rmse < naive_rmse and t.accuracy > majority]
    if winners:
        return min(winners, key=lambda t: (-t.accuracy, t.rmse, t.number)), True
    return min(pareto, key=lambda t: (t.rmse, -t.accuracy, t.number)), False


@dataclass(frozen=True)
class StudyResult:
    """What the weekly study found, JSON-ready for storage, MLflow and a plot."""

    study_name: str
    config: WalkForwardConfig
    seed: int
    n_complete_trials: int
    pareto: tuple[TrialSummary, ...]
    chosen: TrialSummary
    beats_naive: bool
    naive_rmse: float
    base_rate: float
    n_validation_rows: int
    windows: tuple[WindowResult, ...]

    @property
    def params(self) -> ModelParams:
        return self.chosen.params

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "n_complete_trials": self.n_complete_trials,
            "pareto": [t.to_dict() for t in self.pareto],
            "chosen": self.chosen.to_dict(),
            "beats_naive": self.beats_naive,
            "naive_rmse": self.naive_rmse,
            "base_rate": self.base_rate,
            "majority_rate": max(self.base_rate, 1.0 - self.base_rate),
            "n_validation_rows": self.n_validation_rows,
            "windows": [w.to_dict() for w in self.windows],
            "validation": {
                "window": [w.window for w in self.windows for _ in w.test_dates],
                "dates": [d.isoformat() for w in self.windows for d in w.test_dates],
                "predicted": [v for w in self.windows for v in w.predicted],
                "actual": [v for w in self.windows for v in w.actual],
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyResult:
        return cls(
            study_name=str(data["study_name"]),
            config=WalkForwardConfig.from_dict(data["config"]),
            seed=int(data["seed"]),
            n_complete_trials=int(data["n_complete_trials"]),
            pareto=tuple(TrialSummary.from_dict(t) for t in data["pareto"]),
            chosen=TrialSummary.from_dict(data["chosen"]),
            beats_naive=bool(data["beats_naive"]),
            naive_rmse=float(data["naive_rmse"]),
            base_rate=float(data["base_rate"]),
            n_validation_rows=int(data["n_validation_rows"]),
            windows=tuple(WindowResult.from_dict(w) for w in data["windows"]),
        )


def suggest_params(
    trial: optuna.Trial,
    max_features: int,
    seed: int,
    train_window_range: tuple[int, int] = (30, MAX_TRAIN_WINDOW),
) -> ModelParams:
    """The search space; ranges sized for 30-120 daily rows (shallow trees, strong leaves).

    A ``train_window_range`` whose width is not a multiple of ``TRAIN_WINDOW_STEP`` is searched
    in steps of one row, so both of its ends stay reachable.
    """
    lo, hi = train_window_range
    step = TRAIN_WINDOW_STEP if (hi - lo) % TRAIN_WINDOW_STEP == 0 else 1
    return ModelParams(
        n_lags=trial.suggest_int("n_lags", *STUDY_LAGS),
        n_features=trial.suggest_int(
            "n_features", min(2, max_features), min(STUDY_MAX_FEATURES, max_features)
        ),
        train_window=trial.suggest_int("train_window", lo, hi, step=step),
        num_leaves=trial.suggest_int("num_leaves", 2, 8),
        n_estimators=trial.suggest_int("n_estimators", 20, 150, step=10),
        learning_rate=trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        min_child_samples=trial.suggest_int("min_child_samples", 5, 20),
        reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        feature_fraction=trial.suggest_float("feature_fraction", 0.5, 1.0),
        bagging_fraction=trial.suggest_float("bagging_fraction", 0.5, 1.0),
        seed=seed,
    )


def data_fingerprint(
    frame: pl.DataFrame, cfg: WalkForwardConfig, train_window_range: tuple[int, int]
) -> str:
    """Hash of the rows, columns, windows, search space and scoring scheme a study is valid for."""
    digest = hashlib.sha256()
    header = [frame.columns, cfg.to_dict(), list(train_window_range), STUDY_EVALUATION_VERSION]
    digest.update(json.dumps(header).encode())
    digest.update(frame.get_column(DATE).cast(pl.Int32).to_numpy().tobytes())
    for name in _numeric_columns(frame):
        values = frame.get_column(name).cast(pl.Float64).fill_null(float("nan")).to_numpy()
        digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _trial_summary(trial: optuna.trial.FrozenTrial, seed: int) -> TrialSummary:
    stored = trial.user_attrs.get("model_params")
    params = (
        ModelParams.from_dict(stored)
        if stored is not None
        else ModelParams.from_dict({**trial.params, "seed": seed})
    )
    values = trial.values
    assert values is not None
    return TrialSummary(
        number=trial.number, params=params, rmse=float(values[0]), accuracy=float(values[1])
    )


def _effective_train_window_range(
    n_rows: int, cfg: WalkForwardConfig, requested: tuple[int, int] | None
) -> tuple[int, int]:
    """The default range, or ``requested`` with its upper end capped by the rows available."""
    if requested is None:
        return study_train_window_range(n_rows, cfg)
    lo, hi = requested
    if not MIN_TRAIN_ROWS <= lo <= hi:
        raise ValueError(f"bad train_window_range {requested}")
    walk_forward_windows(n_rows, cfg, lo)
    return lo, min(hi, n_rows - cfg.n_windows * cfg.test_days)


def run_study(
    frame: pl.DataFrame,
    cfg: WalkForwardConfig,
    n_trials: int = 24,
    seed: int = 0,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    *,
    train_window_range: tuple[int, int] | None = None,
) -> StudyResult:
    """Multi-objective study (min RMSE, max directional accuracy) over walk-forward windows.

    ``TPESampler(seed=seed)`` with ``n_jobs=1`` makes an in-memory study reproducible. With a
    storage URL the study is created once (``load_if_exists``) under a name derived from the
    data unless given, so several workers share it; trials stop once ``n_trials`` are complete
    in total, and rerunning a finished study only recomputes the result. A stored study whose
    data fingerprint differs from ``frame`` is refused rather than mixed.

    Every trial is scored on the same validation rows, each test window predicted from the
    trial's ``train_window`` rows just before it (see ``evaluate_walk_forward``), so the
    searched ``train_window`` changes the objectives. The range defaults to
    ``study_train_window_range``: ``cfg.train_days`` up to ``MAX_TRAIN_WINDOW``, capped by the
    rows before the first test window, so ``cfg.rows_needed`` rows (70 by default) still run,
    with ``train_window`` fixed at ``cfg.train_days``. An explicit ``train_window_range`` has its
    upper end capped the same way; ``(w, w)`` fixes the window. Optuna's per-trial INFO lines
    are silenced (verbosity WARNING, process-wide) so orchestration logs stay readable.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _check_training_frame(frame)
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    if cfg.train_days < MIN_TRAIN_ROWS:
        raise ValueError(f"cfg.train_days must be >= {MIN_TRAIN_ROWS}")
    windows = walk_forward_windows(frame.height, cfg)
    train_window_range = _effective_train_window_range(frame.height, cfg, train_window_range)
    max_features = len(candidate_columns(_numeric_columns(frame), STUDY_LAGS[1]))
    if max_features == 0:
        raise ValueError("frame has no numeric feature columns")

    fingerprint = data_fingerprint(frame, cfg, train_window_range)
    name = study_name or f"zdte-{fingerprint[:16]}"
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.TPESampler(seed=seed),
        load_if_exists=True,
    )
    if [d.name for d in study.directions] != ["MINIMIZE", "MAXIMIZE"]:
        raise ValueError(f"study {name!r} exists with other directions")
    stored = study.user_attrs.get("data_fingerprint")
    if stored is None:
        study.set_user_attr("data_fingerprint", fingerprint)
    elif stored != fingerprint:
        raise ValueError(f"study {name!r} was run on other data or settings; use a new name")

    evaluated: dict[ModelParams, list[WindowResult]] = {}

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        params = suggest_params(trial, max_features, seed, train_window_range)
        trial.set_user_attr("model_params", params.to_dict())
        evaluated[params] = evaluate_walk_forward(frame, cfg, params)
        pred, actual = _pooled(evaluated[params])
        return rmse(pred, actual), directional_accuracy(pred, actual)

    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if done < n_trials:
        study.optimize(
            objective,
            n_trials=n_trials - done,
            n_jobs=1,
            callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,))],
        )

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pareto = sorted((_trial_summary(t, seed) for t in study.best_trials), key=lambda t: t.number)
    val_idx = np.concatenate([test for _, test in windows])
    y_val = _target(frame)[val_idx]
    naive = rmse(np.zeros_like(y_val), y_val)
    base_rate = float(np.mean(y_val > 0))
    chosen, beats = choose_trial(pareto, naive, base_rate)
    return StudyResult(
        study_name=name,
        config=cfg,
        seed=seed,
        n_complete_trials=len(complete),
        pareto=tuple(pareto),
        chosen=chosen,
        beats_naive=beats,
        naive_rmse=naive,
        base_rate=base_rate,
        n_validation_rows=len(y_val),
        windows=tuple(
            evaluated.get(chosen.params) or evaluate_walk_forward(frame, cfg, chosen.params)
        ),
    )


@dataclass(frozen=True)
class StudySnapshot:
    """A finished study as plain, picklable values: what a worker process hands back so that
    only one process ever writes the Optuna storage (SQLite allows one writer at a time)."""

    name: str
    directions: tuple[optuna.study.StudyDirection, ...]
    user_attrs: dict[str, Any]
    trials: tuple[optuna.trial.FrozenTrial, ...]

    def save(self, storage: str) -> None:
        """Store it under its name, replacing whatever else was stored under that name; an
        equal study already there (same rows, seed and size) is kept as it is."""
        fingerprint = str(self.user_attrs.get("data_fingerprint", ""))
        seed = int(self.user_attrs.get("seed", -1))
        if not stored_study_matches(storage, self.name, fingerprint, seed, len(self.trials)):
            self.replace_in(storage)

    def replace_in(self, storage: str) -> None:
        """Store it under its name, replacing whatever was stored under that name."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=self.name, storage=storage)
        study = optuna.create_study(
            storage=storage,
            study_name=self.name,
            directions=list(self.directions),
        )
        for key, value in self.user_attrs.items():
            study.set_user_attr(key, value)
        study.add_trials(self.trials)


def compute_study_snapshot(
    frame: pl.DataFrame,
    cfg: WalkForwardConfig,
    n_trials: int,
    seed: int,
    study_name: str,
    *,
    train_window_range: tuple[int, int] | None = None,
) -> tuple[StudyResult, StudySnapshot]:
    """``run_study`` in memory; its result and the study, ready to store anywhere."""
    memory = optuna.storages.InMemoryStorage()
    result = run_study(
        frame, cfg, n_trials, seed, memory, study_name, train_window_range=train_window_range
    )
    study = optuna.load_study(study_name=study_name, storage=memory)
    study.set_user_attr("seed", seed)
    snapshot = StudySnapshot(
        name=study_name,
        directions=tuple(study.directions),
        user_attrs=dict(study.user_attrs),
        trials=tuple(study.get_trials(deepcopy=True)),
    )
    return result, snapshot


def run_study_stored(
    frame: pl.DataFrame,
    cfg: WalkForwardConfig,
    n_trials: int,
    seed: int,
    storage: str,
    study_name: str,
    *,
    train_window_range: tuple[int, int] | None = None,
) -> StudyResult:
    """``run_study`` computed in memory and stored in ``storage`` once, or reused from it.

    A stored study of the same name is reused when it was run on the same rows and settings
    (data fingerprint, seed) and holds exactly ``n_trials`` complete trials and nothing else:
    its result is the one a fresh run would give, since the sampler is seeded. Anything else
    stored under the name (a partial study of a killed run, other data) is replaced, so a retry
    is idempotent and a re-materialization after a data correction recomputes. Running in
    memory and storing once costs a fraction of writing every trial through an RDB storage
    (about 3 s of CPU per default study on SQLite), and optuna-dashboard still sees the study.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tw_range = _effective_train_window_range(frame.height, cfg, train_window_range)
    fingerprint = data_fingerprint(frame, cfg, tw_range)
    if stored_study_matches(storage, study_name, fingerprint, seed, n_trials):
        timing.count("studies_reused")
        return run_study(
            frame, cfg, n_trials, seed, storage, study_name, train_window_range=train_window_range
        )
    timing.count("studies_computed")
    result, snapshot = compute_study_snapshot(
        frame, cfg, n_trials, seed, study_name, train_window_range=train_window_range
    )
    snapshot.replace_in(storage)  # checked above: nothing equal is stored
    return result


def stored_study_matches(
    storage: str, study_name: str, fingerprint: str, seed: int, n_trials: int
) -> bool:
    """Whether ``storage`` holds a finished study of exactly these rows, settings and size."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return False
    attrs = study.user_attrs
    if attrs.get("data_fingerprint") != fingerprint or attrs.get("seed") != seed:
        return False
    trials = study.get_trials(deepcopy=False)
    return len(trials) == n_trials and all(t.state == TrialState.COMPLETE for t in trials)
