"""Faults injected into the real production stack (marked `stack`), after the end-to-end days.

Each test breaks one service the way it breaks in production (a process killed, a database
refusing connections) while the stack does a trading day's work, then checks what a user sees
(one clear line), that nothing half-written is visible (no object for the failed day, no MLflow
run left RUNNING, no second model version) and that a re-run or Dagster's own retry recovers.
The tests share one stack and build on each other's days, in file order.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from mlflow import MlflowClient

from zdte_assets_tests import stack_client
from zdte_assets_tests.stack_client import FAULT_DAYS, Dagster, GraphQLError

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3000)]
TICKER = "AAPL"
SEVENTH, EIGHTH = FAULT_DAYS


@pytest.fixture
def dagster(
    running_stack: dict[str, str], stack_sessions: dict[str, str], stack_env: dict[str, str]
) -> Iterator[Dagster]:
    dagster = Dagster(running_stack)
    stack_client.wait_idle(dagster)
    yield dagster
    # Whatever a test stopped is started again, as an operator's `zdte stack up` would, and the
    # next test starts with no run of this one still going.
    stack_client.refuse_postgres(running_stack, running_stack["DAGSTER_PG_USER"], refuse=False)
    up = stack_client.zdte(stack_env, "stack", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    stack_client.wait_idle(dagster)


def _restart(stack_env: dict[str, str]) -> None:
    up = stack_client.zdte(stack_env, "stack", "up")
    assert up.returncode == 0, up.stdout + up.stderr


def _one_line(text: str) -> str:
    assert text and "\n" not in text.strip() and "Traceback" not in text, text
    return text.strip()


def _mlflow(cfg: dict[str, str]) -> MlflowClient:
    return MlflowClient(cfg["MLFLOW_TRACKING_URI"])


def _versions_of(cfg: dict[str, str], day: str) -> list[str]:
    found = _mlflow(cfg).search_model_versions(f"name='zdte-{TICKER}' and tags.day='{day}'")
    return [v.version for v in found]


def _running_mlflow_runs(cfg: dict[str, str]) -> list[str]:
    client = _mlflow(cfg)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return [r.info.run_id for r in client.search_runs(experiments, "attributes.status = 'RUNNING'")]


def _prediction(cfg: dict[str, str], day: str) -> dict[str, object] | None:
    s3 = stack_client.s3_client(cfg)
    bucket, key = stack_client.prediction_key(cfg, TICKER, day)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    record: dict[str, object] = json.loads(body)
    return record


def test_mlflow_down_from_the_start_fails_the_retrain_in_one_line_and_a_rerun_recovers(
    dagster: Dagster, running_stack: dict[str, str], stack_env: dict[str, str]
) -> None:
    request = stack_client.slot_request(dagster, TICKER, "retrain", SEVENTH)
    stack_client.stop_service(running_stack, "mlflow")
    failed = dagster.launch_request(request)
    assert dagster.wait_run(failed) == "FAILURE"
    (cause,) = stack_client.root_causes(dagster, failed)
    assert re.search(r"MLflow tracking server http://\S+ is unreachable", _one_line(cause))
    _restart(stack_env)
    assert _versions_of(running_stack, SEVENTH) == []
    again = dagster.launch_request(request)
    assert dagster.wait_run(again) == "SUCCESS"
    assert len(_versions_of(running_stack, SEVENTH)) == 1
    assert _running_mlflow_runs(running_stack) == []


def test_s3_down_mid_run_leaves_no_prediction_and_a_rerun_writes_it(
    dagster: Dagster, running_stack: dict[str, str], stack_env: dict[str, str]
) -> None:
    request = stack_client.slot_request(dagster, TICKER, "morning", SEVENTH)
    run = dagster.launch_request(request)
    stack_client.wait_step_started(dagster, run)
    stack_client.stop_service(running_stack, "s3")
    assert dagster.wait_run(run) == "FAILURE"
    causes = stack_client.root_causes(dagster, run)
    assert causes and all(
        re.search(
            r"S3 unavailable while (writing|reading|checking|listing|deleting) s3://", _one_line(c)
        )
        for c in causes
    ), causes
    _restart(stack_env)
    assert _prediction(running_stack, SEVENTH) is None
    again = dagster.launch_request(request)
    assert dagster.wait_run(again) == "SUCCESS"
    record = _prediction(running_stack, SEVENTH)
    assert record is not None and record["date"] == SEVENTH


def test_postgres_refusing_the_instance_then_a_launch_retried_after_a_500_recovers(
    dagster: Dagster, running_stack: dict[str, str]
) -> None:
    request = stack_client.slot_request(dagster, TICKER, "evening", SEVENTH)
    user = running_stack["DAGSTER_PG_USER"]
    try:
        stack_client.refuse_postgres(running_stack, user, refuse=True)
        with pytest.raises(GraphQLError):
            dagster.launch_request(request)
    finally:
        stack_client.refuse_postgres(running_stack, user, refuse=False)
    # The UI's user clicks again: the webserver's pooled connections were cut, so the first
    # attempts may still answer 500 (a run may even be created half-way); retry until accepted.
    launched = None
    for _ in range(6):
        try:
            launched = dagster.launch_request(request)
            break
        except GraphQLError as exc:
            assert exc.status in (None, 500), exc
            time.sleep(2)
    assert launched is not None, "the launch never succeeded after Postgres came back"
    assert dagster.wait_run(launched) == "SUCCESS"
    # A run a failed launch left NOT_STARTED is failed by run monitoring and retried by the
    # daemon; in the end nothing waits, and the day's outcome is stored.
    runs = stack_client.wait_settled(dagster, f"{TICKER}_evening", SEVENTH, timeout=420)
    assert any(r["runId"] == launched for r in runs)
    assert all(r["status"] in ("SUCCESS", "FAILURE") for r in runs), runs
    s3 = stack_client.s3_client(running_stack)
    bucket, key = stack_client.prediction_key(running_stack, TICKER, SEVENTH)
    outcomes = key.rsplit("/", 3)[0] + f"/outcomes/{TICKER}.parquet"
    import io

    import polars as pl

    table = pl.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=outcomes)["Body"].read()))
    assert table.filter(pl.col("date").cast(pl.String) == SEVENTH).height == 1


def test_a_killed_run_is_retried_by_dagster_and_registers_one_version(
    dagster: Dagster, running_stack: dict[str, str]
) -> None:
    request = stack_client.slot_request(dagster, TICKER, "retrain", EIGHTH)
    run = dagster.launch_request(request)
    pid = stack_client.worker_pid(dagster, run)
    stack_client.wait_step_started(dagster, run)
    stack_client.kill_tree(pid)  # the run's process (steps run in it) and anything it started
    assert dagster.wait_run(run) == "FAILURE"
    runs = stack_client.wait_settled(dagster, f"{TICKER}_retrain", EIGHTH)
    retries = [r for r in runs if {"key": "dagster/parent_run_id", "value": run} in r["tags"]]
    assert [r["status"] for r in retries] == ["SUCCESS"]
    assert len(_versions_of(running_stack, EIGHTH)) == 1
    assert _running_mlflow_runs(running_stack) == []


def test_a_code_server_killed_mid_run_is_noticed_by_the_watchdog_and_the_run_retried(
    dagster: Dagster, running_stack: dict[str, str], stack_env: dict[str, str]
) -> None:
    request = stack_client.slot_request(dagster, TICKER, "morning", EIGHTH)
    run = dagster.launch_request(request)
    stack_client.wait_step_started(dagster, run)
    stack_client.stop_service(running_stack, "code")  # its run workers die with it
    _restart(stack_env)
    assert dagster.wait_run(run, timeout=300) == "FAILURE"
    assert "run worker" in " ".join(stack_client.root_causes(dagster, run))
    stack_client.wait_settled(dagster, f"{TICKER}_morning", EIGHTH)
    record = _prediction(running_stack, EIGHTH)
    assert record is not None and record["date"] == EIGHTH


def test_mlflow_down_mid_study_fails_in_one_line_leaves_no_running_run_and_the_rerun_is_reused(
    dagster: Dagster, running_stack: dict[str, str], stack_env: dict[str, str]
) -> None:
    # A re-optimization of the first traded week with other settings, so it really computes.
    week = stack_client.E2E_DAYS[0]
    tags = {"dagster/partition": week, "zdte/slot": "reoptimization", "zdte/ticker": TICKER}
    config = {"ops": {f"{TICKER}__tuned_params": {"config": {"n_trials": 40, "seed": 7}}}}
    run = dagster.launch(f"{TICKER}_weekly", tags, config)
    client = _mlflow(running_stack)
    deadline = time.monotonic() + 300
    while True:
        experiments = [e.experiment_id for e in client.search_experiments()]
        mine = client.search_runs(experiments, f"tags.`dagster.run_id` = '{run}'")
        if mine:
            break
        assert time.monotonic() < deadline, "the study's MLflow run never appeared"
        time.sleep(0.5)
    stack_client.stop_service(running_stack, "mlflow")
    assert dagster.wait_run(run) == "FAILURE"
    (cause,) = stack_client.root_causes(dagster, run)
    assert re.search(r"MLflow tracking server http://\S+ (failed|is unreachable)", _one_line(cause))
    _restart(stack_env)
    assert _running_mlflow_runs(running_stack) == [mine[0].info.run_id]  # until the next attempt
    again = dagster.launch(f"{TICKER}_weekly", tags, config)
    assert dagster.wait_run(again) == "SUCCESS"
    assert client.get_run(mine[0].info.run_id).info.status == "FAILED"
    assert _running_mlflow_runs(running_stack) == []
    # The same study once more: the stored version is reused, no new MLflow run.
    experiments = [e.experiment_id for e in client.search_experiments()]
    studies = f"tags.`dagster.asset_key` = '{TICKER}/tuned_params'"
    before = {r.info.run_id for r in client.search_runs(experiments, studies)}
    third = dagster.launch(f"{TICKER}_weekly", tags, config)
    assert dagster.wait_run(third) == "SUCCESS"
    assert {r.info.run_id for r in client.search_runs(experiments, studies)} == before
