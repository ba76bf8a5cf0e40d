"""The `drift_report` asset: data drift, target drift and live performance of the model of day t.

Reference = what the model used on day t was trained on (its training rows and its out-of-sample
residuals); recent = the last sessions up to t. Statistics and trigger rules live in
`zdte_assets.drift`; the report is stored as JSON and shown in the UI as metadata (a table per
feature, and numeric values Dagster plots across partitions).
"""

import datetime as dt
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from zdte_assets import drift, evaluation
from zdte_assets.defs.model import MAX_TRAIN_SESSIONS
from zdte_assets.defs.partitions import day_of
from zdte_assets.features import feature_columns
from zdte_assets.storage import json_safe

#: The drift settings the platform runs with (see docs/monitoring.md for their false-alarm rates):
#: the original RMSE and accuracy thresholds; data drift with KS at effective sample sizes, since
#: plain KS flags moving-window features as drifted on most days of unchanged data.
MONITORING_CONFIG = drift.DriftConfig(data_autocorr_adjust=True)


class DriftSettings(dg.Config):
    """Overrides of the drift configuration as JSON (keys of `drift.DriftConfig`)."""

    overrides_json: str = "{}"

    def to_config(self) -> drift.DriftConfig:
        import json

        base = MONITORING_CONFIG.to_dict()
        base.update(json.loads(self.overrides_json or "{}"))
        return drift.DriftConfig.from_dict(base)


def build_drift_report(
    day: dt.date,
    features: pl.DataFrame,
    outcomes: dict[str, dict[str, Any]],
    model_info: dict[str, Any],
    config: drift.DriftConfig,
) -> dict[str, Any]:
    """Compare the recent window ending on `day` with the model's own reference."""
    train_first = dt.date.fromisoformat(model_info["train_first"])
    train_last = dt.date.fromisoformat(model_info["train_last"])
    ref = features.filter(pl.col("date").is_between(train_first, train_last)).sort("date")
    cur = features.filter(pl.col("date") <= day).sort("date").tail(config.recent_window)
    columns = [c for c in feature_columns() if c in features.columns]
    feat = drift.feature_drift(ref, cur, columns=columns, config=config)

    rows = sorted(
        (v for v in outcomes.values() if v["date"] <= day.isoformat()), key=lambda v: v["date"]
    )
    realized = np.array([r["realized_return"] for r in rows], dtype=float)
    predicted = np.array([r["predicted_return"] for r in rows], dtype=float)
    ref_returns = np.asarray(model_info.get("reference_returns", []), dtype=float)
    tgt = drift.target_drift(ref_returns, realized[-config.recent_window :], config=config)
    ref_errors = np.asarray(model_info.get("reference_errors", []), dtype=float)
    errors = realized - predicted
    hits = evaluation.directional_hits(realized, predicted)
    perf = drift.performance(
        errors_recent=errors[-max(config.rmse_window, config.accuracy_window) :],
        errors_reference=ref_errors,
        hits_recent=hits[-config.accuracy_window :],
        base_rate=evaluation.base_rate_up(ref_returns) if ref_returns.size else 0.5,
        config=config,
    )
    triggers = drift.evaluate_triggers(
        {"performance": perf, "feature_drift": feat, "target_drift": tgt}, config=config
    )
    return json_safe(
        {
            "date": day.isoformat(),
            "model_version": model_info["model_version"],
            "reference": {
                "first": train_first.isoformat(),
                "last": train_last.isoformat(),
                "rows": ref.height,
            },
            "recent": {"sessions": cur.height, "outcomes": len(rows)},
            "feature_drift": feat.to_dicts(),
            "target_drift": tgt,
            "performance": perf,
            "triggers": [t.__dict__ for t in triggers],
            "fired": [t.name for t in triggers if t.fired],
            "config": config.to_dict(),
        }
    )


def _feature_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| feature | KS p (Holm) | PSI | Wasserstein / sd | drifted |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        p = r.get("ks_pvalue_holm")
        lines.append(
            f"| {r['feature']} | {p if p is None else f'{p:.3g}'} | {r['psi']:.3f} | "
            f"{r['wasserstein_scaled']:.3f} | {'yes' if r['drifted'] else ''} |"
        )
    return "\n".join(lines)


def build_monitoring_assets(
    ticker: str, days: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    window = max(MONITORING_CONFIG.accuracy_window, MONITORING_CONFIG.recent_window)

    @dg.asset(
        key=[ticker, "drift_report"],
        group_name=ticker,
        partitions_def=days,
        kinds={"json"},
        ins={
            "features": dg.AssetIn(
                key=[ticker, "features"],
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-MAX_TRAIN_SESSIONS, end_offset=0
                ),
            ),
            "prediction_outcome": dg.AssetIn(
                key=[ticker, "prediction_outcome"],
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-(window - 1), end_offset=0
                ),
            ),
            "daily_model": dg.AssetIn(key=[ticker, "daily_model"]),
        },
        description=(
            "After the close: feature drift (KS, PSI, Wasserstein) and target drift against the model's "
            "training window, 3-day RMSE against its out-of-sample level, directional accuracy against "
            "the 55% floor and the base rate; which re-optimization triggers fired."
        ),
    )
    def drift_report(
        context: dg.AssetExecutionContext,
        config: DriftSettings,
        features: pl.DataFrame,
        prediction_outcome: dict[str, Any],
        daily_model: dict[str, Any],
    ) -> dg.Output[dict[str, Any]]:
        day = day_of(context.partition_key)
        outcomes = (
            prediction_outcome
            if "date" not in prediction_outcome
            else {day.isoformat(): prediction_outcome}
        )
        report = build_drift_report(day, features, outcomes, daily_model, config.to_config())
        perf = report["performance"]
        md: dict[str, Any] = {
            "fired_triggers": ",".join(report["fired"]) or "none",
            "n_features_drifted": sum(1 for r in report["feature_drift"] if r["drifted"]),
            "feature_drift": dg.MetadataValue.md(_feature_table(report["feature_drift"])),
            "triggers": dg.MetadataValue.md(
                "\n".join(
                    f"- **{t['name']}**: {'FIRED' if t['fired'] else 'ok'} - {t['explanation']}"
                    for t in report["triggers"]
                )
            ),
            "model_version": report["model_version"],
        }
        for name in ("ma_rmse", "reference_rmse", "ratio", "accuracy", "base_rate"):
            v = perf.get(name)
            if isinstance(v, int | float) and v is not None:
                md[f"perf_{name}"] = float(v)
        tp = report["target_drift"].get("ks_pvalue")
        if isinstance(tp, float):
            md["target_ks_pvalue"] = tp
        return dg.Output(report, metadata=md)

    return [drift_report]
