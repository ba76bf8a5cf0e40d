"""`zdte backfill` and `zdte run` as the desk's engineer uses them: separate processes, the
configured instance and a real S3 server as ``ZDTE_STORAGE_URL``, checked with boto3 and
Dagster's instance API rather than with zdte's own readers.

Marked `e2e`: each command is a fresh process that imports Dagster and trains or studies, so the
file takes minutes (`.ci/run` runs it).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from zdte_assets.core import calendar
from zdte_assets.trading.predictions import json_key, outcome_json_key, table_key
from zdte_assets_tests.conftest import ZDTE_ENV, S3Bucket

pytestmark = pytest.mark.e2e

TICKER = "AAPL"
#: The backfilled session, and the next one, which `zdte run` produces slot by slot.
FIRST = dt.date(2024, 11, 5)
NEXT = calendar.next_trading_day(FIRST)
TRIALS = "4"


def zdte(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zdte_assets.apps.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


@pytest.fixture
def desk_env(s3_bucket: S3Bucket, tmp_path: Path) -> dict[str, str]:
    """A production-like environment: an instance of its own, storage in the S3 bucket (the
    fixture has pointed the AWS variables at the server)."""
    env = {k: v for k, v in os.environ.items() if k not in ZDTE_ENV}
    env.update(
        ZDTE_HOME=str(tmp_path / "home"),
        DAGSTER_HOME=str(tmp_path / "dagster"),
        ZDTE_STORAGE_URL=s3_bucket.url("zdte"),
        COLUMNS="200",
    )
    return env


def run_lines(stdout: str) -> list[list[str]]:
    """The one line per run: job, partition, status, seconds, 's', 'run', run id."""
    return [line.split() for line in stdout.splitlines() if line.strip()]


def test_backfill_then_each_slot_writes_into_the_bucket_and_the_instance(
    s3_bucket: S3Bucket, desk_env: dict[str, str]
) -> None:
    import dagster as dg

    filled = zdte(
        desk_env,
        *("backfill", "--ticker", TICKER, "--start", str(FIRST), "--end", str(FIRST)),
        *("--trials", TRIALS),
    )
    assert filled.returncode == 0, filled.stdout + filled.stderr
    jobs = [line[0] for line in run_lines(filled.stdout)]
    # History first, then the week's study, the day's model, the morning and the evening.
    assert jobs[-4:] == [f"{TICKER}_{slot}" for slot in ("weekly", "retrain", "morning", "evening")]
    assert all(line[2] == "SUCCESS" for line in run_lines(filled.stdout))

    # The next session slot by slot, as the schedules would launch it: retrain fires the day
    # before (the model of NEXT), then the morning and the evening of NEXT.
    ran: dict[str, str] = {}
    for slot, day in (("retrain", FIRST), ("morning", NEXT), ("evening", NEXT)):
        done = zdte(desk_env, "run", slot, "--ticker", TICKER, "--date", str(day))
        assert done.returncode == 0, done.stdout + done.stderr
        (line,) = run_lines(done.stdout)  # one line per run, nothing else on stdout
        assert line[:3] == [f"{TICKER}_{slot}", str(NEXT), "SUCCESS"], line
        assert "1 runs, 1 succeeded, 0 failed" in done.stderr
        ran[slot] = line[-1]

    # The bucket holds the prediction's JSON and the table with a row for NEXT, and the outcome.
    client = s3_bucket.client()

    def get(key: str) -> bytes:
        body: bytes = client.get_object(Bucket=s3_bucket.name, Key=f"zdte/{key}")["Body"].read()
        return body

    published = json.loads(get(json_key(TICKER, NEXT)))
    assert published["date"] == str(NEXT) and published["ticker"] == TICKER
    table = pl.read_parquet(io.BytesIO(get(table_key(TICKER))))
    assert set(table["date"].to_list()) >= {FIRST, NEXT}
    outcome = json.loads(get(outcome_json_key(TICKER, NEXT)))
    assert outcome["date"] == str(NEXT)

    # `zdte prediction` reads the same record from the configured store.
    shown = zdte(desk_env, "prediction", "--ticker", TICKER, "--date", str(NEXT))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == published

    # The instance holds the runs, tagged as the schedules tag them, and launched from here.
    os.environ["DAGSTER_HOME"] = desk_env["DAGSTER_HOME"]
    with dg.DagsterInstance.get() as instance:
        for slot, run_id in ran.items():
            (run,) = [r for r in instance.get_runs() if r.run_id.startswith(run_id)]
            assert run.status == dg.DagsterRunStatus.SUCCESS
            assert run.job_name == f"{TICKER}_{slot}"
            assert run.tags["dagster/partition"] == str(NEXT)
            assert run.tags["zdte/slot"] == slot
            assert run.tags["zdte/launched_by"] == "cli"


def test_a_run_that_cannot_happen_says_why_in_one_line(
    s3_bucket: S3Bucket, desk_env: dict[str, str]
) -> None:
    # No session that day: nothing is launched (exit 2, the one-line error).
    saturday = dt.date(2024, 11, 9)
    skipped = zdte(desk_env, "run", "morning", "--ticker", TICKER, "--date", str(saturday))
    assert skipped.returncode == 2, skipped.stdout + skipped.stderr
    assert skipped.stderr.strip().count("\n") == 0
    assert "not an NYSE trading day" in skipped.stderr

    # A morning in an empty store: the run fails in the instance, and its line says which
    # values are missing (exit 1), without Dagster's traceback on the console.
    failed = zdte(desk_env, "run", "morning", "--ticker", TICKER, "--date", str(NEXT))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (line,) = run_lines(failed.stdout)
    assert line[:3] == [f"{TICKER}_morning", str(NEXT), "FAILURE"]
    assert "need daily_bar for the" in failed.stdout and "missing" in failed.stdout
    assert "Traceback" not in failed.stdout + failed.stderr
    assert (
        not s3_bucket.client()
        .list_objects_v2(Bucket=s3_bucket.name, Prefix=f"zdte/{json_key(TICKER, NEXT)}")
        .get("Contents")
    )
