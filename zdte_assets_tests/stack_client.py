"""Drive the real production stack from the tests as a user would: `zdte stack` for the
processes, the webserver's GraphQL (what the Dagster UI sends) for schedules, sensors, runs and
backfills, and the stack's own credentials for S3, MLflow and the instance on Postgres."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zdte_assets import stack
from zdte_assets_tests.services import free_ports

ZDTE = [sys.executable, "-m", "zdte_assets.cli"]
LOCATION = "zdte"
REPOSITORY = "__repository__"


def stack_env(home: Path) -> dict[str, str]:
    """The environment of a stack of its own: free ports, fresh per-test Postgres users."""
    ports = free_ports(9)
    suffix = os.urandom(3).hex()
    return {
        **os.environ,
        "ZDTE_HOME": str(home),
        "ZDTE_S3_PORT": str(ports[0]),
        "ZDTE_S3_MASTER_PORT": str(ports[1]),
        "ZDTE_S3_VOLUME_PORT": str(ports[2]),
        "ZDTE_S3_FILER_PORT": str(ports[3]),
        "ZDTE_S3_ADMIN_PORT": str(ports[4]),
        "ZDTE_MLFLOW_PORT": str(ports[5]),
        "ZDTE_CODE_PORT": str(ports[6]),
        "ZDTE_WEBSERVER_PORT": str(ports[7]),
        "ZDTE_HTTPS_PORT": str(ports[8]),
        "ZDTE_DAGSTER_SITE": f"https://dagster.localhost:{ports[8]}",
        "ZDTE_MLFLOW_SITE": f"https://mlflow.localhost:{ports[8]}",
        # Schedules and sensors start stopped: the tests start the sensor as the UI does, and
        # evaluate schedules for chosen times (the wall clock is years after the sample).
        "ZDTE_AUTOMATION": "off",
        **{
            f"{svc}_PG_{part}": f"zdte_{svc.lower()}_{suffix}"
            for svc in ("DAGSTER", "MLFLOW", "OPTUNA")
            for part in ("USER", "DB")
        },
    }


def zdte(
    env: Mapping[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZDTE, *args], env=dict(env), capture_output=True, text=True, timeout=timeout
    )


def drop_databases(cfg: Mapping[str, str]) -> None:
    """Remove a test stack's users and databases from the host's Postgres."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(cfg["ZDTE_PG_ADMIN_URL"])
    conn.autocommit = True
    with conn.cursor() as cur:
        for prefix in ("DAGSTER", "MLFLOW", "OPTUNA"):
            db, user = cfg[f"{prefix}_PG_DB"], cfg[f"{prefix}_PG_USER"]
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
            )
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))
    conn.close()


class GraphQLError(RuntimeError):
    """The webserver answered with an HTTP error or a GraphQL error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Dagster:
    """The webserver's GraphQL endpoint, and the instance's Postgres read with the stack's
    Dagster user."""

    def __init__(self, cfg: Mapping[str, str]) -> None:
        self.cfg = dict(cfg)
        self.url = f"http://{cfg['ZDTE_WEBSERVER_HOST']}:{cfg['ZDTE_WEBSERVER_PORT']}/graphql"

    def query(self, text: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": text, "variables": variables}).encode()
        req = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                out = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise GraphQLError(f"HTTP {exc.code}: {exc.read()[:300]!r}", exc.code) from None
        if out.get("errors"):
            raise GraphQLError(json.dumps(out["errors"])[:500])
        data: dict[str, Any] = out["data"]
        return data

    # --------------------------------------------------------------- schedules and sensors

    def schedule_tick(self, name: str, when: float) -> list[dict[str, Any]]:
        """Run requests of schedule `name` evaluated for the tick at `when` (the UI's "Test
        schedule"), evaluated by the code server."""
        data = self.query(
            """mutation($sel: ScheduleSelector!, $ts: Float) {
              scheduleDryRun(selectorData: $sel, timestamp: $ts) {
                __typename
                ... on DryRunInstigationTick { evaluationResult {
                    skipReason error { message }
                    runRequests { runKey jobName runConfigYaml tags { key value } } } }
                ... on PythonError { message }
              } }""",
            sel={
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "scheduleName": name,
            },
            ts=when,
        )["scheduleDryRun"]
        if data["__typename"] != "DryRunInstigationTick":
            raise GraphQLError(f"{name}: {data}")
        result = data["evaluationResult"]
        if result["error"]:
            raise GraphQLError(f"{name}: {result['error']['message']}")
        return list(result["runRequests"] or [])

    def start_sensor(self, name: str) -> str:
        data = self.query(
            """mutation($sel: SensorSelector!) { startSensor(sensorSelector: $sel) {
                __typename ... on Sensor { sensorState { status } }
                ... on PythonError { message } } }""",
            sel={
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "sensorName": name,
            },
        )["startSensor"]
        if data["__typename"] != "Sensor":
            raise GraphQLError(f"{name}: {data}")
        return str(data["sensorState"]["status"])

    # -------------------------------------------------------------------------------- runs

    def launch(
        self,
        job: str,
        tags: Mapping[str, str],
        run_config: Mapping[str, Any] | None = None,
    ) -> str:
        """Launch `job` as the launchpad does; the run id."""
        data = self.query(
            """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
                __typename ... on LaunchRunSuccess { run { runId } }
                ... on PythonError { message } ... on RunConfigValidationInvalid {
                  errors { message } } ... on InvalidSubsetError { message } } }""",
            p={
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "pipelineName": job,
                },
                "runConfigData": dict(run_config or {}),
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            },
        )["launchPipelineExecution"]
        if data["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"{job}: {data}")
        return str(data["run"]["runId"])

    def launch_request(self, request: Mapping[str, Any], **config: Any) -> str:
        """Launch a schedule's run request with its tags (partition, schedule) and config."""
        import yaml

        run_config = yaml.safe_load(request["runConfigYaml"]) or {}
        run_config.update(config)
        tags = {t["key"]: t["value"] for t in request["tags"]}
        return self.launch(str(request["jobName"]), tags, run_config)

    def backfill(self, assets: list[str], start: str, end: str, title: str) -> str:
        """An asset backfill over a partition range, as the UI's "Materialize selected"."""
        data = self.query(
            """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
                __typename ... on LaunchBackfillSuccess { backfillId }
                ... on PythonError { message } ... on PartitionSetNotFoundError { message } } }""",
            p={
                "partitionsByAssets": [
                    {
                        "assetKey": {"path": a.split("/")},
                        "partitions": {"range": {"start": start, "end": end}},
                    }
                    for a in assets
                ],
                "title": title,
            },
        )["launchPartitionBackfill"]
        if data["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"backfill: {data}")
        return str(data["backfillId"])

    def backfill_status(self, backfill_id: str) -> str:
        data = self.query(
            """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                __typename ... on PartitionBackfill { status } } }""",
            id=backfill_id,
        )["partitionBackfillOrError"]
        return str(data.get("status"))

    def wait_backfill(self, backfill_id: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.backfill_status(backfill_id)
            if status in (
                "COMPLETED",
                "COMPLETED_SUCCESS",
                "COMPLETED_FAILED",
                "FAILED",
                "CANCELED",
            ):
                return status
            time.sleep(3)
        raise TimeoutError(f"backfill {backfill_id} still {status} after {timeout:.0f} s")

    def run(self, run_id: str) -> dict[str, Any]:
        data = self.query(
            """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
                runId status jobName tags { key value } } } }""",
            id=run_id,
        )["runOrError"]
        return data

    def wait_run(self, run_id: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < deadline:
            status = str(self.run(run_id).get("status"))
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(2)
        raise TimeoutError(f"run {run_id} still {status} after {timeout:.0f} s")

    def runs(self, **filters: Any) -> list[dict[str, Any]]:
        data = self.query(
            """query($f: RunsFilter) { runsOrError(filter: $f) { __typename ... on Runs {
                results { runId status jobName tags { key value } } } } }""",
            f=filters,
        )["runsOrError"]
        return list(data["results"])

    def failure_message(self, run_id: str) -> str:
        """The error of the run's failed step (what the UI shows on the failed run)."""
        data = self.query(
            """query($id: ID!) { logsForRun(runId: $id, limit: 2000) { __typename
                ... on EventConnection { events { __typename
                  ... on ExecutionStepFailureEvent { stepKey error { message } }
                  ... on RunFailureEvent { message } } } } }""",
            id=run_id,
        )["logsForRun"]
        steps = [
            e["error"]["message"]
            for e in data.get("events", [])
            if e["__typename"] == "ExecutionStepFailureEvent" and e.get("error")
        ]
        runs = [
            e["message"] for e in data.get("events", []) if e["__typename"] == "RunFailureEvent"
        ]
        return (steps or runs or [""])[0]


def stop_service(cfg: Mapping[str, str], name: str) -> None:
    """Stop one service of the stack as a crash would (SIGKILL to its process group)."""
    import signal

    pid = stack.running_pid(cfg, name)
    assert pid is not None, f"{name} is not running"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while stack.running_pid(cfg, name) is not None and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
