"""Benchmark: the default weekly study (24 trials, 4 windows of 10 sessions) for one week.

    .venv/bin/python -m benchmarks.study_benchmark [--week 2024-06-03] [--repeat 3]

Rows are the sample's causal feature rows with their targets, up to the session before the week,
limited to the study lookback the `tuned_params` asset uses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time

import polars as pl

from zdte_assets.core.config import STUDY_LOOKBACK_WEEKS
from zdte_assets.data.market_data import SampleSource
from zdte_assets.features.rows import training_frame
from zdte_assets.model import study, walkforward


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--week", default="2024-06-03")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    week = dt.date.fromisoformat(args.week)
    bars = SampleSource().bars("AAPL", dt.date(2019, 1, 2), week)
    rows = training_frame(bars).filter(pl.col("date") < week).tail(STUDY_LOOKBACK_WEEKS * 5)
    times = []
    chosen: set[str] = set()
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = study.run_study(
            rows, walkforward.WalkForwardConfig(), n_trials=args.trials, seed=0
        )
        times.append(time.perf_counter() - t0)
        chosen.add(json.dumps(result.to_dict()["chosen"], sort_keys=True))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"study for week {week}: {rows.height} rows, {args.trials} trials")
    print(
        f"wall seconds per study: min {min(times):.2f}, median {statistics.median(times):.2f} ({args.repeat} runs)"
    )
    print(f"same chosen parameters in every run: {len(chosen) == 1}")


if __name__ == "__main__":
    main()
