"""The code location as Dagster sees it: asset keys per ticker, NYSE partitions, checks, the
partition windows that make features and models causal, and storage without pickle."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import warnings
from pathlib import Path

import dagster as dg
import exchange_calendars as xc
import pytest

from zdte_assets.core import calendar
from zdte_assets.definitions import build_definitions
from zdte_assets.features.rows import LOOKBACK
from zdte_assets.model.walkforward import MAX_TRAIN_WINDOW
from zdte_assets.orchestration.jobs import (
    JOB_SLOTS,
    SESSION_ASSETS,
    SLOT_ASSETS,
    asset_key,
    job_name,
    sensor_name,
)
from zdte_assets.orchestration.partitions import MAX_SESSIONS_PER_WEEK
from zdte_assets_tests.conftest import Replayed

ASSETS = (
    "daily_bar",
    "session_open",
    "features",
    "tuned_params",
    "daily_model",
    "prediction",
    "prediction_outcome",
    "drift_report",
)
#: A moment after every partition these tests look at, so "does the partition exist yet" never
#: depends on the day the tests run.
LATER = dt.datetime(2025, 6, 30, tzinfo=calendar.NY)


def upstream_keys(
    defs: dg.Definitions, child: dg.AssetKey, parent: dg.AssetKey, partition: str
) -> list[dt.date]:
    """Partitions of `parent` that the asset graph feeds into `partition` of `child`."""
    result = defs.resolve_asset_graph().get_parent_partition_keys_for_child(
        partition, parent, child
    )
    assert result.required_but_nonexistent_subset.is_empty
    return sorted(dt.date.fromisoformat(k) for k in result.partitions_subset.get_partition_keys())


def test_module_defs_load_with_every_asset_of_the_default_ticker() -> None:
    from zdte_assets.definitions import defs

    keys = set(defs.resolve_all_asset_keys())
    assert {asset_key("AAPL", name) for name in ASSETS} <= keys
    # Jobs, schedules and the sensor resolve against the loaded assets.
    assert defs.resolve_job_def(job_name("AAPL", "morning")).partitions_def is not None
    assert defs.resolve_sensor_def(sensor_name("AAPL")).name == sensor_name("AAPL")


def test_two_tickers_from_the_environment_give_two_graphs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZDTE_TICKERS", "aapl, SPY")
    from_env = build_definitions()
    explicit = build_definitions(tickers=["AAPL", "SPY"])
    for defs in (from_env, explicit):
        keys = set(defs.resolve_all_asset_keys())
        assert keys == {asset_key(t, name) for t in ("AAPL", "SPY") for name in ASSETS}
        for t in ("AAPL", "SPY"):
            for slot in ("morning", "evening", "retrain", "weekly"):
                assert defs.resolve_job_def(job_name(t, slot)).name == job_name(t, slot)
            assert defs.resolve_sensor_def(sensor_name(t)).name == sensor_name(t)
        # Each ticker's features read that ticker's bars only.
        spy_features = defs.resolve_assets_def(asset_key("SPY", "features"))
        assert set(spy_features.keys_by_input_name.values()) == {
            asset_key("SPY", "daily_bar"),
            asset_key("SPY", "session_open"),
        }


def test_the_history_start_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    first = calendar.next_trading_day(dt.date(2024, 1, 1))
    monkeypatch.setenv("ZDTE_HISTORY_START", first.isoformat())
    days = build_definitions().resolve_assets_def(asset_key("AAPL", "daily_bar")).partitions_def
    assert days is not None and days.get_first_partition_key() == first.isoformat()
    monkeypatch.setenv("ZDTE_HISTORY_START", "2024-13-01")
    with pytest.raises(ValueError, match=r"^ZDTE_HISTORY_START='2024-13-01': expected a date"):
        build_definitions()


def test_trading_day_partitions_are_exactly_the_nyse_sessions() -> None:
    defs = build_definitions(tickers=["AAPL"])
    days = defs.resolve_job_def(job_name("AAPL", "evening")).partitions_def
    assert days is not None
    keys = set(days.get_partition_keys(current_time=LATER))

    assert "2024-07-05" in keys
    assert "2024-07-03" in keys  # an early close is still a session
    assert "2024-07-04" not in keys  # Independence Day
    assert "2024-12-25" not in keys  # Christmas
    assert not {"2024-07-06", "2024-07-07", "2024-12-28", "2024-12-29"} & keys  # weekends

    xnys = xc.get_calendar("XNYS")
    sessions = {ts.date().isoformat() for ts in xnys.sessions_in_range("2024-01-01", "2024-12-31")}
    year = {k for k in keys if k.startswith("2024-")}
    assert year == sessions
    assert len(year) == len(sessions) > 240


def test_weekly_partitions_start_on_mondays() -> None:
    defs = build_definitions(tickers=["AAPL"])
    weeks = defs.resolve_job_def(job_name("AAPL", "weekly")).partitions_def
    assert isinstance(weeks, dg.TimeWindowPartitionsDefinition)
    keys = weeks.get_partition_keys(current_time=LATER)
    assert len(keys) > 300
    for k in keys:
        window = weeks.time_window_for_partition_key(k)
        start = window.start.astimezone(calendar.NY)
        assert start.date().isoformat() == k
        assert start.weekday() == 0 and (start.hour, start.minute) == (0, 0)
        assert window.end - window.start == dt.timedelta(days=7)
    # Weeks with holidays are partitions too (the week of Christmas 2024 has four sessions).
    assert "2024-12-23" in keys


def test_daily_bar_carries_its_asset_checks() -> None:
    defs = build_definitions(tickers=["AAPL"])
    bar = defs.resolve_assets_def(asset_key("AAPL", "daily_bar"))
    assert {k.name for k in bar.check_keys} == {"ohlc_consistent", "overnight_gap", "not_stale"}
    assert {k.asset_key for k in bar.check_keys} == {asset_key("AAPL", "daily_bar")}


@pytest.mark.parametrize("day", ["2024-07-05", "2024-01-02", "2024-11-04", "2024-12-26"])
def test_features_read_exactly_the_lookback_sessions_before_their_day(day: str) -> None:
    defs = build_definitions(tickers=["AAPL"])
    t = dt.date.fromisoformat(day)
    bars = upstream_keys(defs, asset_key("AAPL", "features"), asset_key("AAPL", "daily_bar"), day)
    assert bars == [calendar.previous_trading_day(t, n) for n in range(LOOKBACK, 0, -1)]
    opens = upstream_keys(
        defs, asset_key("AAPL", "features"), asset_key("AAPL", "session_open"), day
    )
    assert opens == [t]


@pytest.mark.parametrize("day", ["2024-07-05", "2024-11-04", "2024-12-26"])
def test_daily_model_sees_only_partitions_before_its_day(day: str) -> None:
    defs = build_definitions(tickers=["AAPL"])
    t = dt.date.fromisoformat(day)
    model = asset_key("AAPL", "daily_model")
    for parent in ("features", "daily_bar"):
        days = upstream_keys(defs, model, asset_key("AAPL", parent), day)
        assert days, parent
        assert max(days) < t, parent
        assert max(days) == calendar.previous_trading_day(t)
        assert days == [calendar.previous_trading_day(t, n) for n in range(MAX_TRAIN_WINDOW, 0, -1)]


def test_replay_storage_holds_parquet_and_json_only(replayed: Replayed) -> None:
    root = Path(replayed.storage)
    files = [p for p in root.rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in files}
    assert suffixes == {".parquet", ".json"}, sorted(suffixes)
    for p in files:
        head = p.read_bytes()[:4]
        if p.suffix == ".parquet":
            assert head == b"PAR1", p
        else:
            json.loads(p.read_text())
    # Every asset of the graph left objects there, models included (as registry pointers).
    stored = {p.relative_to(root).parts[1] for p in files}
    assert set(ASSETS) <= stored


@pytest.mark.parametrize("day", ["2024-07-01", "2024-07-05", "2024-11-04", "2024-12-30"])
def test_daily_model_reads_the_studies_of_its_week_and_the_week_before(day: str) -> None:
    """The window is counted in sessions of the day's partitions: a week holds at most
    MAX_SESSIONS_PER_WEEK of them, so it always reaches into the previous week (after the short
    Christmas week, into the one before too)."""
    defs = build_definitions(tickers=["AAPL"])
    t = dt.date.fromisoformat(day)
    weeks = upstream_keys(
        defs, asset_key("AAPL", "daily_model"), asset_key("AAPL", "tuned_params"), day
    )
    own = calendar.week_start(t)
    assert weeks[-1] == own
    assert own - dt.timedelta(days=7) in weeks
    assert all(
        later - earlier == dt.timedelta(days=7) for earlier, later in itertools.pairwise(weeks)
    )
    assert weeks[0] == calendar.week_start(calendar.previous_trading_day(t, MAX_SESSIONS_PER_WEEK))


def test_every_job_resolves_without_a_backfill_policy_warning() -> None:
    """Each job's partitioned assets share one backfill policy, so Dagster resolves the jobs
    without its "varying BackfillPolicies" warning (nothing filters it)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions(tickers=["AAPL", "SPY"])
        jobs = [
            defs.resolve_job_def(job_name(t, slot)) for t in ("AAPL", "SPY") for slot in JOB_SLOTS
        ]
    assert len(jobs) == 2 * len(JOB_SLOTS)
    assert [str(w.message) for w in caught if "BackfillPolic" in str(w.message)] == []
    graph = defs.resolve_asset_graph()
    for ticker in ("AAPL", "SPY"):
        for slot, names in {**SLOT_ASSETS, "session": SESSION_ASSETS}.items():
            policies = {graph.get(asset_key(ticker, a)).backfill_policy for a in names}
            assert len(policies) == 1, (slot, policies)
