"""Typed records for every value that crosses a boundary (between assets, into storage, to the
desk's own tools), and their one JSON/Parquet serialization.

Records are frozen pydantic models: pydantic gives validation on read, JSON in and out, and the
JSON Schema the desk validates predictions against, from the same class (docs/CONTRACTS.md).
Each section below belongs to one part of the domain; keep the sections apart. Longer than 600
lines because every record that crosses a boundary is in this one module, each field with the
description the generated JSON Schema and docs/CONTRACTS.md carry.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Final, Literal

import polars as pl
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from zdte_assets.trading.gate import GateCode
from zdte_assets.trading.pricing import Action, DecisionConfig, OptionKind, ReasonCode


def without_negative_zero(value: Any) -> Any:
    """`value` (dumped JSON data) with every -0.0 as 0.0: a rounded tiny negative reads as a
    sign where there is none, and readers compare text."""
    if isinstance(value, float):
        return 0.0 if value == 0.0 else value
    if isinstance(value, dict):
        return {k: without_negative_zero(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_negative_zero(v) for v in value]
    return value


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

#: Layout version of the prediction and outcome JSON; changes only when fields change meaning or
#: are removed.
PREDICTION_SCHEMA_VERSION: Final = 2
Price = Annotated[float, Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]


class _Strict(Record):
    """Trading records also refuse NaN and infinities: JSON has no such numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Interval(_Strict):
    level: float = Field(
        gt=0,
        lt=1,
        description="Coverage of the interval (0.9 = the central 90% of the predictive distribution).",
    )
    low: Price = Field(description="Lower end of the interval for the close (price).")
    high: Price = Field(description="Upper end of the interval for the close (price).")


class Distribution(_Strict):
    family: Literal["student_t", "normal"] = Field(
        description="Shape of Z: student_t, or normal when the calibration chose no tails."
    )
    mu: float = Field(
        description="The model's forecast of log E[close / open]; equals predicted_return."
    )
    scale: float = Field(
        ge=0,
        description=(
            "Standard deviation of the log return over the session: session_vol times "
            "calibration_factor (times the square root of the session's length for early closes)."
        ),
    )
    df: Annotated[float, Field(gt=2)] | None = Field(
        description=(
            "Degrees of freedom of Z, chosen by maximum likelihood on past standardized returns "
            "(null: normal)."
        )
    )
    session_vol: float = Field(
        gt=0,
        description=(
            "EWMA Garman-Klass forecast of the session's volatility from the bars before the day."
        ),
    )
    calibration_factor: float = Field(
        gt=0,
        description=(
            "Split-conformal factor that makes the central 90% interval cover past standardized "
            "returns."
        ),
    )
    calibration_n: int = Field(
        ge=0,
        description="Past returns the shape and factor were estimated from (0: defaults, too few).",
    )


class GateVerdict(_Strict):
    open: bool = Field(description="True when a trade may be considered at all.")
    code: GateCode = Field(
        description="open, naive_model (shrinkage 0), too_few_days or not_better_than_naive."
    )
    reason: str = Field(description="The verdict in words, with its p-values and sample size.")
    n: int = Field(ge=0, description="Past forecasts pooled (the trailing gate window).")
    n_calls: int = Field(ge=0, description="Of those, forecasts that were not exactly 0.")
    dm_stat: float | None = Field(
        description=(
            "Diebold-Mariano statistic (HLN) of squared errors, model minus naive; negative "
            "favours the model."
        )
    )
    dm_pvalue: Probability | None = Field(
        description=(
            "One-sided p-value that the model's errors are smaller than the naive forecast's."
        )
    )
    pt_stat: float | None = Field(description="Pesaran-Timmermann statistic of directional skill.")
    pt_pvalue: Probability | None = Field(
        description="One-sided p-value of directional skill beyond the base rate."
    )
    shrinkage: Probability = Field(
        description=(
            "Shrinkage of the model in use; 0 means its forecast is the naive one and the gate "
            "stays shut."
        )
    )


class TradeDecision(_Strict):
    action: Action = Field(description="Same as the top-level action.")
    reason_code: ReasonCode = Field(
        description="Machine-readable reason: trade, or the gate that produced NO_TRADE."
    )
    option: OptionKind | None = Field(
        description="Kind of the best candidate option; null when none could be priced."
    )
    strike: Price | None = Field(
        description=(
            "Strike of the best candidate (on the listed strike grid); null when none could be "
            "priced."
        )
    )
    strike_increment: float = Field(
        gt=0, description="Spacing of listed strikes for this ticker and price (USD)."
    )
    model_price: Annotated[float, Field(ge=0)] | None = Field(
        description=(
            "The market's assumed mid price per share: the drift-free session distribution at "
            "iv_ratio times the volatility (USD)."
        )
    )
    premium: Annotated[float, Field(ge=0)] | None = Field(
        description=(
            "Assumed market price per share: model_price plus half the bid-ask spread (USD); "
            "null when none could be priced."
        )
    )
    cost_per_share: Annotated[float, Field(ge=0)] | None = Field(
        description=(
            "All-in cost per share: premium plus the commission spread over one contract's "
            "shares (USD); null when none could be priced."
        )
    )
    expected_payoff: Annotated[float, Field(ge=0)] | None = Field(
        description=(
            "Expected payoff per share at the close under the predictive distribution (USD); "
            "null when none could be priced."
        )
    )
    expected_value: float | None = Field(
        description=(
            "expected_payoff - cost_per_share (USD per share); null when none could be priced."
        )
    )
    p_itm: Probability | None = Field(
        description=(
            "Probability that the best candidate finishes in the money; null when none could be "
            "priced."
        )
    )
    contracts: int = Field(ge=0, description="Contracts to buy; 0 unless a trade is recommended.")
    cost_usd: float = Field(
        ge=0,
        description="Total cost of the position (USD); 0 unless a trade is recommended.",
    )
    expected_value_usd: float = Field(
        description=(
            "Expected value of the whole position after costs (USD); 0 unless a trade is "
            "recommended."
        )
    )
    implied_vol: float = Field(
        ge=0,
        description=(
            "Annualised implied volatility assumed for pricing: iv_ratio * distribution.scale / "
            "sqrt(years to the close)."
        ),
    )
    expiry_today: bool = Field(
        description=(
            "Whether the ticker has an option expiring this session (a 0-DTE trade exists)."
        )
    )
    config: DecisionConfig = Field(
        description=(
            "The trading assumptions the decision used (zdte_assets.trading.pricing.DecisionConfig)."
        )
    )

    @field_validator("config", mode="before")
    @classmethod
    def _complete(cls, value: Any) -> Any:
        """A stored config lists every field: a default filled in on reading would claim
        assumptions the decision may not have used."""
        if isinstance(value, dict):
            missing = sorted(set(DecisionConfig.model_fields) - set(value))
            if missing:
                raise ValueError(f"config lacks {missing}")
        return value


class ModelUsed(_Strict):
    version: str = Field(
        pattern=r"^[0-9]+$",
        description="Version number of the registered model zdte-{TICKER}, as a string.",
    )
    uri: str = Field(
        pattern=r"^models:/",
        description="MLflow model URI of that version (models:/zdte-{TICKER}/{version}).",
    )
    mlflow_run_id: str = Field(min_length=1, description="MLflow run that trained the model.")
    tuned_params_run_id: str = Field(
        min_length=1,
        description=("MLflow run of the Optuna study whose parameters the model was trained with."),
    )
    tuned_as_of: dt.date = Field(description="Last session of data the study saw (before date).")
    trained_through: dt.date = Field(
        description="Last session in the model's training rows (before date)."
    )
    beats_naive: bool = Field(
        description=(
            "Whether the study's chosen parameters beat the naive forecast on walk-forward "
            "validation; a model that does not never trades."
        )
    )
    shrinkage: Probability = Field(
        description="Shrinkage of the daily model (0: the forecast is the naive one)."
    )


class NaiveForecast(_Strict):
    predicted_return: Literal[0] = Field(description="Always 0.")
    predicted_close: Price = Field(description="Always the open.")


class Prediction(_Strict):
    """The morning prediction of one ticker for one trading session, as built by
    zdte_assets.trading.predictions.make_prediction. Published as
    predictions/{TICKER}/{YYYY-MM-DD}.json under the storage URL and flattened into
    predictions/{TICKER}.parquet. Returns are natural-log open-to-close returns; prices are in the
    currency of the bars (USD). Fields marked nullable are null only when no option could be
    priced (after the close)."""

    schema_version: Literal[2] = Field(
        description=(
            "Version of this record layout; changes only when fields change meaning or are removed."
        )
    )
    ticker: str = Field(
        pattern=r"^[A-Z][A-Z0-9.\-]*$",
        description="Upper-case ticker symbol the prediction is for.",
    )
    date: dt.date = Field(
        description="The NYSE session predicted (YYYY-MM-DD, New York calendar date)."
    )
    decision_time: AwareDatetime = Field(
        description=(
            "When the prediction is made: the session's opening time in New York, with UTC "
            "offset (ISO 8601)."
        )
    )
    close_time: AwareDatetime = Field(
        description=(
            "The session's closing time in New York, with UTC offset (ISO 8601); early closes "
            "are honoured."
        )
    )
    open: Price = Field(
        description=(
            "Official opening price of the session, the only price of the day the model sees."
        )
    )
    predicted_return: float = Field(
        description=(
            "Point forecast of log(close / open), after shrinkage towards 0 (0 means the naive "
            "forecast)."
        )
    )
    predicted_close: Price = Field(
        description="Point forecast of the close: open * exp(predicted_return)."
    )
    p_up: float = Field(
        gt=0,
        lt=1,
        description=(
            "Probability that the close ends above the open under the predictive distribution."
        ),
    )
    interval: Interval = Field(
        description=(
            "Central 90% prediction interval for the close (calibrated out of sample, see "
            "docs/quality.md)."
        )
    )
    interval_50: Interval = Field(description="Central 50% prediction interval for the close.")
    distribution: Distribution = Field(
        description=(
            "Predictive distribution of log(close / open): mu + scale * Z - log E[exp(scale * Z)] "
            "with Z a unit-variance Student-t (or normal), so that E[close] = open * exp(mu)."
        )
    )
    vol_daily: float = Field(
        ge=0,
        description="The session volatility forecast (same as distribution.session_vol).",
    )
    gate: GateVerdict = Field(
        description=(
            "The significance gate: the model's past out-of-sample forecasts against the naive one."
        )
    )
    action: Action = Field(
        description=("The recommendation: buy a same-day call, buy a same-day put, or stay out.")
    )
    reason: str = Field(
        min_length=1,
        description=(
            "Why, in plain words; for NO_TRADE it starts with the gate that stopped the trade "
            "(e.g. 'no expiry today: ...')."
        ),
    )
    decision: TradeDecision = Field(
        description=(
            "The 0-DTE trade decision in detail. Option, strike and per-share figures describe "
            "the best candidate even when action is NO_TRADE."
        )
    )
    model: ModelUsed = Field(
        description=(
            "The model that made the prediction: a registered MLflow model version trained "
            "before the session."
        )
    )
    naive: NaiveForecast = Field(
        description="The naive benchmark forecast for the same session (return 0, close = open)."
    )

    def to_json(self) -> bytes:
        """The published JSON (what predictions/{TICKER}/{date}.json holds)."""
        data = without_negative_zero(self.model_dump(mode="json"))
        return json.dumps(data, indent=2, allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any]) -> Prediction:
        """Read a published prediction back; a wrong or missing field fails naming it."""
        if isinstance(data, dict):
            return cls.model_validate(data)
        return cls.model_validate_json(data)

    def table_row(self) -> dict[str, Any]:
        """The row of predictions/{TICKER}.parquet (columns `PREDICTION_TABLE_SCHEMA`)."""
        return {
            "date": self.date,
            "ticker": self.ticker,
            "open": self.open,
            "predicted_return": self.predicted_return,
            "predicted_close": self.predicted_close,
            "p_up": self.p_up,
            "interval_low": self.interval.low,
            "interval_high": self.interval.high,
            "action": self.action,
            "reason_code": self.decision.reason_code,
            "gate_open": self.gate.open,
            "option": self.decision.option,
            "strike": self.decision.strike,
            "premium": self.decision.premium,
            "contracts": self.decision.contracts,
            "expected_value": self.decision.expected_value,
            "expected_value_usd": self.decision.expected_value_usd,
            "reason": self.reason,
            "model_version": self.model.version,
            "schema_version": self.schema_version,
        }


#: Columns of predictions/{TICKER}.parquet, in order: the JSON record flattened, one row a day.
PREDICTION_TABLE_SCHEMA: dict[str, Any] = {
    "date": pl.Date,
    "ticker": pl.String,
    "open": pl.Float64,
    "predicted_return": pl.Float64,
    "predicted_close": pl.Float64,
    "p_up": pl.Float64,
    "interval_low": pl.Float64,
    "interval_high": pl.Float64,
    "action": pl.String,
    "reason_code": pl.String,
    "gate_open": pl.Boolean,
    "option": pl.String,
    "strike": pl.Float64,
    "premium": pl.Float64,
    "contracts": pl.Int64,
    "expected_value": pl.Float64,
    "expected_value_usd": pl.Float64,
    "reason": pl.String,
    "model_version": pl.String,
    "schema_version": pl.Int64,
}


def prediction_table(records: list[Prediction]) -> pl.DataFrame:
    """predictions/{TICKER}.parquet from the day's records: one row a day, sorted by date."""
    rows = [r.table_row() for r in records]
    return pl.DataFrame(rows, schema=PREDICTION_TABLE_SCHEMA, orient="row").sort("date")


class Outcome(_Strict):
    """What happened on a predicted session, next to the naive forecasts. Errors are
    realized - predicted; a direction hit is `evaluation.metrics.directional_hits` (null when
    the forecast was exactly 0: no call; a flat day is a miss)."""

    schema_version: Literal[2] = Field(description="Same as the prediction's.")
    ticker: str = Field(description="Upper-case ticker symbol.")
    date: dt.date = Field(description="The session.")
    open: Price = Field(description="Opening price (the prediction's).")
    close: Price = Field(description="Official closing price.")
    realized_return: float = Field(description="log(close / open).")
    predicted_return: float = Field(description="The prediction's point forecast of it.")
    predicted_close: Price = Field(description="The prediction's point forecast of the close.")
    error: float = Field(description="realized_return - predicted_return.")
    abs_error: float = Field(ge=0, description="|error|.")
    naive_error: float = Field(
        description="realized_return - 0: the error of the naive forecast close = open."
    )
    prev_close: Price | None = Field(description="Previous session's close (null: unknown).")
    prev_close_error: float | None = Field(
        description="realized_return - log(prev_close / open): the error of close = last close."
    )
    up: bool = Field(description="realized_return > 0 (a flat day is not up).")
    p_up: float = Field(description="The prediction's probability of an up day.")
    direction_hit: bool | None = Field(
        description="Direction called right; null when the forecast was exactly 0 (no call)."
    )
    pit: Probability = Field(description="The predictive CDF at the realized return.")
    log_score: float = Field(description="Log density of the realized return.")
    z: float | None = Field(description="Realized return standardized by the forecast.")
    in_interval: bool = Field(description="Close inside the 90% interval.")
    in_interval_50: bool = Field(description="Close inside the 50% interval.")
    action: Action = Field(description="The prediction's action.")
    option: OptionKind | None = Field(description="The prediction's option.")
    strike: Price | None = Field(description="The prediction's strike.")
    premium: float | None = Field(description="The prediction's premium per share (USD).")
    contracts: int = Field(ge=0, description="Contracts bought.")
    cost_usd: float = Field(ge=0, description="Cost of the position (USD).")
    expected_value_usd: float = Field(description="Expected value of the position (USD).")
    payoff_per_share: float | None = Field(
        description="Intrinsic value per share at the close (null: no trade)."
    )
    pnl_usd: float = Field(description="Realized profit of the position (USD); 0 for NO_TRADE.")
    naive_action: Literal["NO_TRADE"] = Field(description="The naive forecast never trades.")
    naive_pnl_usd: Literal[0] = Field(description="So it never gains or loses.")
    model_version: str = Field(description="The prediction's model version.")

    def to_json(self) -> bytes:
        data = without_negative_zero(self.model_dump(mode="json"))
        return json.dumps(data, indent=2, allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any]) -> Outcome:
        if isinstance(data, dict):
            return cls.model_validate(data)
        return cls.model_validate_json(data)


#: Columns of outcomes/{TICKER}.parquet that the significance gate and the report read.
OUTCOME_TABLE_SCHEMA: dict[str, Any] = {
    "date": pl.Date,
    "ticker": pl.String,
    "predicted_return": pl.Float64,
    "realized_return": pl.Float64,
    "p_up": pl.Float64,
    "pit": pl.Float64,
    "log_score": pl.Float64,
    "z": pl.Float64,
    "in_interval_50": pl.Boolean,
    "in_interval": pl.Boolean,
    "action": pl.String,
    "expected_value_usd": pl.Float64,
    "pnl_usd": pl.Float64,
    "model_version": pl.String,
}


def outcome_table(records: list[Outcome]) -> pl.DataFrame:
    """outcomes/{TICKER}.parquet from the records: one row a day, sorted by date."""
    rows = [{k: getattr(r, k) for k in OUTCOME_TABLE_SCHEMA} for r in records]
    return pl.DataFrame(rows, schema=OUTCOME_TABLE_SCHEMA, orient="row").sort("date")


def prediction_json_schema() -> dict[str, Any]:
    """The JSON Schema of the published prediction (docs/prediction.schema.json), generated from
    `Prediction` so that the document and the code cannot disagree."""
    schema = Prediction.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "zdte prediction record",
        **{k: v for k, v in schema.items() if k != "title"},
    }


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
