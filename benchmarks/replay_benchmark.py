"""Benchmark: replay speed, and the overhead of orchestration and tracking.

    .venv/bin/python -m benchmarks.replay_benchmark --start 2024-01-02 --end 2024-12-30 [--trials 24]

Runs `zdte replay` in a temporary ZDTE_HOME (fresh Dagster instance, MLflow and Optuna stores),
then `plain_loop`: the same domain computations (`zdte_assets.model.lifecycle` and friends, in the same
order) without Dagster, MLflow or storage, with the same parallelism (scheduled weekly studies
ahead in one worker process, drift-triggered studies inline on the days the replay triggered
them). The ratio wall(replay) / wall(plain loop) is the overhead. Peak RSS of the replay's
process and of its study worker is the kernel's high-water mark of each (VmHWM).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from zdte_assets.core.records import Prediction


@dataclass(frozen=True)
class PlainVersion:
    """What the plain loop keeps of a study: the fields a day's model and its pointer use."""

    week: str
    as_of: dt.date
    params: dict[str, Any]
    beats_naive: bool
    validation_errors: tuple[float, ...]
    #: No MLflow in the plain loop: the run the pointer names.
    mlflow_run_id: str = "plain-loop"


@dataclass
class PlainResult:
    """What the plain loop computed: one prediction record per day, and its wall time."""

    seconds: float
    predictions: list[Prediction] = field(default_factory=list)
    studies: int = 0


def plain_loop(
    ticker: str,
    start: dt.date,
    end: dt.date,
    n_trials: int,
    reopt_days: list[dt.date],
    source_kind: str = "sample",
    source_path: str | None = None,
    parallel: bool = True,
) -> PlainResult:
    """The replay's computations for `ticker` over `start..end`, in a plain Python loop.

    The replay's day order: the week's scheduled study before its first session; per day the
    model (rows before the day, newest study whose data ended before it), the feature row at the
    open, the prediction, the outcome and the drift report; a study as of the evening on each
    of `reopt_days`.
    """
    from zdte_assets.apps.replay import ReplayOptions, plan_range
    from zdte_assets.apps.study_prefetch import StudyJob, run_job
    from zdte_assets.core import calendar
    from zdte_assets.data.market_data import source_from_settings
    from zdte_assets.features.rows import LOOKBACK
    from zdte_assets.model import fitting, lifecycle, walkforward
    from zdte_assets.model.params import ModelParams
    from zdte_assets.model.study import run_study
    from zdte_assets.model.versions import model_pointer, select_version
    from zdte_assets.monitoring.config import MONITORING_CONFIG
    from zdte_assets.monitoring.report import build_drift_report
    from zdte_assets.trading.expiries import ExpiryCalendar
    from zdte_assets.trading.predictions import (
        OUTCOME_SCHEMA,
        make_outcome,
        make_prediction,
        outcome_row,
    )
    from zdte_assets.trading.pricing import DecisionConfig

    t0 = time.perf_counter()
    source = source_from_settings(source_kind, source_path)
    opts = ReplayOptions(ticker=ticker, start=start, end=end, output=Path("."))
    days, warm = plan_range(source, opts)
    bars = source.bars(ticker, warm, days[-1])
    opens = dict(zip(bars["date"].to_list(), bars["open"].to_list(), strict=True))
    closes = dict(zip(bars["date"].to_list(), bars["close"].to_list(), strict=True))
    feat_start = calendar.next_trading_day(warm, LOOKBACK)
    prev = calendar.previous_trading_day(days[0])
    history = [d for d in bars["date"].to_list() if feat_start <= d <= prev]
    features = lifecycle.feature_frame(bars, opens, history)

    mondays = sorted({calendar.week_start(d) for d in days})
    jobs = [StudyJob(source_kind, source_path, ticker, m, feat_start, n_trials, 0) for m in mondays]
    pool = ProcessPoolExecutor(1, multiprocessing.get_context("spawn")) if parallel else None
    pending = {j.monday: pool.submit(run_job, j) for j in jobs} if pool else {}
    versions: list[PlainVersion] = []
    outcomes: dict[str, dict[str, Any]] = {}
    out = PlainResult(seconds=0.0)

    def add_version(monday: dt.date, as_of: dt.date, result: dict[str, Any]) -> None:
        chosen = result["chosen"]
        wins = result.get("validation", {})
        versions.append(
            PlainVersion(
                week=monday.isoformat(),
                as_of=as_of,
                params=chosen["params"],
                beats_naive=bool(result["beats_naive"]),
                validation_errors=tuple(
                    a - p
                    for a, p in zip(wins.get("actual", []), wins.get("predicted", []), strict=True)
                ),
            )
        )
        out.studies += 1

    past = pl.DataFrame(schema=OUTCOME_SCHEMA)
    try:
        for i, day in enumerate(days):
            monday = calendar.week_start(day)
            if i == 0 or monday != calendar.week_start(days[i - 1]):
                job = next(j for j in jobs if j.monday == monday)
                done = pending.pop(monday).result() if pool else run_job(job)
                add_version(monday, job.as_of, done[1])
            tuned = select_version(versions, day)
            assert tuned is not None
            params = ModelParams.from_dict(tuned.params)
            rows = lifecycle.labeled_rows(features, bars, before=day)
            model = fitting.train_daily(rows, params, before=day)
            train_rows = rows.tail(params.train_window)
            info = model_pointer(
                ticker,
                day,
                version="0",
                run_id="plain-loop",
                tuned=tuned,
                params=params,
                model=model,
                train_rows=train_rows,
            )
            features = pl.concat(
                [features, lifecycle.feature_frame(bars, opens, [day])], how="vertical_relaxed"
            )
            record = make_prediction(
                ticker=ticker,
                day=day,
                open_price=float(opens[day]),
                feature_row=features.filter(pl.col("date") == day),
                model=model,
                model_info=info,
                decision_config=DecisionConfig(),
                expiries=ExpiryCalendar.from_env(),
                past=past,
            )
            out.predictions.append(record)
            before = calendar.previous_trading_day(day)
            prev_close = closes.get(before)
            outcome = make_outcome(
                record,
                close=float(closes[day]),
                prev_close=None if prev_close is None else float(prev_close),
            )
            outcomes[day.isoformat()] = outcome.model_dump(mode="json")
            past = pl.concat([past, outcome_row(outcome)])
            build_drift_report(day, features.tail(121), outcomes, info, MONITORING_CONFIG)
            if day in reopt_days:
                nxt = calendar.week_start(calendar.next_trading_day(day))
                rows = lifecycle.study_rows(features, bars, nxt, day)
                study = run_study(rows, walkforward.WalkForwardConfig(), n_trials=n_trials, seed=0)
                add_version(nxt, day, study.to_dict())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    out.seconds = time.perf_counter() - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--start", default="2024-01-02")
    parser.add_argument("--end", default="2024-12-30")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument(
        "--dagster-yaml",
        help="instance file for the replay (e.g. the production dagster.yaml on Postgres); "
        "default: the local profile's SQLite instance",
    )
    parser.add_argument("--skip-plain", action="store_true", help="replay only")
    args = parser.parse_args()
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)

    home = Path(tempfile.mkdtemp(prefix="zdte-bench-"))
    os.environ["ZDTE_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    if args.dagster_yaml:
        (home / "dagster").mkdir()
        (home / "dagster" / "dagster.yaml").write_text(Path(args.dagster_yaml).read_text())
        os.environ.setdefault("DAGSTER_COMPUTE_LOG_DIR", str(home / "compute-logs"))
    for k in ("ZDTE_STORAGE_URL", "MLFLOW_TRACKING_URI", "ZDTE_OPTUNA_STORAGE"):
        os.environ.pop(k, None)
    from zdte_assets.apps.cli import quiet_console
    from zdte_assets.apps.replay import ReplayOptions, run_replay

    quiet_console()
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
    reopt = [dt.date.fromisoformat(d) for d in report["lifecycle"]["reoptimization_days"]]
    plain = PlainResult(seconds=float("nan"))
    if not args.skip_plain:
        plain = plain_loop("AAPL", start, end, args.trials, reopt)
    timing = report["timing"]
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "range": f"{report['start']}..{report['end']}",
        "trading_days": report["trading_days"],
        "replay_wall_seconds": round(replay_wall, 1),
        "replay_cpu_seconds_main_process": round(timing["compute_seconds"], 1),
        "plain_loop_wall_seconds": None if args.skip_plain else round(plain.seconds, 1),
        "overhead_ratio": None if args.skip_plain else round(replay_wall / plain.seconds, 2),
        "studies": report["lifecycle"]["weekly_optimizations"]
        + report["lifecycle"]["reoptimizations_triggered"],
        "dagster_runs": report["lifecycle"]["dagster_runs"],
        "seconds_per_trading_day": round(replay_wall / report["trading_days"], 2),
        "replay_peak_rss_mib": round(timing["peak_rss_mib"]),
        "study_worker_peak_rss_mib": round(timing["study_worker_peak_rss_mib"]),
        "by_part_seconds": {k: round(v, 1) for k, v in sorted(timing["by_part"].items())},
        "runs_by_slot_seconds": {k: round(v, 1) for k, v in timing["runs_by_slot"].items()},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
