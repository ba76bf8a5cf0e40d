"""The `drift_report` asset: data drift, target drift and live performance of the model of day t.

Thin wiring: `zdte_assets.monitoring.report.build_drift_report` assembles the typed
`DriftReport` record, stored as its JSON; the metadata only shows it in the UI (a table per
feature, and numeric values Dagster plots across partitions). Readers, the drift sensor among
them, read the record, never the metadata.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg
import polars as pl
import pydantic

from zdte_assets.core import timing
from zdte_assets.core.records import DriftReport, ModelPointer
from zdte_assets.monitoring.config import MONITORING_CONFIG, DriftConfig
from zdte_assets.monitoring.report import build_drift_report
from zdte_assets.orchestration.assets.model import MAX_TRAIN_SESSIONS
from zdte_assets.orchestration.io_manager import WINDOW_INPUT
from zdte_assets.orchestration.jobs import DAILY_BACKFILL, asset_key
from zdte_assets.orchestration.metadata import numbers
from zdte_assets.orchestration.partitions import one_session

__all__ = ["MONITORING_CONFIG", "DriftSettings", "build_monitoring_assets"]

_SETTINGS_DOC = (
    "The drift configuration of one `drift_report` run: `DriftConfig` itself, every field typed "
    "and validated as in the domain, defaulting to what the platform runs with "
    "(`MONITORING_CONFIG`)."
)

if TYPE_CHECKING:

    class DriftSettings(dg.Config, DriftConfig):
        """See `_SETTINGS_DOC`; built below from `DriftConfig`'s fields at run time."""

else:
    # Derived field by field from the domain's model, so no field can be missing or differ in
    # type; only the defaults are the platform's. The class is both a Dagster `Config` (the
    # launchpad shows and checks every field) and a `DriftConfig`.
    DriftSettings = pydantic.create_model(
        "DriftSettings",
        __base__=(dg.Config, DriftConfig),
        __doc__=_SETTINGS_DOC,
        **{
            name: (field.annotation, getattr(MONITORING_CONFIG, name))
            for name, field in DriftConfig.model_fields.items()
        },
    )


def _feature_table(report: DriftReport) -> str:
    lines = [
        "| feature | KS p (Holm) | PSI | Wasserstein / sd | drifted |",
        "|---|---:|---:|---:|---|",
    ]

    def num(x: float | None, fmt: str) -> str:
        return "n/a" if x is None else format(x, fmt)

    for r in report.feature_drift:
        lines.append(
            f"| {r.feature} | {num(r.ks_pvalue_holm, '.3g')} | {num(r.psi, '.3f')} | "
            f"{num(r.wasserstein_scaled, '.3f')} | {'yes' if r.drifted else ''} |"
        )
    return "\n".join(lines)


def _metadata(report: DriftReport) -> dict[str, Any]:
    """What the UI shows of a report; nothing reads it back."""
    md: dict[str, Any] = {
        "fired_triggers": ", ".join(report.fired) or "none",
        "n_features_drifted": report.n_features_drifted,
        "feature_drift": dg.MetadataValue.md(_feature_table(report)),
        "triggers": dg.MetadataValue.md(
            "\n".join(
                f"- **{t.name}**: {'FIRED' if t.fired else 'ok'} - {t.explanation}"
                for t in report.triggers
            )
        ),
        "model_version": report.model_version,
    }
    perf, target = report.performance, report.target_drift
    holm = [r.ks_pvalue_holm for r in report.feature_drift if r.ks_pvalue_holm is not None]
    psi = [r.psi for r in report.feature_drift if r.psi is not None]
    md.update(
        numbers(
            {
                "perf_ma_rmse": perf.ma_rmse,
                "perf_reference_rmse": perf.reference_rmse,
                # The RMSE ratio (recent moving-average RMSE over the out-of-sample level).
                "perf_ratio": perf.ratio,
                "perf_rmse_pvalue": perf.rmse_pvalue,
                "perf_accuracy": perf.accuracy,
                "perf_accuracy_pvalue": perf.accuracy_pvalue,
                "perf_base_rate": perf.base_rate,
                "perf_benchmark_accuracy": perf.benchmark_accuracy,
                "target_ks_stat": target.ks_stat,
                "target_ks_pvalue": target.ks_pvalue,
                "target_psi": target.psi,
                "target_wasserstein_scaled": target.wasserstein_scaled,
                "min_feature_ks_pvalue_holm": min(holm) if holm else None,
                "max_feature_psi": max(psi) if psi else None,
                **{f"trigger_{t.name}_value": t.value for t in report.triggers},
            }
        )
    )
    return md


def build_monitoring_assets(
    ticker: str, days: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    window = max(MONITORING_CONFIG.accuracy_window, MONITORING_CONFIG.recent_window)

    @dg.asset(
        key=asset_key(ticker, "drift_report"),
        backfill_policy=DAILY_BACKFILL,
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
        day = one_session(context)
        with timing.part("compute"):
            pointer = ModelPointer.model_validate(daily_model)
            report = build_drift_report(
                day, features, prediction_outcome, pointer, config.as_drift_config()
            )
        # The record's own JSON form is the stored value (the IO manager writes dicts as JSON).
        return dg.Output(report.model_dump(mode="json"), metadata=_metadata(report))

    return [drift_report]
