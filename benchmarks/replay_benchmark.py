"""Benchmark: replay speed, and the overhead of orchestration and tracking.

    .venv/bin/python -m benchmarks.replay_benchmark --start 2024-01-02 --end 2024-12-30 [--trials 24]

Runs `zdte replay` in a temporary ZDTE_HOME (fresh Dagster instance, MLflow and Optuna stores),
then the same domain computations in a plain Python loop (no Dagster, no MLflow, no storage):
per week the study, per replayed day the feature row, the daily model, the prediction record
and the outcome, plus one extra study per drift re-optimization the replay triggered. The ratio
wall(replay) / wall(plain loop) is the overhead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import polars as pl


def plain_loop(
    start: dt.date, end: dt.date, n_trials: int, extra_studies: int
) -> tuple[float, int]:
    from zdte_assets import calendar, training
    from zdte_assets.config import STUDY_LOOKBACK_WEEKS
    from zdte_assets.expiries import ExpiryCalendar
    from zdte_assets.features import feature_row_at_open, training_frame
    from zdte_assets.market_data import SampleSource
    from zdte_assets.predictions import make_outcome, make_prediction
    from zdte_assets.pricing import DecisionConfig

    t0 = time.perf_counter()
    bars = SampleSource().bars("AAPL", dt.date(2019, 1, 2), end)
    labeled = training_frame(bars)
    days = [d for d in calendar.trading_days(start, end) if d in set(bars["date"].to_list())]
    params_by_week: dict[dt.date, tuple[training.ModelParams, bool]] = {}
    studies = 0
    for day in days:
        week = calendar.week_start(day)
        if week not in params_by_week:
            rows = labeled.filter(pl.col("date") < week).tail(STUDY_LOOKBACK_WEEKS * 5)
            res = training.run_study(rows, training.WalkForwardConfig(), n_trials=n_trials, seed=0)
            params_by_week[week] = (res.params, res.beats_naive)
            studies += 1
        params, beats = params_by_week[week]
        model = training.train_daily(labeled, params, before=day)
        history = bars.filter(pl.col("date") < day)
        bar = bars.filter(pl.col("date") == day)
        row = feature_row_at_open(history, day, float(bar["open"][0]))
        info = {
            "model_version": "0",
            "model_uri": "",
            "mlflow_run_id": "",
            "tuned_run_id": "",
            "tuned_as_of": "",
            "train_last": "",
            "beats_naive": beats,
        }
        record = make_prediction(
            ticker="AAPL",
            day=day,
            open_price=float(bar["open"][0]),
            feature_row=row,
            model=model,
            model_info=info,
            decision_config=DecisionConfig(),
            expiries=ExpiryCalendar.defaults(),
        )
        make_outcome(record, close=float(bar["close"][0]), prev_close=float(history["close"][-1]))
    rows = labeled.filter(pl.col("date") < days[-1]).tail(STUDY_LOOKBACK_WEEKS * 5)
    for _ in range(extra_studies):
        training.run_study(rows, training.WalkForwardConfig(), n_trials=n_trials, seed=0)
    return time.perf_counter() - t0, studies + extra_studies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--start", default="2024-01-02")
    parser.add_argument("--end", default="2024-12-30")
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)

    home = Path(tempfile.mkdtemp(prefix="zdte-bench-"))
    os.environ["ZDTE_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    for k in ("ZDTE_STORAGE_URL", "MLFLOW_TRACKING_URI", "ZDTE_OPTUNA_STORAGE"):
        os.environ.pop(k, None)
    from zdte_assets.replay import ReplayOptions, run_replay

    t0 = time.perf_counter()
    report = run_replay(
        ReplayOptions(
            ticker="AAPL",
            start=start,
            end=end,
            output=home / "out",
            n_trials=args.trials,
            progress=False,
        )
    )
    replay_wall = time.perf_counter() - t0
    loop_wall, studies = plain_loop(
        start, end, args.trials, report["lifecycle"]["reoptimizations_triggered"]
    )
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "range": f"{report['start']}..{report['end']}",
        "trading_days": report["trading_days"],
        "replay_wall_seconds": round(replay_wall, 1),
        "replay_cpu_seconds": round(report["timing"]["compute_seconds"], 1),
        "plain_loop_wall_seconds": round(loop_wall, 1),
        "overhead_ratio": round(replay_wall / loop_wall, 2),
        "studies": studies,
        "dagster_runs": report["lifecycle"]["dagster_runs"],
        "seconds_per_trading_day": round(replay_wall / report["trading_days"], 2),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
