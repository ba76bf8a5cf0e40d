"""Typed records for every value that crosses a boundary (between assets, into storage, to the
desk's own tools), and their one JSON/Parquet serialization.

Records are frozen pydantic models: pydantic gives validation on read, JSON in and out, and the
JSON Schema the desk validates predictions against, from the same class (docs/CONTRACTS.md).
Each section below belongs to one part of the domain; keep the sections apart.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """Base of every record: immutable, unknown fields refused, so a renamed field fails loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- model: tuned versions and the model pointer -------------------------------------------------


class ParetoTrial(Record):
    """One Pareto trial of a weekly study: its number, parameters and pooled objectives."""

    number: int
    params: dict[str, int | float]
    rmse: float
    accuracy: float


class StudySettings(Record):
    """What a study ran with; a stored version is reused only under equal settings (and code)."""

    n_trials: int
    seed: int
    train_days: int
    test_days: int
    n_windows: int
    #: ``model.study.STUDY_EVALUATION_VERSION``: the scoring scheme.
    evaluation: int
    code_version: str


class TunedVersion(Record):
    """One weekly study's outcome, keyed by the last day of its data (``as_of``).

    A week keeps every version (the scheduled one, those of re-optimizations) so an old day's
    model stays reproducible; ``model.versions.select_version`` picks the one a day may use.
    """

    #: The week partition key (its Monday, ``YYYY-MM-DD``).
    week: str
    as_of: dt.date
    params: dict[str, int | float]
    rmse: float
    accuracy: float
    naive_rmse: float
    rmse_ratio: float
    base_rate: float
    beats_naive: bool
    pareto: tuple[ParetoTrial, ...]
    #: Walk-forward out-of-sample errors (actual - predicted) of the chosen trial: the level
    #: the drift report compares live errors with.
    validation_errors: tuple[float, ...] = ()
    mlflow_run_id: str
    study_name: str
    #: The SQLite URL, or "configured" (a server URL may carry credentials).
    optuna_storage: str
    created_in_run: str
    #: "schedule" or what triggered a re-optimization (the run's ``zdte/trigger`` tag).
    trigger: str
    #: Digest of the study's rows; empty in versions stored before it was recorded.
    data_digest: str = ""
    settings: StudySettings | None = None


class TunedWeek(Record):
    """The ``tuned_params`` asset value of one week: its versions, oldest ``as_of`` first."""

    ticker: str
    week: str
    versions: tuple[TunedVersion, ...]


class ModelPointer(Record):
    """The ``daily_model`` asset value: which registered model day ``day`` uses, and why.

    Models never travel through the IO manager; this points at the MLflow registry version and
    carries what the prediction and the drift report need about it.
    """

    ticker: str
    day: dt.date
    model_version: str
    model_uri: str
    mlflow_run_id: str
    #: The tuned version the parameters came from; None for fixed, untuned parameters.
    tuned_as_of: dt.date | None
    tuned_run_id: str
    beats_naive: bool
    params: dict[str, int | float]
    features: tuple[str, ...]
    sigma: float
    shrinkage: float
    train_first: dt.date
    train_last: dt.date
    #: The tuned version's walk-forward errors (drift's reference error level).
    reference_errors: tuple[float, ...] = ()
    #: Targets of the training rows (drift's reference return distribution).
    reference_returns: tuple[float, ...] = ()


# --- trading: the prediction and its outcome -----------------------------------------------------


# --- monitoring: the drift report ----------------------------------------------------------------
#: A statistic that may be undefined (too few observations): NaN and infinities are stored as
#: null, so the JSON is strict and any reader accepts it.
Statistic = float | None


class Trigger(Record):
    """One rule's verdict, with the number it compared and why, for logs and the UI."""

    name: str
    fired: bool
    value: Statistic
    threshold: float
    explanation: str


class FeatureDrift(Record):
    """One feature's recent window against the model's reference (``report.feature_drift``)."""

    feature: str
    n_ref: int
    n_cur: int
    ks_stat: Statistic
    ks_pvalue: Statistic
    autocorr: Statistic
    ks_pvalue_effective: Statistic
    ks_pvalue_holm: Statistic
    psi: Statistic
    wasserstein: Statistic
    wasserstein_scaled: Statistic
    drifted: bool


class TargetDrift(Record):
    """Recent realized returns against the reference period's (``report.target_drift``)."""

    n_ref: int
    n_cur: int
    ks_stat: Statistic
    ks_pvalue: Statistic
    psi: Statistic
    wasserstein: Statistic
    wasserstein_scaled: Statistic
    mean_ref: Statistic
    mean_cur: Statistic
    std_ref: Statistic
    std_cur: Statistic
    drifted: bool


class Performance(Record):
    """The numbers the two performance rules decide on (``report.performance``)."""

    rmse_window: int
    n_recent_errors: int
    ma_rmse: Statistic
    reference_rmse: Statistic
    n_reference: int
    ratio: Statistic
    rmse_pvalue: Statistic
    accuracy_window: int
    window_sessions: int
    accuracy_window_full: bool
    n_calls: int
    n_hits: int
    accuracy: Statistic
    accuracy_pvalue: Statistic
    base_rate: Statistic
    benchmark_accuracy: Statistic
    floor: float


class ReferencePeriod(Record):
    """The model's training period, the reference every drift statistic compares with."""

    first: dt.date
    last: dt.date
    rows: int


class RecentWindow(Record):
    """How much post-deployment data the report saw: feature sessions and outcomes."""

    sessions: int
    outcomes: int


class DriftReport(Record):
    """The ``drift_report`` asset value of one trading day: what drifted, how the model did,
    which re-optimization triggers fired, and the configuration that decided it."""

    date: dt.date
    model_version: str
    reference: ReferencePeriod
    recent: RecentWindow
    feature_drift: tuple[FeatureDrift, ...]
    target_drift: TargetDrift
    performance: Performance
    triggers: tuple[Trigger, ...]
    #: Names of the fired triggers, in the order of ``triggers``.
    fired: tuple[str, ...]
    #: The ``DriftConfig`` applied, field by field.
    config: dict[str, float | int | bool | str | None]

    @property
    def n_features_drifted(self) -> int:
        return sum(1 for f in self.feature_drift if f.drifted)
