"""The drift sensor against the replay's Dagster instance and real `drift_report` runs.

Each test starts its cursor where the instance stands (as `zdte replay` does), re-materializes
the real drift report of chosen days of the replayed week with thresholds that force a trigger
to fire or make firing impossible, and evaluates the real sensor tick by tick.

The replay's storage is copied first, and the study writes to its own MLflow and Optuna files:
re-materialized reports and a new study must not change what other tests read from the replay.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.sensor_definition import SensorExecutionData

from zdte_assets.core import calendar
from zdte_assets.core.records import DriftReport
from zdte_assets.definitions import build_definitions
from zdte_assets.monitoring.config import MONITORING_CONFIG
from zdte_assets.monitoring.report import load_drift_report
from zdte_assets.orchestration.jobs import asset_op_name, job_names
from zdte_assets.orchestration.runner import QUIET, local_instance, materialize_range
from zdte_assets.orchestration.sensors import evaluate_drift, sessions_between
from zdte_assets.storage.store import Store, store_from_url
from zdte_assets_tests.conftest import Replayed

TICKER = "AAPL"
DRIFT = dg.AssetKey([TICKER, "drift_report"])
TUNED = dg.AssetKey([TICKER, "tuned_params"])
JOBS = job_names(TICKER)
STUDY_OP = asset_op_name(TICKER, "tuned_params")
#: Every re-materialization here carries this tag, so the extra events are easy to tell apart.
TAGS = {"zdte/test": "sensor"}
#: The RMSE rule over one day with a threshold any non-zero error exceeds.
FIRE = {"rmse_window": 1, "rmse_ratio_threshold": 1e-9}
#: Thresholds no report can reach.
NEVER = {
    "rmse_ratio_threshold": 1e12,
    "accuracy_floor": 1e-9,
    "data_method": "psi",
    "psi_threshold": 1e12,
    "data_min_features": 10_000,
    "target_alpha": 1e-300,
}
STUDY_TRIALS = 4


@dataclass(frozen=True)
class World:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    storage: Path

    @property
    def store(self) -> Store:
        return store_from_url(str(self.storage))


@pytest.fixture(scope="module")
def world(replayed: Replayed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("sensor")
    storage = root / "storage"
    shutil.copytree(replayed.storage, storage)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZDTE_OPTUNA_STORAGE", f"sqlite:///{root / 'optuna.db'}")
        defs = build_definitions(
            tickers=[TICKER],
            storage_url=str(storage),
            tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
            start=dt.date(2019, 1, 2),
        )
        yield World(defs=defs, instance=local_instance(), storage=storage)


def start_cursor(instance: dg.DagsterInstance) -> str:
    """The cursor of a sensor switched on now: everything already in the instance is history."""
    cursor = {}
    for key, name in ((DRIFT, "drift_id"), (TUNED, "tuned_id")):
        latest = instance.fetch_materializations(key, limit=1).records
        cursor[name] = latest[0].storage_id if latest else 0
    return json.dumps(cursor)


def materialize_report(world: World, day: str, overrides: dict[str, Any]) -> DriftReport:
    """Run the real `drift_report` of `day` with `overrides` (typed fields of the run config);
    the stored report, read back as the record."""
    result = materialize_range(
        world.defs,
        [DRIFT.to_user_string()],
        day,
        None,
        world.instance,
        tags=TAGS,
        run_config={"ops": {asset_op_name(TICKER, "drift_report"): {"config": overrides}}},
    )
    assert result.success
    report = load_drift_report(world.store, TICKER, dt.date.fromisoformat(day))
    assert report.date.isoformat() == day
    assert {k: report.config[k] for k in overrides} == overrides
    # Fields not overridden are the platform's.
    rest = {k: v for k, v in report.config.items() if k not in overrides}
    assert rest == {k: v for k, v in MONITORING_CONFIG.to_dict().items() if k not in overrides}
    return report


def latest(world: World, key: dg.AssetKey) -> dg.EventLogRecord:
    return world.instance.fetch_materializations(key, limit=1).records[0]


def tick(world: World, cursor: str | None) -> SensorExecutionData:
    sensor = world.defs.resolve_sensor_def(f"{TICKER}_drift_sensor")
    # The store resource the definitions configure, as the daemon would provide it.
    store = (world.defs.resources or {})["store"]
    with dg.build_sensor_context(
        instance=world.instance,
        cursor=cursor,
        definitions=world.defs,
        resources={"store": store},
    ) as context:
        return sensor.evaluate_tick(context)


def valid_partition(world: World, request: dg.RunRequest, day: str) -> bool:
    """Whether the requested partition already exists when the sensor ticks after the evening
    run of `day`, as it must for the run to launch then."""
    partitions = world.defs.resolve_job_def(request.job_name or "").partitions_def
    assert partitions is not None
    evening = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(17, 0), calendar.NY)
    return request.partition_key in partitions.get_partition_keys(current_time=evening)


def test_fired_report_requests_reoptimization_of_the_next_sessions_week(world: World) -> None:
    day = "2024-11-06"
    cursor = start_cursor(world.instance)
    report = materialize_report(world, day, FIRE)
    assert "rmse_ratio" in report.fired
    record = latest(world, DRIFT)
    assert record.partition_key == day

    data = tick(world, cursor)
    assert data.run_requests is not None and len(data.run_requests) == 1
    request = data.run_requests[0]
    nxt = calendar.next_trading_day(dt.date.fromisoformat(day))
    assert request.job_name == JOBS["weekly"]
    assert request.partition_key == calendar.week_start(nxt).isoformat()
    assert valid_partition(world, request, day)
    assert request.run_config == {"ops": {STUDY_OP: {"config": {"as_of": day}}}}
    assert request.run_key is not None and day in request.run_key
    assert request.tags["zdte/trigger"] == ",".join(report.fired)
    assert request.tags["zdte/drift_day"] == day
    assert float(request.tags["zdte/perf_ratio"]) == pytest.approx(
        report.performance.ratio, rel=1e-3
    )
    drifted = sum(1 for f in report.feature_drift if f.drifted)
    assert request.tags["zdte/n_features_drifted"] == str(drifted)

    # The cursor moved past the report: the same tick again finds nothing new.
    cursor_after = json.loads(data.cursor or "{}")
    assert cursor_after["drift_id"] == record.storage_id
    assert cursor_after["last_fired"] == day
    again = tick(world, data.cursor)
    assert not again.run_requests
    assert again.skip_message
    assert json.loads(again.cursor or "{}") == cursor_after


def test_report_without_a_fired_trigger_requests_nothing(world: World) -> None:
    day = "2024-11-05"
    cursor = start_cursor(world.instance)
    report = materialize_report(world, day, NEVER)
    assert report.fired == ()
    assert not any(t.fired for t in report.triggers)
    record = latest(world, DRIFT)

    data = tick(world, cursor)
    assert not data.run_requests
    assert data.skip_message
    cursor_after = json.loads(data.cursor or "{}")
    assert cursor_after["drift_id"] == record.storage_id
    assert "last_fired" not in cursor_after


def test_cooldown_holds_back_firings_on_the_following_sessions(world: World) -> None:
    first, second, third = "2024-11-04", "2024-11-05", "2024-11-07"
    gap = sessions_between(dt.date.fromisoformat(first), dt.date.fromisoformat(third))
    assert 1 < gap <= MONITORING_CONFIG.cooldown_days
    cursor0 = start_cursor(world.instance)

    materialize_report(world, first, FIRE)
    t1 = tick(world, cursor0)
    assert [r.tags["zdte/drift_day"] for r in t1.run_requests or []] == [first]

    materialize_report(world, second, FIRE)
    t2 = tick(world, t1.cursor)
    assert not t2.run_requests
    assert t2.skip_message and "cooldown" in t2.skip_message and first in t2.skip_message

    materialize_report(world, third, FIRE)
    before_third = json.loads(t2.cursor or "{}")
    t3 = tick(world, t2.cursor)
    assert not t3.run_requests
    assert json.loads(t3.cursor or "{}")["last_fired"] == first

    # The same events with a cooldown shorter than the gap: the third report fires again...
    requests, cursor, _ = evaluate_drift(TICKER, world.instance, before_third, world.store, gap - 1)
    assert [r.tags["zdte/drift_day"] for r in requests] == [third]
    assert cursor["last_fired"] == third
    # ...while a cooldown of exactly the gap still holds it back.
    requests, _, notes = evaluate_drift(TICKER, world.instance, before_third, world.store, gap)
    assert requests == [] and any("cooldown" in n for n in notes)

    # Without a cooldown every firing report asks, each under its own run key.
    requests, _, _ = evaluate_drift(TICKER, world.instance, json.loads(cursor0), world.store, 0)
    assert [r.tags["zdte/drift_day"] for r in requests] == [first, second, third]
    keys = [r.run_key or "" for r in requests]
    assert len(set(keys)) == 3
    assert all(d in k for d, k in zip([first, second, third], keys, strict=True))


def test_reoptimization_then_retrains_the_next_sessions_model(world: World) -> None:
    day = "2024-11-08"  # a Friday: the next session opens the next week
    nxt = calendar.next_trading_day(dt.date.fromisoformat(day))
    cursor0 = start_cursor(world.instance)
    materialize_report(world, day, FIRE)
    t1 = tick(world, cursor0)
    assert t1.run_requests is not None and len(t1.run_requests) == 1
    reopt = t1.run_requests[0]
    assert (
        reopt.partition_key
        == calendar.week_start(nxt).isoformat()
        != calendar.week_start(dt.date.fromisoformat(day)).isoformat()
    )

    # Execute the requested run as the daemon would: its job, partition, config and tags.
    run_config: dict[str, Any] = json.loads(json.dumps(reopt.run_config))
    run_config["ops"][STUDY_OP]["config"]["n_trials"] = STUDY_TRIALS
    job = world.defs.resolve_job_def(reopt.job_name or "")
    result = job.execute_in_process(
        run_config={**QUIET, **run_config},
        instance=world.instance,
        partition_key=reopt.partition_key,
        tags={**reopt.tags, **TAGS},
    )
    assert result.success
    tuned = latest(world, TUNED)
    assert tuned.partition_key == reopt.partition_key
    assert tuned.asset_materialization is not None
    assert tuned.asset_materialization.metadata["as_of"].value == day

    t2 = tick(world, t1.cursor)
    assert t2.run_requests is not None and len(t2.run_requests) == 1
    retrain = t2.run_requests[0]
    assert retrain.job_name == JOBS["retrain"]
    assert retrain.partition_key == nxt.isoformat()
    assert valid_partition(world, retrain, day)
    assert retrain.tags["zdte/trigger"] == reopt.tags["zdte/trigger"]
    assert retrain.run_key is not None and day in retrain.run_key
    assert nxt.isoformat() in retrain.run_key
    assert json.loads(t2.cursor or "{}")["tuned_id"] == tuned.storage_id

    t3 = tick(world, t2.cursor)
    assert not t3.run_requests


def test_scheduled_weekly_study_retrains_the_weeks_first_session(world: World) -> None:
    """Monday trades on a model with Sunday's study, not on Friday's retrain with last week's."""
    sunday = dt.datetime(2024, 11, 10, 18, 0, tzinfo=calendar.NY)
    schedule = world.defs.resolve_schedule_def(f"{TICKER}_weekly_schedule")
    scheduled = schedule.evaluate_tick(
        dg.build_schedule_context(
            scheduled_execution_time=sunday, repository_def=world.defs.get_repository_def()
        )
    ).run_requests
    assert scheduled is not None and len(scheduled) == 1
    weekly = scheduled[0]
    cursor0 = start_cursor(world.instance)
    result = world.defs.resolve_job_def(weekly.job_name or "").execute_in_process(
        run_config={
            **QUIET,
            "ops": {STUDY_OP: {"config": {"n_trials": STUDY_TRIALS}}},
        },
        instance=world.instance,
        partition_key=weekly.partition_key,
        tags={**weekly.tags, **TAGS},
    )
    assert result.success
    tuned = latest(world, TUNED)
    assert tuned.partition_key == weekly.partition_key
    assert tuned.asset_materialization is not None
    as_of = str(tuned.asset_materialization.metadata["as_of"].value)
    monday = dt.date(2024, 11, 11)
    assert as_of == calendar.previous_trading_day(monday).isoformat()

    data = tick(world, cursor0)
    assert data.run_requests is not None and len(data.run_requests) == 1
    retrain = data.run_requests[0]
    assert retrain.job_name == JOBS["retrain"]
    assert retrain.partition_key == monday.isoformat()
    assert retrain.tags["zdte/trigger"] == "schedule"
    # The same key a drift-triggered study on the same data (Friday's) asks with when this run
    # reused its version: one retrain per version.
    version_run = str(tuned.asset_materialization.metadata["mlflow_run_id"].value)
    assert retrain.run_key == f"{TICKER}-retrain-{monday}-asof-{as_of}-{version_run[:12]}"
    assert json.loads(data.cursor or "{}")["tuned_id"] == tuned.storage_id
