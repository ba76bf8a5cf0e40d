"""The `drift_report` asset: data drift, target drift and live performance of the model of day t.

Reference = what the model used on day t was trained on (its training rows and its out-of-sample
residuals); recent = the last sessions up to t. Statistics and trigger rules live in
`zdte_assets.monitoring.drift`; the report is stored as JSON and shown in the UI as metadata (a table per
feature, and numeric values Dagster plots across partitions).
"""

from typing import Any

import dagster as dg
import polars as pl

from zdte_assets.core import timing
from zdte_assets.core.records import ModelPointer
from zdte_assets.model.lifecycle import MONITORING_CONFIG, build_drift_report
from zdte_assets.monitoring import drift
from zdte_assets.orchestration.assets.model import MAX_TRAIN_SESSIONS
from zdte_assets.orchestration.io_manager import WINDOW_INPUT
from zdte_assets.orchestration.jobs import asset_key
from zdte_assets.orchestration.partitions import day_of

__all__ = ["MONITORING_CONFIG", "build_monitoring_assets"]


class DriftSettings(dg.Config):
    """Overrides of the drift configuration as JSON (keys of `drift.DriftConfig`)."""

    overrides_json: str = "{}"

    def to_config(self) -> drift.DriftConfig:
        import json

        base = MONITORING_CONFIG.to_dict()
        base.update(json.loads(self.overrides_json or "{}"))
        return drift.DriftConfig.from_dict(base)


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
        key=asset_key(ticker, "drift_report"),
        group_name=ticker,
        partitions_def=days,
        kinds={"json"},
        ins={
            "features": dg.AssetIn(
                key=asset_key(ticker, "features"),
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-MAX_TRAIN_SESSIONS, end_offset=0
                ),
                metadata=WINDOW_INPUT,
            ),
            "prediction_outcome": dg.AssetIn(
                key=asset_key(ticker, "prediction_outcome"),
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-(window - 1), end_offset=0
                ),
                metadata=WINDOW_INPUT,
            ),
            "daily_model": dg.AssetIn(key=asset_key(ticker, "daily_model")),
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
        with timing.part("compute"):
            pointer = ModelPointer.model_validate(daily_model)
            report = build_drift_report(
                day, features, prediction_outcome, pointer, config.to_config()
            )
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
