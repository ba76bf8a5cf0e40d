"""What the Dagster UI shows of the replayed week: per-partition numbers that equal the stored
records (rounded: six significant digits, prices to the cent, never -0.0), the whole decision of
each prediction without a recommendation on NO_TRADE days, check results that name their
trading day, and runs that say which schedule or sensor launched them."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import dagster as dg
import pytest

from zdte_assets.apps.replay import SCHEDULE_TAG, SENSOR_TAG
from zdte_assets.core import calendar
from zdte_assets.core.records import ModelPointer, Outcome, Prediction
from zdte_assets.monitoring.report import load_drift_report
from zdte_assets.orchestration.jobs import asset_key, schedule_name, sensor_name
from zdte_assets.orchestration.metadata import number, price
from zdte_assets.storage import keys
from zdte_assets.storage import store as storage
from zdte_assets.trading.predictions import outcome_json_key, read_prediction
from zdte_assets_tests.conftest import REPLAY_END, REPLAY_START, Replayed

TICKER = "AAPL"
DAYS = calendar.trading_days(dt.date.fromisoformat(REPLAY_START), dt.date.fromisoformat(REPLAY_END))


def materialization_metadata(asset: str, day: dt.date, replayed: Replayed) -> dict[str, Any]:
    """The metadata values of the newest materialization of `asset` for partition `day` made by
    the `replayed` fixture's runs (other tests of the session write the same partitions into the
    same instance)."""
    instance = dg.DagsterInstance.get()
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=asset_key(TICKER, asset), asset_partitions=[day.isoformat()]
        ),
        limit=100,
    ).records
    replay_id = str(replayed.report["replay_id"])
    mine = [
        r
        for r in records
        if (run := instance.get_run_by_id(r.run_id)) is not None
        and run.tags.get("zdte/replay") == replay_id
    ]
    assert mine, f"no materialization of {asset} for {day} by replay {replay_id}"
    materialization = mine[0].asset_materialization
    assert materialization is not None
    return {k: v.value for k, v in materialization.metadata.items()}


def assert_rounded(md: dict[str, Any], expected: dict[str, float | None]) -> None:
    """Each expected figure is shown as a float equal to the record's value rounded, with at
    most six significant digits and no negative zero; an undefined one is not shown."""
    for name, value in expected.items():
        if value is None or not math.isfinite(value):
            assert name not in md, name
            continue
        shown = md[name]
        assert isinstance(shown, float), (name, shown)
        assert shown == value or math.isclose(shown, value, rel_tol=5e-6, abs_tol=5e-3), name
        assert len(f"{abs(shown):.15g}".replace(".", "").lstrip("0").rstrip("0")) <= 6, shown
        assert not (shown == 0 and math.copysign(1.0, shown) < 0), name


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_prediction_metadata_is_the_stored_decision_rounded(
    replayed: Replayed, day: dt.date
) -> None:
    record: Prediction = read_prediction(TICKER, day, storage_url=replayed.storage)
    md = materialization_metadata("prediction", day, replayed)
    d = record.decision
    assert md["action"] == record.action
    assert md["reason_code"] == d.reason_code
    assert md["gate_open"] is record.gate.open
    assert md["gate_reason"] == record.gate.reason
    assert md["contracts"] == d.contracts
    assert_rounded(
        md,
        {
            "predicted_return": number(record.predicted_return),
            "p_up": number(record.p_up),
            "interval_low": price(record.interval.low),
            "interval_high": price(record.interval.high),
            "open": price(record.open),
            "expected_value_usd": price(d.expected_value_usd),
        },
    )
    # The candidate's figures are a recommendation only on a trading day.
    shown = "" if record.action != "NO_TRADE" else "considered_"
    hidden = "considered_" if shown == "" else ""
    assert_rounded(
        md,
        {
            f"{shown}strike": price(d.strike),
            f"{shown}premium": price(d.premium),
            f"{shown}expected_value": number(d.expected_value),
        },
    )
    assert not {f"{hidden}strike", f"{hidden}premium", f"{hidden}expected_value"} & set(md)
    if d.option is not None:
        assert md[f"{shown}option"] == d.option


def test_the_replayed_week_shows_both_kinds_of_day_or_says_which_it_lacks(
    replayed: Replayed,
) -> None:
    """The NO_TRADE rule above is exercised: the week has a NO_TRADE day with a priced
    candidate (whose figures must then be `considered_*`)."""
    records = [read_prediction(TICKER, d, storage_url=replayed.storage) for d in DAYS]
    no_trade = [r for r in records if r.action == "NO_TRADE" and r.decision.strike is not None]
    assert no_trade, [r.action for r in records]
    md = materialization_metadata("prediction", no_trade[0].date, replayed)
    assert "strike" not in md and md["considered_strike"] == price(no_trade[0].decision.strike)


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_outcome_metadata_is_the_stored_outcome_rounded(replayed: Replayed, day: dt.date) -> None:
    store = storage.store_from_url(replayed.storage)
    outcome = Outcome.from_json(store.read_bytes(outcome_json_key(TICKER, day)))
    md = materialization_metadata("prediction_outcome", day, replayed)
    assert_rounded(
        md,
        {
            "realized_return": number(outcome.realized_return),
            "error": number(outcome.error),
            "naive_error": number(outcome.naive_error),
            "pnl_usd": price(outcome.pnl_usd),
            "close": price(outcome.close),
        },
    )
    assert md["action"] == outcome.action


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_drift_report_metadata_is_the_stored_report_rounded(
    replayed: Replayed, day: dt.date
) -> None:
    report = load_drift_report(storage.store_from_url(replayed.storage), TICKER, day)
    md = materialization_metadata("drift_report", day, replayed)
    perf, target = report.performance, report.target_drift
    assert_rounded(
        md,
        {
            "perf_ratio": number(perf.ratio),
            "perf_ma_rmse": number(perf.ma_rmse),
            "perf_rmse_pvalue": number(perf.rmse_pvalue),
            "perf_accuracy": number(perf.accuracy),
            "perf_accuracy_pvalue": number(perf.accuracy_pvalue),
            "target_ks_stat": number(target.ks_stat),
            "target_ks_pvalue": number(target.ks_pvalue),
            "target_psi": number(target.psi),
            **{f"trigger_{t.name}_value": number(t.value) for t in report.triggers},
        },
    )
    assert md["n_features_drifted"] == report.n_features_drifted
    # The report computes these from the first day on: they are plotted, not blank.
    assert {"target_ks_pvalue", "target_psi"} <= set(md)


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_daily_model_metadata_is_the_pointer_rounded(replayed: Replayed, day: dt.date) -> None:
    store = storage.store_from_url(replayed.storage)
    raw = store.read_bytes(keys.asset_value_key(TICKER, "daily_model", day.isoformat(), "json"))
    pointer = ModelPointer.model_validate(json.loads(raw))
    md = materialization_metadata("daily_model", day, replayed)
    assert_rounded(md, {"sigma": number(pointer.sigma), "shrinkage": number(pointer.shrinkage)})
    assert md["model_version"] == pointer.model_version
    # The fit's inner validation figures, as plain floats.
    assert isinstance(md["inner_rmse"], float) and md["inner_rmse"] > 0


def check_evaluations(replay_id: str) -> list[tuple[dg.DagsterRun, Any]]:
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs(dg.RunsFilter(tags={"zdte/replay": replay_id}))
    out = []
    for run in runs:
        for entry in instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ):
            assert entry.dagster_event is not None
            out.append((run, entry.dagster_event.asset_check_evaluation_data))
    return out


def test_every_check_result_names_its_trading_day_and_shows_no_blank(replayed: Replayed) -> None:
    found = check_evaluations(str(replayed.report["replay_id"]))
    by_day: dict[str, set[str]] = {}
    for run, evaluation in found:
        md = {k: v.value for k, v in evaluation.metadata.items()}
        # A one-session run's partition, or the last session of a range run.
        day = run.tags.get("dagster/partition") or run.tags["dagster/asset_partition_range_end"]
        assert md["trading_day"] == day
        assert all(v is not None and v != "" for v in md.values()), md
        for name, value in md.items():
            if isinstance(value, float):
                assert value == number(value), (name, value)
        by_day.setdefault(day, set()).add(evaluation.check_name)
    # Every replayed session's bar was checked, each by all three checks.
    for session in DAYS:
        assert by_day[session.isoformat()] == {"ohlc_consistent", "overnight_gap", "not_stale"}


def test_replayed_runs_say_which_schedule_or_sensor_launched_them(replayed: Replayed) -> None:
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs(dg.RunsFilter(tags={"zdte/replay": str(replayed.report["replay_id"])}))
    slots: dict[str, int] = {}
    for run in runs:
        slot = run.tags.get("zdte/slot")
        if slot is None:  # the history warm-up, which no schedule launches
            assert SCHEDULE_TAG not in run.tags and SENSOR_TAG not in run.tags
            continue
        slots[slot] = slots.get(slot, 0) + 1
        if slot == "reoptimization":
            assert run.tags[SENSOR_TAG] == sensor_name(TICKER)
            assert SCHEDULE_TAG not in run.tags
        else:
            # The session run stands in for the 09:30 schedule (and the retrain and evening).
            launcher = "morning" if slot == "session" else slot
            assert run.tags[SCHEDULE_TAG] == schedule_name(TICKER, launcher)
            assert SENSOR_TAG not in run.tags
    assert slots["session"] == len(DAYS)
    assert slots["weekly"] >= 1
    lifecycle: Any = replayed.report["lifecycle"]
    assert slots.get("reoptimization", 0) == lifecycle["reoptimizations_triggered"]
