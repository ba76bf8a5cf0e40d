"""The production stack doing a few trading days' work, end to end (marked `stack`).

`stack_sessions` (conftest) drives the real stack through `stack_client.E2E_DAYS` the way
production runs: schedules evaluated by the code server for the ticks' times and launched
through the webserver's GraphQL, the drift sensor and the run watchdog running in the daemon.
These tests then look at what a desk would look at, each with its own tool: the predictions
with boto3 only, the models with MLflow's client and the bucket behind it, the runs and the
asset checks in the instance's Postgres database with the Dagster user.
"""

from __future__ import annotations

import io
import json

import polars as pl
import pytest
from mlflow import MlflowClient

from zdte_assets.apps import stack
from zdte_assets_tests import stack_client
from zdte_assets_tests.stack_client import E2E_DAYS, Dagster

# The first test also pays for the stack and the simulated days (session fixtures).
pytestmark = [pytest.mark.stack, pytest.mark.timeout(3000)]
TICKER = "AAPL"


def _tags(run: dict[str, object]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}  # type: ignore[attr-defined]


def test_scheduled_runs_and_the_sensor_did_each_day(
    running_stack: dict[str, str], stack_sessions: dict[str, str]
) -> None:
    dagster = Dagster(running_stack)
    for i, day in enumerate(E2E_DAYS):
        for slot in ("retrain", "morning", "evening"):
            run = dagster.run(stack_sessions[f"{slot} {day}"])
            tags = _tags(run)
            assert run["status"] == "SUCCESS", (slot, day)
            assert tags["dagster/partition"] == day
            if i == 0 and slot == "retrain":
                # Monday's model after the first Sunday study: the sensor's phase 2.
                assert tags["dagster/sensor_name"] == f"{TICKER}_drift_sensor"
            else:
                # Launched from the schedule's tick, for the trading day's partition.
                assert tags["dagster/schedule_name"] == f"{TICKER}_{slot}_schedule"
    reopt = _tags(dagster.run(stack_sessions["sensor reoptimization"]))
    retrain = _tags(dagster.run(stack_sessions["sensor retrain-after-study"]))
    assert (
        reopt["dagster/sensor_name"] == retrain["dagster/sensor_name"] == f"{TICKER}_drift_sensor"
    )
    assert reopt["zdte/drift_day"] == E2E_DAYS[1]
    # The study's data end at the drifting evening; the retrain is of the next session.
    assert retrain["dagster/partition"] == E2E_DAYS[2]


def test_predictions_are_in_s3_for_every_day_readable_with_boto3(
    running_stack: dict[str, str], stack_sessions: dict[str, str]
) -> None:
    s3 = stack_client.s3_client(running_stack)
    for day in E2E_DAYS:
        bucket, key = stack_client.prediction_key(running_stack, TICKER, day)
        record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert record["ticker"] == TICKER and record["date"] == day
        assert record["decision"]["action"] in ("CALL", "PUT", "NO_TRADE")
        assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
    bucket, key = stack_client.prediction_key(running_stack, TICKER, E2E_DAYS[0])
    table_key = key.rsplit("/", 2)[0] + f"/{TICKER}.parquet"
    table = pl.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=table_key)["Body"].read()))
    assert sorted(str(d) for d in table["date"].to_list()) == list(E2E_DAYS)


def test_models_and_their_artifacts_are_in_mlflow_on_s3_one_version_per_day_and_data(
    running_stack: dict[str, str], stack_sessions: dict[str, str]
) -> None:
    client = MlflowClient(running_stack["MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions(f"name='zdte-{TICKER}'")
    by_day: dict[str, list[str]] = {}
    for v in versions:
        by_day.setdefault(v.tags["day"], []).append(v.version)
    # The third day's model was trained twice (the sensor's retrain after the study, then the
    # 16:45 tick) on the same rows and study: one version.
    assert {d: len(vs) for d, vs in by_day.items() if d in E2E_DAYS} == dict.fromkeys(E2E_DAYS, 1)
    s3 = stack_client.s3_client(running_stack)
    bucket = running_stack["ZDTE_MLFLOW_BUCKET"]
    stored = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    for v in versions:
        assert any(v.run_id in k and k.endswith("model/MLmodel") for k in stored), v.version
    experiments = [e.experiment_id for e in client.search_experiments()]
    running = client.search_runs(experiments, "attributes.status = 'RUNNING'")
    assert running == []


def test_runs_and_asset_checks_are_in_the_instance_on_postgres(
    running_stack: dict[str, str], stack_sessions: dict[str, str]
) -> None:
    cfg = running_stack
    conn = stack.service_db(cfg)
    try:
        with conn.cursor() as cur:
            ids = [v for k, v in stack_sessions.items() if not k.startswith("backfill")]
            cur.execute("SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (ids,))
            assert dict(cur.fetchall()) == dict.fromkeys(ids, "SUCCESS")
            cur.execute(
                "SELECT run_id, check_name FROM asset_check_executions "
                "WHERE run_id = ANY(%s) AND execution_status = 'SUCCEEDED'",
                (ids,),
            )
            checks = cur.fetchall()
    finally:
        conn.close()
    # Each evening's bar was checked by that evening's run.
    for day in E2E_DAYS:
        run_id = stack_sessions[f"evening {day}"]
        names = {name for r, name in checks if r == run_id}
        assert names == {"ohlc_consistent", "overnight_gap", "not_stale"}, day
