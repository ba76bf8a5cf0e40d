"""The drift report of one trading day: its parts (feature drift, target drift, performance) and
their assembly into the typed ``DriftReport`` record the ``drift_report`` asset stores.

Reference = what the model used on day t was trained on (its training rows, its out-of-sample
residuals and the realized returns of its training period); recent = the last sessions up to t.
Nothing after day t's close is read, so the report of day t is known that evening.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from pydantic import ValidationError
from scipy import stats

from zdte_assets.core.records import (
    DriftReport,
    FeatureDrift,
    ModelPointer,
    Performance,
    RecentWindow,
    ReferencePeriod,
    TargetDrift,
)
from zdte_assets.evaluation import metrics as evaluation
from zdte_assets.features.rows import feature_columns
from zdte_assets.monitoring.config import DriftConfig
from zdte_assets.monitoring.statistics import (
    clean,
    ks_2samp,
    ks_pvalue_effective,
    lag1_autocorr,
    psi,
    rms,
    wasserstein,
    wasserstein_scaled,
)
from zdte_assets.monitoring.triggers import drifted_flags, evaluate_triggers, target_fires
from zdte_assets.storage.keys import asset_value_key
from zdte_assets.storage.store import Store, json_safe

#: Columns of a feature frame that are not features.
NON_FEATURE_COLUMNS: frozenset[str] = frozenset({"date", "open", "session_vol", "target"})


def default_feature_columns(frame: pl.DataFrame) -> list[str]:
    """Numeric columns of a feature frame other than ``date``, ``open`` and ``target``."""
    return [
        name
        for name, dtype in frame.schema.items()
        if name not in NON_FEATURE_COLUMNS and dtype.is_numeric()
    ]


_FEATURE_DRIFT_SCHEMA: dict[str, Any] = {
    "feature": pl.String,
    "n_ref": pl.Int64,
    "n_cur": pl.Int64,
    "ks_stat": pl.Float64,
    "ks_pvalue": pl.Float64,
    "autocorr": pl.Float64,
    "ks_pvalue_effective": pl.Float64,
    "ks_pvalue_holm": pl.Float64,
    "psi": pl.Float64,
    "wasserstein": pl.Float64,
    "wasserstein_scaled": pl.Float64,
    "drifted": pl.Boolean,
}


def feature_drift(
    ref: pl.DataFrame,
    cur: pl.DataFrame,
    columns: Sequence[str] | None = None,
    config: DriftConfig | None = None,
) -> pl.DataFrame:
    """One row per feature comparing the recent window with the reference.

    Columns: ``feature, n_ref, n_cur, ks_stat, ks_pvalue, autocorr, ks_pvalue_effective,
    ks_pvalue_holm, psi, wasserstein, wasserstein_scaled, drifted``. ``autocorr`` is the lag-1
    autocorrelation of the reference, which must therefore be in time order (as feature frames
    are). ``ks_pvalue_holm`` is the Holm adjustment of the p-value the rule uses (the
    effective-size one when ``data_autocorr_adjust`` is on) over all features, and
    ``drifted`` applies the configured per-feature rule. ``columns`` defaults to every numeric
    column except ``date``, ``open`` and ``target``.
    """
    cfg = config or DriftConfig()
    cols = list(columns) if columns is not None else default_feature_columns(ref)
    missing = [c for c in cols if c not in ref.columns or c not in cur.columns]
    if missing:
        raise ValueError(f"feature columns missing from ref or cur: {missing}")
    rows: dict[str, list[Any]] = {name: [] for name in _FEATURE_DRIFT_SCHEMA}
    for col in cols:
        r_raw = ref.get_column(col).cast(pl.Float64).to_numpy()
        r, c = clean(r_raw), clean(cur.get_column(col).cast(pl.Float64).to_numpy())
        stat, pvalue = ks_2samp(r, c)
        rho = lag1_autocorr(r_raw)
        rows["feature"].append(col)
        rows["n_ref"].append(int(r.size))
        rows["n_cur"].append(int(c.size))
        rows["ks_stat"].append(stat)
        rows["ks_pvalue"].append(pvalue)
        rows["autocorr"].append(rho)
        rows["ks_pvalue_effective"].append(ks_pvalue_effective(stat, r.size, c.size, rho))
        rows["psi"].append(psi(r, c, cfg.psi_bins))
        rows["wasserstein"].append(wasserstein(r, c))
        rows["wasserstein_scaled"].append(wasserstein_scaled(r, c))
    adjusted, flags = drifted_flags(
        np.asarray(rows["ks_pvalue"], dtype=np.float64),
        np.asarray(rows["ks_pvalue_effective"], dtype=np.float64),
        np.asarray(rows["psi"], dtype=np.float64),
        cfg,
    )
    rows["ks_pvalue_holm"] = adjusted.tolist()
    rows["drifted"] = flags.tolist()
    return pl.DataFrame(rows, schema=_FEATURE_DRIFT_SCHEMA)


def target_drift(
    ref_returns: ArrayLike, cur_returns: ArrayLike, config: DriftConfig | None = None
) -> dict[str, Any]:
    """Realized returns of the recent window against the reference period.

    A change in the target's distribution (a volatility regime, a trend) can degrade a model
    before its errors show it over a few days. ``drifted`` is the configured rule: the KS
    p-value below ``target_alpha``. Daily returns are close to serially independent, so the
    plain KS p-value is used (volatility clustering still makes it fire more than alpha; the
    measured table quantifies by how much).
    """
    cfg = config or DriftConfig()
    r, c = clean(ref_returns), clean(cur_returns)
    stat, pvalue = ks_2samp(r, c)
    return {
        "n_ref": int(r.size),
        "n_cur": int(c.size),
        "ks_stat": stat,
        "ks_pvalue": pvalue,
        "psi": psi(r, c, cfg.psi_bins) if r.size and c.size else math.nan,
        "wasserstein": wasserstein(r, c),
        "wasserstein_scaled": wasserstein_scaled(r, c),
        "mean_ref": float(r.mean()) if r.size else math.nan,
        "mean_cur": float(c.mean()) if c.size else math.nan,
        "std_ref": float(r.std(ddof=1)) if r.size > 1 else math.nan,
        "std_cur": float(c.std(ddof=1)) if c.size > 1 else math.nan,
        "drifted": bool(target_fires(pvalue, cfg)),
    }


def performance(
    errors_recent: ArrayLike,
    errors_reference: ArrayLike,
    hits_recent: ArrayLike,
    base_rate: float,
    config: DriftConfig | None = None,
) -> dict[str, Any]:
    """The numbers the two performance rules decide on.

    * ``errors_recent``: live prediction errors (actual - predicted), oldest first; NaNs (no
      prediction that day) are dropped and the last ``rmse_window`` remain. ``ma_rmse`` is
      their root mean square -- "the 3-day moving RMSE" -- and is NaN until that many exist.
    * ``errors_reference``: errors defining the reference level, normally the model's
      out-of-sample (walk-forward) errors from training, so the level is what the model was
      selected on rather than a level that drifts along with the degradation.
    * ``hits_recent``: ``evaluation.directional_hits`` per session, oldest first (1 hit, 0 miss,
      NaN no call); the last ``accuracy_window`` sessions form the window, and the accuracy is
      over calls in it. A verdict needs a full window and ``accuracy_min_calls`` calls.
    * ``base_rate``: share of up days in the reference period; the benchmark accuracy is
      ``max(base_rate, 1 - base_rate)``, what "always up" or "always down" would have scored.

    ``rmse_pvalue`` is the one-sided F-test of equal MSE (``ratio**2 ~ F(window, n_ref)`` for
    independent normal errors) and ``accuracy_pvalue`` the exact binomial probability of at
    most the observed hits if the true accuracy were the floor; both are only consulted by the
    guarded rules.
    """
    cfg = config or DriftConfig()
    w = cfg.rmse_window
    e_rec = clean(errors_recent)
    e_ref = clean(errors_reference)
    ma_rmse = float(rms(e_rec[-w:])) if e_rec.size >= w else math.nan
    ref_rmse = float(rms(e_ref)) if e_ref.size else math.nan
    if math.isnan(ma_rmse) or math.isnan(ref_rmse):
        ratio = math.nan
    elif ref_rmse == 0.0:
        ratio = math.inf if ma_rmse > 0.0 else math.nan
    else:
        ratio = ma_rmse / ref_rmse
    rmse_pvalue = (
        float(stats.f.sf(ratio * ratio, w, e_ref.size))
        if math.isfinite(ratio)
        else (0.0 if ratio == math.inf else math.nan)
    )

    aw = cfg.accuracy_window
    hits_all = np.asarray(hits_recent, dtype=np.float64).ravel()
    window = hits_all[-aw:]
    n_calls = int(np.isfinite(window).sum())
    n_hits = float(np.nansum(window))
    accuracy = n_hits / n_calls if n_calls else math.nan
    accuracy_pvalue = (
        float(stats.binom.cdf(n_hits, n_calls, cfg.accuracy_floor)) if n_calls else math.nan
    )
    b = float(base_rate)
    benchmark = max(b, 1.0 - b) if math.isfinite(b) else math.nan
    return {
        "rmse_window": w,
        "n_recent_errors": int(min(e_rec.size, w)),
        "ma_rmse": ma_rmse,
        "reference_rmse": ref_rmse,
        "n_reference": int(e_ref.size),
        "ratio": ratio,
        "rmse_pvalue": rmse_pvalue,
        "accuracy_window": aw,
        "window_sessions": int(window.size),
        "accuracy_window_full": bool(window.size >= aw),
        "n_calls": n_calls,
        "n_hits": int(n_hits),
        "accuracy": accuracy,
        "accuracy_pvalue": accuracy_pvalue,
        "base_rate": b,
        "benchmark_accuracy": benchmark,
        "floor": cfg.accuracy_floor,
    }


def build_drift_report(
    day: dt.date,
    features: pl.DataFrame,
    outcomes: Mapping[str, Mapping[str, Any]],
    model_info: ModelPointer,
    config: DriftConfig,
) -> DriftReport:
    """Compare the recent window ending on ``day`` with the model's own reference.

    ``outcomes`` are the prediction outcomes by day (``date``, ``realized_return``,
    ``predicted_return``); ``model_info`` is the model used on ``day`` (its training window and
    its reference returns and errors). Outcomes after
    ``day`` are ignored, so a report never sees its future.
    """
    train_first = model_info.train_first
    train_last = model_info.train_last
    ref = features.filter(pl.col("date").is_between(train_first, train_last)).sort("date")
    cur = features.filter(pl.col("date") <= day).sort("date").tail(config.recent_window)
    columns = [c for c in feature_columns() if c in features.columns]
    feat = feature_drift(ref, cur, columns=columns, config=config)

    rows = sorted(
        (v for v in outcomes.values() if str(v["date"]) <= day.isoformat()),
        key=lambda v: str(v["date"]),
    )
    realized = np.array([r["realized_return"] for r in rows], dtype=float)
    predicted = np.array([r["predicted_return"] for r in rows], dtype=float)
    ref_returns = np.asarray(model_info.reference_returns, dtype=float)
    tgt = target_drift(ref_returns, realized[-config.recent_window :], config=config)
    ref_errors = np.asarray(model_info.reference_errors, dtype=float)
    errors = realized - predicted
    hits = evaluation.directional_hits(realized, predicted)
    perf = performance(
        errors_recent=errors[-max(config.rmse_window, config.accuracy_window) :],
        errors_reference=ref_errors,
        hits_recent=hits[-config.accuracy_window :],
        base_rate=evaluation.base_rate_up(ref_returns) if ref_returns.size else 0.5,
        config=config,
    )
    triggers = evaluate_triggers(
        {"performance": perf, "feature_drift": feat, "target_drift": tgt}, config=config
    )
    return DriftReport(
        date=day,
        model_version=model_info.model_version,
        reference=ReferencePeriod(first=train_first, last=train_last, rows=ref.height),
        recent=RecentWindow(sessions=cur.height, outcomes=len(rows)),
        feature_drift=tuple(FeatureDrift(**json_safe(row)) for row in feat.to_dicts()),
        target_drift=TargetDrift(**json_safe(tgt)),
        performance=Performance(**json_safe(perf)),
        triggers=tuple(t.model_copy(update={"value": json_safe(t.value)}) for t in triggers),
        fired=tuple(t.name for t in triggers if t.fired),
        config=config.to_dict(),
    )


def load_drift_report(store: Store, ticker: str, day: dt.date) -> DriftReport:
    """The stored ``drift_report`` of ``ticker`` on ``day``, validated into the record (a field
    renamed or missing fails here, naming the key, rather than in whoever reads it)."""
    key = asset_value_key(ticker, "drift_report", day.isoformat(), "json")
    try:
        return DriftReport.model_validate_json(store.read_bytes(key))
    except ValidationError as exc:
        raise ValueError(f"{store.url(key)}: not a drift report: {exc}") from exc
