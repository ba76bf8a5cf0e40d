"""Drive the real production stack from the tests as a user would: `zdte stack` for the
processes, the webserver's GraphQL (what the Dagster UI sends) for schedules, sensors, runs and
backfills, and the stack's own credentials for S3, MLflow and the instance on Postgres."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zdte_assets.apps import stack
from zdte_assets.orchestration.run_watchdog import STARTED_PREFIX

ZDTE = [sys.executable, "-m", "zdte_assets.apps.cli"]
LOCATION = "zdte"
REPOSITORY = "__repository__"


def _bindable(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def weed_ports(n: int) -> list[int]:
    """`n` free ports below the ephemeral range (which outgoing connections may take while the
    stack starts), whose SeaweedFS gRPC companions (port + 10000) are free and valid too."""
    import random

    rng = random.Random()
    out: list[int] = []
    while len(out) < n:
        port = rng.randrange(12000, 22000)
        if port not in out and _bindable(port) and _bindable(port + 10000):
            out.append(port)
    return out


def stack_env(home: Path) -> dict[str, str]:
    """The environment of a stack of its own: free ports, fresh per-test Postgres users."""
    ports = weed_ports(11)
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
        "ZDTE_AUTHGATE_PORT": str(ports[9]),
        "ZDTE_CADDY_ADMIN_PORT": str(ports[10]),
        # Partitions start where the first traded week needs them: a short first backfill.
        "ZDTE_HISTORY_START": history_start(E2E_DAYS[0]),
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
                __typename ... on PartitionBackfill { status } ... on PythonError { message }
                ... on BackfillNotFoundError { message } } }""",
            id=backfill_id,
        )["partitionBackfillOrError"]
        if data["__typename"] != "PartitionBackfill":
            raise GraphQLError(f"backfill {backfill_id}: {data}")
        return str(data["status"])

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

    def events(self, run_id: str, fragments: str) -> list[dict[str, Any]]:
        """The run's event log as the UI reads it, with the fields `fragments` select."""
        data = self.query(
            "query($id: ID!) { logsForRun(runId: $id, limit: 2000) { __typename "
            "... on EventConnection { events { __typename " + fragments + " } } } }",
            id=run_id,
        )["logsForRun"]
        return list(data.get("events", []))


def _gone(pid: int) -> bool:
    from zdte_assets.orchestration.run_watchdog import worker_alive

    return not worker_alive(pid, time.time())


def stop_service(cfg: Mapping[str, str], name: str) -> None:
    """Stop one service of the stack as a crash would (SIGKILL to its process group)."""
    import signal

    pid = stack.running_pid(cfg, name)
    assert pid is not None, f"{name} is not running"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not _gone(pid):
        assert time.monotonic() < deadline, f"{name} (pid {pid}) survived SIGKILL for 30 s"
        time.sleep(0.2)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL `pid` and every descendant (a run worker and its step processes): the whole
    run killed, as the OOM killer or an operator's `kill` of the run would leave it."""
    import signal

    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    return tree


# ------------------------------------------------------------------ simulated trading days

NY = "America/New_York"
#: The sessions the end-to-end test trades (the sample's last weeks), and what the fault suite
#: uses after them.
E2E_DAYS = ("2024-11-04", "2024-11-05", "2024-11-06")
FAULT_DAYS = ("2024-11-07", "2024-11-08")


def history_start(first_day: str) -> str:
    """First partition of a stack that trades from `first_day`: the replay's warm-up (feature
    lookback, the study's weeks and a margin), so the first backfill stays small."""
    import datetime as dt

    from zdte_assets.core import calendar
    from zdte_assets.core.config import STUDY_LOOKBACK_WEEKS
    from zdte_assets.features.rows import LOOKBACK

    sessions = LOOKBACK + STUDY_LOOKBACK_WEEKS * 5 + 5
    first = dt.date.fromisoformat(first_day)
    return calendar.previous_trading_day(first, sessions).isoformat()


def tick_time(day: str, hour: int, minute: int) -> float:
    """Epoch seconds of `day` at hour:minute in New York (a schedule's tick)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(
        dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=ZoneInfo(NY)
    ).timestamp()


def previous_session(day: str) -> str:
    import datetime as dt

    from zdte_assets.core import calendar

    return calendar.previous_trading_day(dt.date.fromisoformat(day)).isoformat()


SLOT_TIMES = {"morning": (9, 30), "evening": (16, 30), "retrain": (16, 45)}


def slot_request(dagster: Dagster, ticker: str, slot: str, day: str) -> dict[str, Any]:
    """The run request the `slot` schedule makes for trading day `day` (the retrain of `day`
    is ticked the session before, at 16:45)."""
    tick_day = previous_session(day) if slot == "retrain" else day
    (request,) = dagster.schedule_tick(
        f"{ticker}_{slot}_schedule", tick_time(tick_day, *SLOT_TIMES[slot])
    )
    return request


def worker_pid(dagster: Dagster, run_id: str, timeout: float = 300) -> int:
    """The run worker's process id, from its "Started process for run" event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fragment = (
            "... on EngineEvent { message metadataEntries { label "
            "... on TextMetadataEntry { text } } }"
        )
        for event in dagster.events(run_id, fragment):
            if event["__typename"] == "EngineEvent" and event["message"].startswith(STARTED_PREFIX):
                for entry in event["metadataEntries"]:
                    if entry["label"] == "pid":
                        return int(entry["text"])
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} reported no worker within {timeout:.0f} s")


def wait_step_started(dagster: Dagster, run_id: str, timeout: float = 300) -> str:
    """Wait until the run's first step has started (past the worker's imports); its key."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in dagster.events(run_id, "... on ExecutionStepStartEvent { stepKey }"):
            if event["__typename"] == "ExecutionStepStartEvent":
                return str(event["stepKey"])
        status = dagster.run(run_id)["status"]
        assert status not in ("SUCCESS", "FAILURE", "CANCELED"), f"run {run_id} ended: {status}"
        time.sleep(0.3)
    raise TimeoutError(f"run {run_id} started no step within {timeout:.0f} s")


def root_causes(dagster: Dagster, run_id: str) -> list[str]:
    """The error behind each failed step (what the UI shows under "caused by"), or the
    run's failure message when no step failed."""
    events = dagster.events(
        run_id,
        """... on ExecutionStepFailureEvent { error { message errorChain { error { message } } } }
        ... on RunFailureEvent { message }""",
    )
    out = []
    for event in events:
        if event["__typename"] == "ExecutionStepFailureEvent" and event.get("error"):
            chain = event["error"]["errorChain"]
            # The first error zdte raised, under Dagster's "Error occurred while executing".
            out.append((chain[0]["error"] if chain else event["error"])["message"].strip())
    if not out:
        out = [e["message"] for e in events if e["__typename"] == "RunFailureEvent"]
    return out


def runs_of(dagster: Dagster, job: str, partition: str) -> list[dict[str, Any]]:
    return dagster.runs(pipelineName=job, tags=[{"key": "dagster/partition", "value": partition}])


def wait_settled(
    dagster: Dagster, job: str, partition: str, timeout: float = 600
) -> list[dict[str, Any]]:
    """Runs of `job` for `partition` once none waits or runs any more and every failure that
    Dagster will retry has its finished retry: what the UI shows when the dust has settled."""
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = runs_of(dagster, job, partition)
        tags = {r["runId"]: {t["key"]: t["value"] for t in r["tags"]} for r in runs}
        finished = all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
        parents = {t.get("dagster/parent_run_id") for t in tags.values()}
        retry_pending = any(
            r["status"] == "FAILURE"
            and tags[r["runId"]].get("dagster/will_retry") == "true"
            and r["runId"] not in parents
            for r in runs
        )
        if runs and finished and not retry_pending:
            return runs
        time.sleep(3)
    raise TimeoutError(f"{job} {partition}: runs not settled after {timeout:.0f} s: {runs}")


def wait_idle(dagster: Dagster, timeout: float = 600) -> None:
    """Until no run is queued, starting or in progress (sensor runs included)."""
    deadline = time.monotonic() + timeout
    busy = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
    while dagster.runs(statuses=busy):
        assert time.monotonic() < deadline, f"runs still busy after {timeout:.0f} s"
        time.sleep(3)


def s3_client(cfg: Mapping[str, str]) -> Any:
    """A plain boto3 client with the stack's credentials (no zdte storage code in between),
    retrying like boto3's default so a service just restarted is waited for."""
    return stack.s3_client(cfg, attempts=5)


def prediction_key(cfg: Mapping[str, str], ticker: str, day: str) -> tuple[str, str]:
    """(bucket, key) of a day's prediction JSON under the stack's ZDTE_STORAGE_URL."""
    from urllib.parse import urlparse

    url = urlparse(cfg["ZDTE_STORAGE_URL"])
    prefix = url.path.strip("/")
    return url.netloc, f"{prefix}/predictions/{ticker}/{day}.json"


def refuse_postgres(cfg: Mapping[str, str], user: str, refuse: bool) -> None:
    """Make the host's Postgres refuse `user` (no new connection, open ones cut) or accept
    it again, as an outage of the instance's database looks to the stack."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(cfg["ZDTE_PG_ADMIN_URL"])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("ALTER ROLE {} CONNECTION LIMIT %s").format(sql.Identifier(user)),
            (0 if refuse else -1,),
        )
        if refuse:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (user,),
            )
    conn.close()


#: A drift configuration under which the feature-drift trigger always fires (PSI above 0), set
#: for one evening as an operator would in the launchpad, to see the sensor act.
FIRE_DRIFT = {"data_method": "psi", "psi_threshold": 0.0}
#: A short weekly study (the stack test checks the wiring, not the search).
STUDY_TRIALS = 6


def run_sessions(cfg: Mapping[str, str], ticker: str = "AAPL") -> dict[str, str]:
    """Drive the stack through E2E_DAYS as production does, through the webserver:

    the history backfill (bars, opens, then feature rows) as the UI's "Materialize" of a range;
    the drift sensor and the run watchdog started as the UI's toggle does; the Sunday study,
    then for each day the retrain ticked the session before at 16:45, the 09:30 morning and the
    16:30 evening, each from its schedule evaluated for that time and launched with the tick's
    tags. On the second evening the drift report runs with a trigger that fires, and the
    sensor (in the daemon) launches a re-optimization and the retrain after it before the
    next retrain tick. Returns run ids by step ("weekly", "retrain 2024-11-04", ...)."""
    from zdte_assets.features.rows import LOOKBACK

    dagster = Dagster(cfg)
    start = cfg["ZDTE_HISTORY_START"]
    last = previous_session(E2E_DAYS[0])
    runs: dict[str, str] = {}

    def done(label: str, run_id: str) -> None:
        status = dagster.wait_run(run_id)
        if status != "SUCCESS":
            raise AssertionError(f"{label}: {status}: {root_causes(dagster, run_id)}")
        runs[label] = run_id

    for assets, first, title in (
        ([f"{ticker}/daily_bar", f"{ticker}/session_open"], start, "history"),
        ([f"{ticker}/features"], calendar_next(start, LOOKBACK), "features"),
    ):
        backfill = dagster.backfill(assets, first, last, title)
        status = dagster.wait_backfill(backfill)
        if status != "COMPLETED_SUCCESS":
            raise AssertionError(f"backfill {title}: {status}")
        runs[f"backfill {title}"] = backfill

    for sensor in (f"{ticker}_drift_sensor", "run_watchdog"):
        dagster.start_sensor(sensor)

    sunday = next_sunday(previous_session(E2E_DAYS[0]))  # the study's tick before the week
    (weekly,) = dagster.schedule_tick(f"{ticker}_weekly_schedule", tick_time(sunday, 18, 0))
    done(
        "weekly",
        dagster.launch_request(
            weekly, ops={f"{ticker}__tuned_params": {"config": {"n_trials": STUDY_TRIALS}}}
        ),
    )
    sensor = f"{ticker}_drift_sensor"
    for i, day in enumerate(E2E_DAYS):
        if i == 0:
            # Before the first study there were no parameters, so Friday's 16:45 tick had
            # nothing to train with; the sensor retrains Monday's model once the study is in.
            done(f"retrain {day}", wait_sensor_run(dagster, sensor, "retrain-after-study", day))
        else:
            request = slot_request(dagster, ticker, "retrain", day)
            done(f"retrain {day}", dagster.launch_request(request))
        done(
            f"morning {day}", dagster.launch_request(slot_request(dagster, ticker, "morning", day))
        )
        evening = slot_request(dagster, ticker, "evening", day)
        if i == 1:
            config = {"ops": {f"{ticker}__drift_report": {"config": FIRE_DRIFT}}}
            done(f"evening {day}", dagster.launch_request(evening, **config))
            # The sensor's re-optimization of the week, then its retrain of the next session;
            # the next session's 16:45 tick, launched after it, finds that model.
            week = stack_week(day)
            done("sensor reoptimization", wait_sensor_run(dagster, sensor, "reoptimization", week))
            done(
                "sensor retrain-after-study",
                wait_sensor_run(dagster, sensor, "retrain-after-study", E2E_DAYS[i + 1]),
            )
        else:
            done(f"evening {day}", dagster.launch_request(evening))
    wait_idle(dagster)
    return runs


def stack_week(day: str) -> str:
    """The weekly partition (its Monday) of the session after `day`."""
    import datetime as dt

    from zdte_assets.core import calendar

    following = calendar.next_trading_day(dt.date.fromisoformat(day))
    return calendar.week_start(following).isoformat()


def calendar_next(day: str, sessions: int) -> str:
    import datetime as dt

    from zdte_assets.core import calendar

    return calendar.next_trading_day(dt.date.fromisoformat(day), sessions).isoformat()


def next_sunday(day: str) -> str:
    import datetime as dt

    d = dt.date.fromisoformat(day)
    return (d + dt.timedelta(days=(6 - d.weekday()) % 7)).isoformat()


def wait_sensor_run(
    dagster: Dagster, sensor: str, slot: str, partition: str, timeout: float = 600
) -> str:
    """The id of the run the sensor launched for `slot` (its `zdte/slot` tag) and `partition`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = dagster.runs(
            tags=[
                {"key": "dagster/sensor_name", "value": sensor},
                {"key": "zdte/slot", "value": slot},
                {"key": "dagster/partition", "value": partition},
            ]
        )
        if runs:
            return str(runs[0]["runId"])
        time.sleep(3)
    raise TimeoutError(f"{sensor} launched no {slot} run for {partition} within {timeout:.0f} s")


# ------------------------------------------------------------ logins through Caddy, and their cost

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class LoopbackHttps(http.client.HTTPSConnection):
    """HTTPS to Caddy on loopback from a chosen loopback source address (each one a different
    client for the gate), with the site's name as SNI; Caddy's internal CA is not trusted here."""

    def __init__(self, site: str, port: int, source: str, timeout: float = 60) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__(site, port, context=ctx, timeout=timeout)
        self.source = source

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout, (self.source, 0))
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Burst:
    statuses: Counter[int]
    cpu: float  # seconds, of the processes watched
    seconds: float


def login_burst(
    port: int,
    pids: list[int],
    site: str,
    source: str,
    n: int,
    credentials: Callable[[int], tuple[str, str] | None],
    timeout: float = 60,
) -> Burst:
    """`n` requests on one keep-alive connection, the i-th with `credentials(i)` as basic auth
    (none when None); their statuses and the CPU the processes `pids` spent meanwhile."""
    conn = LoopbackHttps(site, port, source, timeout)
    statuses: Counter[int] = Counter()
    cpu0 = sum(cpu_seconds(p) for p in pids)
    t0 = time.monotonic()
    for i in range(n):
        headers = {"Host": f"{site}:{port}"}
        pair = credentials(i)
        if pair is not None:
            token = base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        response.read()
        statuses[response.status] += 1
    seconds = time.monotonic() - t0
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    conn.close()
    return Burst(statuses, cpu, seconds)
