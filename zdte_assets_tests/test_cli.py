"""The `zdte` command line as a user runs it: a separate process, its exit code and its output."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zdte_assets.trading import predictions
from zdte_assets_tests.conftest import ZDTE_ENV, Replayed

DAY = dt.date(2024, 11, 8)
#: A session after the replayed week: nothing was predicted for it.
NOT_PREDICTED = dt.date(2024, 11, 11)
#: The console script the package installs next to the interpreter.
ZDTE_SCRIPT = Path(sys.executable).parent / "zdte"


def zdte(*args: str, home: Path, script: bool = False) -> subprocess.CompletedProcess[str]:
    """`python -m zdte_assets.apps.cli ARGS` (or the installed `zdte` script) with its own home and
    a wide terminal for tables."""
    env = {k: v for k, v in os.environ.items() if k not in ZDTE_ENV}
    env.update(
        ZDTE_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        COLUMNS="200",
        PYTHONWARNINGS="ignore",
    )
    command = [str(ZDTE_SCRIPT)] if script else [sys.executable, "-m", "zdte_assets.apps.cli"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_prediction_prints_the_stored_record_as_json(replayed: Replayed, tmp_path: Path) -> None:
    stored = predictions.read_prediction("AAPL", DAY, storage_url=replayed.storage).model_dump(
        mode="json"
    )
    proc = zdte(
        "prediction",
        "--ticker",
        "aapl",
        "--date",
        DAY.isoformat(),
        "--storage",
        replayed.storage,
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == stored
    assert "Traceback" not in proc.stderr


def test_prediction_table_shows_the_action(replayed: Replayed, tmp_path: Path) -> None:
    stored = predictions.read_prediction("AAPL", DAY, storage_url=replayed.storage).model_dump(
        mode="json"
    )
    proc = zdte(
        "prediction",
        "--ticker",
        "AAPL",
        "--date",
        DAY.isoformat(),
        "--storage",
        replayed.storage,
        "--table",
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"AAPL {DAY.isoformat()}: {stored['action']}" in proc.stdout
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in proc.stdout.splitlines()
        if line.count("│") == 3
    }
    assert rows["action"] == stored["action"]
    assert rows["open"] == f"{stored['open']:.2f}"
    assert rows["P(close > open)"] == f"{stored['p_up']:.1%}"
    assert rows["model"].startswith(f"version {stored['model']['version']},")
    assert not proc.stdout.lstrip().startswith("{")
    if stored["action"] == "NO_TRADE":
        # What was priced is shown as weighed, never in the rows a trade fills in.
        assert rows["option"] == "none: no trade"
        assert "premium / contracts" not in rows
    else:
        assert rows["option"].startswith(stored["decision"]["option"])
        assert "weighed and not bought" not in rows


def test_prediction_for_a_day_without_one_exits_1(replayed: Replayed, tmp_path: Path) -> None:
    proc = zdte(
        "prediction",
        "--ticker",
        "AAPL",
        "--date",
        NOT_PREDICTED.isoformat(),
        "--storage",
        replayed.storage,
        home=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    line = one_line(proc.stderr)
    assert line.startswith("zdte: no prediction for AAPL on 2024-11-11")
    assert "Traceback" not in proc.stderr


def test_prediction_after_a_replay_needs_no_flag(replayed: Replayed) -> None:
    # What a newcomer types after the demo: no --storage, no ZDTE_STORAGE_URL. The replay noted
    # where it wrote under ZDTE_HOME, and the reader looks there.
    stored = predictions.read_prediction("AAPL", DAY, storage_url=replayed.storage)
    proc = zdte(
        "prediction", "--ticker", "AAPL", "--date", DAY.isoformat(), home=replayed.note_home
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(stored.to_json())

    # A day the replay did not cover: one line naming the replay's range and the flag to use.
    missing = zdte(
        "prediction",
        "--ticker",
        "AAPL",
        "--date",
        NOT_PREDICTED.isoformat(),
        home=replayed.note_home,
    )
    assert missing.returncode == 1
    line = one_line(missing.stderr)
    assert str(replayed.report["start"]) in line and str(replayed.report["end"]) in line
    assert "--storage" in line

    # A fresh home knows of no replay: the message is the plain one.
    elsewhere = replayed.note_home.parent / "no-replay-home"
    alone = zdte("prediction", "--ticker", "AAPL", "--date", DAY.isoformat(), home=elsewhere)
    assert alone.returncode == 1
    assert "last replay" not in one_line(alone.stderr)


def test_help_lists_the_commands(tmp_path: Path) -> None:
    assert ZDTE_SCRIPT.is_file(), "the zdte console script is not installed"
    proc = zdte("--help", home=tmp_path, script=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: zdte")
    for command in ("demo", "replay", "run", "backfill", "prediction", "ui", "mlflow-ui"):
        assert command in proc.stdout
    sub = zdte("prediction", "--help", home=tmp_path)
    assert sub.returncode == 0, sub.stderr
    for flag in ("--ticker", "--date", "--table", "--storage"):
        assert flag in sub.stdout


@pytest.mark.parametrize("script", [False, True], ids=["python-m", "script"])
def test_a_known_error_is_one_line_however_the_cli_is_started(tmp_path: Path, script: bool) -> None:
    """Under `python -m` the CLI module is `__main__`: errors are matched by class, so its own
    usage errors are still known errors there."""
    proc = zdte(
        "prediction", "--ticker", "AAPL", "--date", "2024-13-01", home=tmp_path, script=script
    )
    assert proc.returncode == 2, proc.stderr
    assert one_line(proc.stderr) == "zdte: --date '2024-13-01' is not a date (YYYY-MM-DD)"


def test_known_errors_are_the_domain_failures_not_bugs() -> None:
    from zdte_assets.apps.backup import BackupError
    from zdte_assets.apps.replay import ReplayError
    from zdte_assets.apps.stack import StackError
    from zdte_assets.core.calendar import CalendarError
    from zdte_assets.core.errors import KNOWN_ERRORS, UsageError, is_known_error
    from zdte_assets.data.market_data import MarketDataError
    from zdte_assets.data.validation import DataValidationError
    from zdte_assets.model.lifecycle import MissingHistoryError
    from zdte_assets.model.params import InsufficientHistoryError
    from zdte_assets.orchestration.tracking import TrackingError
    from zdte_assets.storage.store import ObjectNotFound, StorageError

    known = (
        UsageError,
        ReplayError,
        BackupError,
        StackError,
        CalendarError,
        MarketDataError,
        DataValidationError,
        MissingHistoryError,
        InsufficientHistoryError,
        TrackingError,
        StorageError,
        ObjectNotFound,
        FileNotFoundError,
    )
    assert all(issubclass(cls, KNOWN_ERRORS) for cls in known)
    assert is_known_error(UsageError("x")) and is_known_error(FileNotFoundError("x"))
    assert not any(is_known_error(e) for e in (ValueError("x"), KeyError("x"), TypeError("x")))


def test_a_replay_into_unreachable_configured_stores_writes_nothing(tmp_path: Path) -> None:
    from zdte_assets_tests.services import free_ports

    (port,) = free_ports(1)  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k not in ZDTE_ENV}
    env.update(ZDTE_HOME=str(tmp_path), MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "zdte_assets.apps.cli", "replay", "--ticker", "AAPL"),
            *("--start", "2024-11-04", "--end", "2024-11-08", "--output", str(out)),
            "--use-configured-stores",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert f"MLflow at http://127.0.0.1:{port} is not reachable" in line
    assert "nothing was written" in line
    assert not out.exists() and not (tmp_path / "dagster").exists()


def test_a_replay_never_writes_into_the_configured_stores_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zdte_assets.apps import cli

    production = tmp_path / "production-dagster"
    monkeypatch.setenv("ZDTE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(production))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.production:5000")
    monkeypatch.setenv("ZDTE_OPTUNA_STORAGE", "postgresql+psycopg2://u:p@db/optuna")
    cli.isolate_replay()
    home = (tmp_path / "home").resolve()
    assert os.environ["DAGSTER_HOME"] == str(home / "dagster")
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{home / 'mlflow.db'}"
    assert "ZDTE_OPTUNA_STORAGE" not in os.environ
    said = capsys.readouterr().err
    assert "DAGSTER_HOME, MLFLOW_TRACKING_URI, ZDTE_OPTUNA_STORAGE" in said
    assert "--use-configured-stores" in said
