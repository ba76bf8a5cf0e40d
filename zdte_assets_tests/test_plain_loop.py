"""The benchmark's plain loop computes exactly what the replay computes.

`benchmarks/replay_benchmark.py` divides the replay's wall time by the plain loop's; the ratio
only means "overhead" if both compute the same thing. This replays nothing new: it runs the
plain loop over the shared replay's range, with the same trials and the drift re-optimizations
the replay triggered, and compares every prediction column the desk reads.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from benchmarks.replay_benchmark import plain_loop
from zdte_assets.trading.predictions import table_row
from zdte_assets_tests.conftest import REPLAY_END, REPLAY_START, REPLAY_TRIALS, Replayed
from zdte_assets_tests.test_replay import PREDICTION_COLUMNS


def test_plain_loop_predictions_equal_the_replays(replayed: Replayed) -> None:
    lifecycle = replayed.report["lifecycle"]
    assert isinstance(lifecycle, dict)
    reopt = [dt.date.fromisoformat(d) for d in lifecycle["reoptimization_days"]]
    plain = plain_loop(
        "AAPL",
        dt.date.fromisoformat(REPLAY_START),
        dt.date.fromisoformat(REPLAY_END),
        REPLAY_TRIALS,
        reopt,
        parallel=False,
    )
    replay = pl.read_parquet(replayed.output / "predictions.parquet").select(PREDICTION_COLUMNS)
    mine = pl.concat([table_row(r) for r in plain.predictions]).select(PREDICTION_COLUMNS)
    assert mine.height == replay.height == len(set(replay["date"].to_list())) > 0
    # Sigma (and with it p_up and the interval) differs day to day, so equality is not vacuous
    # even when the shrunk forecast is 0.
    assert replay["interval_low"].n_unique() > 1
    assert mine.to_dicts() == replay.to_dicts()
