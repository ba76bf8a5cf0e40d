"""The drift sensor: decides when a drift report warrants a re-optimization; assets do the work.

Phase 1: a new `drift_report` materialization whose triggers fired, outside the cooldown, asks for
`tuned_params` of the week of the next session with `as_of` = the report's day (data through that
evening). Phase 2: once any new study version is materialized (triggered or the Sunday schedule),
it asks for the `daily_model` of the session after the version's `as_of`, so the model used that
morning already carries the new parameters (one run cannot hold both: they are partitioned by
week and by day). Without phase 2 for the Sunday study, Monday would trade on the model the
Friday 16:45 retrain fitted with last week's parameters. Run keys name the session and the data
(`as_of`) and the version's MLflow run, so a triggered study and the scheduled one that reuses
its version retrain once; the cursor (JSON) keeps the last storage ids seen and the day of the
last firing.

The sensor reads each report as the typed `DriftReport` record from the store, decides the
cooldown with `monitoring.cooldown`, and names jobs and op configs through `jobs`.
"""

import datetime as dt
import json
from typing import Any

import dagster as dg

from zdte_assets.core import calendar
from zdte_assets.core.records import DriftReport
from zdte_assets.monitoring.config import MONITORING_CONFIG
from zdte_assets.monitoring.cooldown import in_cooldown, sessions_between
from zdte_assets.monitoring.report import load_drift_report
from zdte_assets.orchestration.jobs import asset_key, asset_op_name, job_names, sensor_name
from zdte_assets.orchestration.resources import StoreResource
from zdte_assets.orchestration.schedules import default_status
from zdte_assets.storage.store import Store

__all__ = ["evaluate_drift", "retrain_run_key", "sessions_between"]


def retrain_run_key(ticker: str, day: dt.date, as_of: dt.date, version_run: str) -> str:
    """One retrain of `day` per study version, whichever study (scheduled or triggered) asks:
    a reused version keeps its MLflow run, a recomputed one (other rows or settings) has a new
    one and so retrains again."""
    return f"{ticker}-retrain-{day}-asof-{as_of}-{version_run[:12]}"


def _meta(record: Any, name: str, default: Any = None) -> Any:
    value = record.asset_materialization.metadata.get(name)
    return default if value is None else value.value


def _report_tags(report: DriftReport) -> dict[str, str]:
    """What the re-optimization run shows of the report that asked for it."""
    values: dict[str, float | int | None] = {
        "perf_ratio": report.performance.ratio,
        "perf_accuracy": report.performance.accuracy,
        "n_features_drifted": report.n_features_drifted,
        "target_ks_pvalue": report.target_drift.ks_pvalue,
    }
    return {
        f"zdte/{name}": f"{v:.4g}" if isinstance(v, float) else str(v)
        for name, v in values.items()
        if v is not None
    }


def evaluate_drift(
    ticker: str,
    instance: dg.DagsterInstance,
    cursor: dict[str, Any],
    store: Store,
    cooldown_days: int = MONITORING_CONFIG.cooldown_days,
) -> tuple[list[dg.RunRequest], dict[str, Any], list[str]]:
    """Run requests, new cursor and plain-words log lines for one sensor tick."""
    names = job_names(ticker)
    requests: list[dg.RunRequest] = []
    notes: list[str] = []
    cursor = dict(cursor)

    drift_key = asset_key(ticker, "drift_report")
    after = cursor.get("drift_id")
    if after is None:
        # First tick: only the newest report counts, not the whole history.
        latest = instance.fetch_materializations(drift_key, limit=1).records
        records = latest
    else:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=drift_key, after_storage_id=int(after)),
            limit=200,
            ascending=True,
        ).records
    for rec in records:
        cursor["drift_id"] = max(int(cursor.get("drift_id") or 0), rec.storage_id)
        day = dt.date.fromisoformat(rec.partition_key or "")
        report = load_drift_report(store, ticker, day)
        if not report.fired:
            continue
        fired = ",".join(report.fired)
        last = cursor.get("last_fired")
        if in_cooldown(day, dt.date.fromisoformat(last) if last else None, cooldown_days):
            notes.append(
                f"{day}: {fired} fired but within the {cooldown_days}-session cooldown after {last}"
            )
            continue
        nxt = calendar.next_trading_day(day)
        week = calendar.week_start(nxt).isoformat()
        tags = {
            "zdte/trigger": fired,
            "zdte/drift_day": day.isoformat(),
            "zdte/ticker": ticker,
            "zdte/slot": "reoptimization",
            **_report_tags(report),
        }
        requests.append(
            dg.RunRequest(
                run_key=f"{ticker}-reopt-{day}",
                job_name=names["weekly"],
                partition_key=week,
                run_config={
                    "ops": {
                        asset_op_name(ticker, "tuned_params"): {
                            "config": {"as_of": day.isoformat()}
                        }
                    }
                },
                tags=tags,
            )
        )
        cursor["last_fired"] = day.isoformat()
        notes.append(f"{day}: {fired} fired; re-optimizing week {week} with data through {day}")

    tuned_key = asset_key(ticker, "tuned_params")
    t_after = cursor.get("tuned_id")
    if t_after is None:
        latest_t = instance.fetch_materializations(tuned_key, limit=1).records
        cursor["tuned_id"] = latest_t[0].storage_id if latest_t else 0
        t_records: list[Any] = []
    else:
        t_records = list(
            instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=tuned_key, after_storage_id=int(t_after)),
                limit=200,
                ascending=True,
            ).records
        )
    for rec in t_records:
        cursor["tuned_id"] = max(int(cursor.get("tuned_id") or 0), rec.storage_id)
        trigger = str(_meta(rec, "trigger", "schedule"))
        as_of = dt.date.fromisoformat(str(_meta(rec, "as_of")))
        nxt = calendar.next_trading_day(as_of)
        requests.append(
            dg.RunRequest(
                run_key=retrain_run_key(ticker, nxt, as_of, str(_meta(rec, "mlflow_run_id", ""))),
                job_name=names["retrain"],
                partition_key=nxt.isoformat(),
                tags={
                    "zdte/trigger": trigger,
                    "zdte/slot": "retrain-after-study",
                    "zdte/ticker": ticker,
                },
            )
        )
        notes.append(f"study as of {as_of} ({trigger}) is in; retraining the model for {nxt}")
    return requests, cursor, notes


def build_sensors(ticker: str, jobs: list[Any]) -> list[dg.SensorDefinition]:
    names = job_names(ticker)
    targets = [j for j in jobs if j.name in (names["weekly"], names["retrain"])]

    @dg.sensor(
        name=sensor_name(ticker),
        jobs=targets,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus(default_status().value),
        description="Re-optimizes when a drift report fires a trigger (with a cooldown); retrains after every new study.",
    )
    def drift_sensor(context: dg.SensorEvaluationContext, store: StoreResource) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests, new_cursor, notes = evaluate_drift(
            ticker, context.instance, cursor, store.store()
        )
        for line in notes:
            context.log.info(line)
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps(new_cursor, sort_keys=True),
            skip_reason=None
            if requests
            else dg.SkipReason("; ".join(notes) or "no new drift report fired"),
        )

    return [drift_sensor]
