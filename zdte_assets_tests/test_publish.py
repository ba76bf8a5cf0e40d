"""Outcomes follow the platform's conventions, and concurrent publishers lose no day.

Records are derived from one prediction as the previous version published it
(data/prediction_v2_previous.json), so nothing here needs the replay.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from zdte_assets.core.records import Prediction
from zdte_assets.evaluation import metrics
from zdte_assets.storage import store as storage
from zdte_assets.trading import predictions

PREVIOUS_LAYOUT = Path(__file__).resolve().parent / "data" / "prediction_v2_previous.json"


def base() -> dict[str, Any]:
    return dict(json.loads(PREVIOUS_LAYOUT.read_text()))


def with_forecast(predicted_return: float) -> Prediction:
    """The stored prediction with another point forecast (what direction and error depend on)."""
    data = base()
    data["predicted_return"] = predicted_return
    data["distribution"]["mu"] = predicted_return
    data["predicted_close"] = data["open"] * math.exp(predicted_return)
    return Prediction.from_json(data)


def on_day(day: dt.date) -> Prediction:
    data = base()
    data["date"] = day.isoformat()
    return Prediction.from_json(data)


# --- conventions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("forecast", [0.004, -0.004])
def test_a_flat_day_is_a_miss_for_a_call_and_for_a_put(forecast: float) -> None:
    record = with_forecast(forecast)
    outcome = predictions.make_outcome(record, close=record.open, prev_close=None)
    assert outcome.realized_return == 0.0
    assert outcome.direction_hit is False
    assert outcome.up is False
    assert metrics.directional_accuracy([0.0], [forecast]) == 0.0


def test_a_zero_forecast_is_no_call() -> None:
    record = with_forecast(0.0)
    for close in (record.open * 1.01, record.open * 0.99, record.open):
        assert predictions.make_outcome(record, close=close, prev_close=None).direction_hit is None
    assert math.isnan(metrics.directional_accuracy([0.01, -0.01], [0.0, 0.0]))


@pytest.mark.parametrize(("forecast", "move"), [(0.004, 1.01), (0.004, 0.99), (-0.004, 0.99)])
def test_direction_hit_and_error_agree_with_evaluation(forecast: float, move: float) -> None:
    record = with_forecast(forecast)
    close = record.open * move
    outcome = predictions.make_outcome(record, close=close, prev_close=None)
    realized = math.log(move)
    hits = metrics.directional_hits(np.array([realized]), np.array([forecast]))
    assert outcome.direction_hit is bool(hits[0])
    # One sign: error = realized - predicted, the sign of evaluation's bias.
    assert outcome.error == pytest.approx(realized - forecast)
    bias = metrics.forecast_metrics([realized], [forecast])["bias"]
    assert outcome.error == pytest.approx(bias)
    assert outcome.naive_error == pytest.approx(realized)


def test_pnl_of_the_stored_trade_is_the_payoff_less_the_cost() -> None:
    record = Prediction.from_json(base())
    dec = record.decision
    assert record.action == "CALL" and dec.strike is not None and dec.cost_per_share is not None
    shares = dec.contracts * dec.config.contract_multiplier
    close = dec.strike + 2.0
    outcome = predictions.make_outcome(record, close=close, prev_close=None)
    assert outcome.payoff_per_share == pytest.approx(2.0)
    assert outcome.pnl_usd == pytest.approx((2.0 - dec.cost_per_share) * shares)
    expired = predictions.make_outcome(record, close=dec.strike - 1.0, prev_close=None)
    assert expired.pnl_usd == pytest.approx(-dec.cost_usd)


# --- concurrent publishers --------------------------------------------------------------------------

DAYS = [dt.date(2016, 6, 6) + dt.timedelta(days=i) for i in range(24)]


def _publish_days(root: str, days: list[str], barrier: Any = None) -> None:
    store = storage.LocalStore(root)
    if barrier is not None:
        barrier.wait()
    for day in days:
        record = on_day(dt.date.fromisoformat(day))
        predictions.publish(store, record)
        predictions.publish_outcome(
            store, predictions.make_outcome(record, close=record.open * 1.01, prev_close=None)
        )


def _check_tables(root: Path) -> None:
    table = pl.read_parquet(root / "predictions" / "SPY.parquet")
    assert table["date"].to_list() == DAYS
    outcomes = pl.read_parquet(root / "outcomes" / "SPY.parquet")
    assert outcomes["date"].to_list() == DAYS


def test_threads_publishing_at_once_lose_no_day(tmp_path: Path) -> None:
    workers = 6
    barrier = threading.Barrier(workers)
    chunks = [[d.isoformat() for d in DAYS[i::workers]] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        for done in [pool.submit(_publish_days, str(tmp_path), c, barrier) for c in chunks]:
            done.result()
    _check_tables(tmp_path)


def test_processes_publishing_at_once_lose_no_day(tmp_path: Path) -> None:
    workers = 4
    ctx = multiprocessing.get_context("spawn")
    chunks = [[d.isoformat() for d in DAYS[i::workers]] for i in range(workers)]
    with ctx.Manager() as manager:
        barrier = manager.Barrier(workers)
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            for done in [pool.submit(_publish_days, str(tmp_path), c, barrier) for c in chunks]:
                done.result()
    _check_tables(tmp_path)


def test_a_stale_table_written_last_is_repaired_by_its_own_writer(tmp_path: Path) -> None:
    # The interleaving the rebuild guards against, forced: another publisher's day file lands
    # between this publisher's build and its table write.
    store = storage.LocalStore(tmp_path)
    first, second = on_day(DAYS[0]), on_day(DAYS[1])
    predictions.publish(store, first)
    real_write = storage.write_parquet
    calls = {"n": 0}

    def racing_write(s: storage.Store, key: str, df: pl.DataFrame) -> None:
        real_write(s, key, df)
        if calls["n"] == 0:
            calls["n"] += 1
            store.write_bytes(predictions.json_key("SPY", second.date), second.to_json())

    try:
        storage.write_parquet = racing_write  # type: ignore[assignment]
        predictions.publish(store, first.model_copy(update={"reason": "republished"}))
    finally:
        storage.write_parquet = real_write  # type: ignore[assignment]
    table = pl.read_parquet(tmp_path / "predictions" / "SPY.parquet")
    assert table["date"].to_list() == [DAYS[0], DAYS[1]]
    assert table["reason"].to_list()[0] == "republished"


def test_outcome_rows_of_an_earlier_table_without_day_files_are_kept(tmp_path: Path) -> None:
    store = storage.LocalStore(tmp_path)
    old = predictions.make_outcome(on_day(DAYS[0]), close=100.0, prev_close=None)
    storage.write_parquet(store, predictions.outcomes_key("SPY"), predictions.outcome_row(old))
    new = predictions.make_outcome(on_day(DAYS[1]), close=100.0, prev_close=None)
    predictions.publish_outcome(store, new)
    assert predictions.past_outcomes(store, "SPY", DAYS[2])["date"].to_list() == DAYS[:2]


def test_a_broken_day_file_is_named_in_one_line(tmp_path: Path) -> None:
    store = storage.LocalStore(tmp_path)
    broken = base()
    broken["date"] = DAYS[1].isoformat()
    broken["model"]["uri"] = "runs:/abc/model"
    store.write_bytes(predictions.json_key("SPY", DAYS[1]), json.dumps(broken).encode())
    with pytest.raises(
        ValueError, match=r"SPY/2016-06-07\.json: not a Prediction record: model\.uri"
    ) as err:
        predictions.publish(store, on_day(DAYS[0]))
    assert "\n" not in str(err.value)
