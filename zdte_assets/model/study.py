"""The weekly Optuna study: search space, objectives, the Pareto choice and stored studies.

* **Objectives.** RMSE and directional accuracy (``scoring``: the platform's definitions, with
  an abstaining model scored as a coin), pooled over all validation rows of all walk-forward
  windows (every window has ``test_days`` rows, so pooled accuracy equals the mean of the window
  accuracies and pooled RMSE is the root of the mean window MSE).
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
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import polars as pl
from optuna.trial import TrialState

from zdte_assets.core import timing
from zdte_assets.model.params import (
    DATE,
    MIN_TRAIN_ROWS,
    ModelParams,
    candidate_columns,
    check_training_frame,
    numeric_columns,
    target_values,
)
from zdte_assets.model.scoring import objective_accuracy, rmse
from zdte_assets.model.walkforward import (
    MAX_TRAIN_WINDOW,
    TRAIN_WINDOW_STEP,
    WalkForwardConfig,
    WindowResult,
    evaluate_walk_forward,
    pooled,
    study_train_window_range,
    walk_forward_windows,
)

#: Study search-space bounds: lags tried, and the most features elimination may keep.
STUDY_LAGS = (2, 5)
STUDY_MAX_FEATURES = 12
#: Part of every study fingerprint: a stored study scored by an older scheme (one that trained
#: every window on ``train_days`` rows, or one that scored a flat day or a zero forecast as half
#: a hit) must not be resumed as if comparable.
STUDY_EVALUATION_VERSION = 3


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
    for name in numeric_columns(frame):
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
    check_training_frame(frame)
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    if cfg.train_days < MIN_TRAIN_ROWS:
        raise ValueError(f"cfg.train_days must be >= {MIN_TRAIN_ROWS}")
    windows = walk_forward_windows(frame.height, cfg)
    train_window_range = _effective_train_window_range(frame.height, cfg, train_window_range)
    max_features = len(candidate_columns(numeric_columns(frame), STUDY_LAGS[1]))
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
        pred, actual = pooled(evaluated[params])
        return rmse(pred, actual), objective_accuracy(pred, actual)

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
    y_val = target_values(frame)[val_idx]
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
