"""What the Dagster UI shows after a replay, read through the webserver's GraphQL API (what the
UI itself queries): the schedules' and the sensor's tick history at the simulated times, each
tick naming the runs it launched, and the runs naming the schedule or sensor that launched
them."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zdte_assets.apps.cli import ui_workspace
from zdte_assets.core import calendar
from zdte_assets.orchestration.jobs import schedule_name, sensor_name
from zdte_assets.orchestration.ticks import LOCATION, REPOSITORY
from zdte_assets_tests.conftest import Replayed
from zdte_assets_tests.services import free_ports

TICKER = "AAPL"


QUERY = """
query Automation($repo: String!, $location: String!, $sensor: String!, $replay: String!) {
  sensorOrError(sensorSelector: {repositoryLocationName: $location, repositoryName: $repo,
                                 sensorName: $sensor}) {
    __typename
    ... on Sensor { sensorState { ticks(afterTimestamp: 1, limit: 1000) {
      status timestamp runIds cursor skipReason } } }
  }
  schedulesOrError(repositorySelector: {repositoryLocationName: $location,
                                        repositoryName: $repo}) {
    __typename
    ... on Schedules { results { name scheduleState { ticks(afterTimestamp: 1, limit: 1000) {
      status timestamp runIds } } } }
  }
  runsOrError(filter: {tags: [{key: "zdte/replay", value: $replay}]}) {
    __typename
    ... on Runs { results { runId jobName tags { key value } } }
  }
}
"""


@pytest.fixture(scope="module")
def webserver(replayed: Replayed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dagster-webserver` on the instance as the replay left it (the session's own instance
    also holds other tests' replays of the same days), loading the code location as `zdte ui`
    does; its base URL."""
    root = tmp_path_factory.mktemp("webserver")
    (root / "workspace.yaml").write_text(ui_workspace())
    (port,) = free_ports(1)
    env = dict(os.environ, DAGSTER_HOME=str(replayed.instance_home))
    log = (root / "webserver.log").open("w")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "dagster_webserver", "-w", str(root / "workspace.yaml")),
            *("-h", "127.0.0.1", "-p", str(port)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dagster-webserver did not start; see {root / 'webserver.log'}")
                time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def graphql(url: str, variables: dict[str, str]) -> dict[str, Any]:
    body = json.dumps({"query": QUERY, "variables": variables}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
    assert "errors" not in answer, answer.get("errors")
    return answer["data"]


def ny_day(timestamp: float) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp, calendar.NY).date()


def test_the_ui_shows_the_replays_ticks_and_who_launched_each_run(
    replayed: Replayed, webserver: str
) -> None:
    data = graphql(
        webserver,
        {
            "repo": REPOSITORY,
            "location": LOCATION,
            "sensor": sensor_name(TICKER),
            "replay": str(replayed.report["replay_id"]),
        },
    )
    days = calendar.trading_days(
        dt.date.fromisoformat(str(replayed.report["start"])),
        dt.date.fromisoformat(str(replayed.report["end"])),
    )
    runs = {r["runId"]: r for r in data["runsOrError"]["results"]}
    assert runs, data["runsOrError"]

    # The sensor ticked once per replayed evening, at that day's simulated time, with its cursor.
    sensor_ticks = data["sensorOrError"]["sensorState"]["ticks"]
    assert sorted(ny_day(t["timestamp"]) for t in sensor_ticks) == days
    for tick in sensor_ticks:
        assert json.loads(tick["cursor"])["drift_id"] > 0
        assert set(tick["runIds"]) <= runs.keys()
        assert (tick["status"] == "SUCCESS") == bool(tick["runIds"])
        assert tick["status"] == "SUCCESS" or tick["skipReason"]

    # Each slot's schedule ticked on each replayed session, naming the run that did its work;
    # the weekly one once per replayed week.
    schedules = {
        s["name"]: s["scheduleState"]["ticks"] for s in data["schedulesOrError"]["results"]
    }
    for slot in ("morning", "evening"):
        ticks = schedules[schedule_name(TICKER, slot)]
        assert sorted(ny_day(t["timestamp"]) for t in ticks) == days
        assert all(t["status"] == "SUCCESS" and set(t["runIds"]) <= runs.keys() for t in ticks)
    weeks = {calendar.week_start(d) for d in days}
    assert len(schedules[schedule_name(TICKER, "weekly")]) == len(weeks)

    # Every run a tick launched carries the name of that schedule or sensor, as the UI's
    # "launched by" reads it.
    launched_by: dict[str, set[str]] = {}
    for name, ticks in [*schedules.items(), (sensor_name(TICKER), sensor_ticks)]:
        for tick in ticks:
            for run_id in tick["runIds"]:
                launched_by.setdefault(run_id, set()).add(name)
    assert launched_by
    for run_id, names in launched_by.items():
        tags = {t["key"]: t["value"] for t in runs[run_id]["tags"]}
        shown = {tags.get("dagster/schedule_name"), tags.get("dagster/sensor_name")} - {None}
        assert shown and shown <= names, (runs[run_id]["jobName"], tags, names)
