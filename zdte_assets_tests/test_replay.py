"""`zdte replay` end to end: the report and its table, determinism and causality with the file
source, and one-line failures on bad input.

Each extra replay costs about a minute on a small machine, so this module runs only two (the full
fixture week from a CSV copy of the sample, and the same file cut after a middle day), with the
same small study as the shared fixture.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvsampledata
import numpy as np
import polars as pl
import pytest

from zdte_assets.apps import cli
from zdte_assets_tests.conftest import REPLAY_END, REPLAY_START, REPLAY_TRIALS, ZDTE_ENV, Replayed

PLOTS = (
    "cumulative_pnl.png",
    "predicted_vs_realized.png",
    "rolling_accuracy.png",
    "drift_timeline.png",
    "pit_histogram.png",
)
TABLE_COLUMNS = (
    "date",
    "open",
    "close",
    "predicted_return",
    "p_up",
    "action",
    "strike",
    "premium",
    "pnl",
)
#: Everything a prediction decides in the morning (outcome columns excluded).
PREDICTION_COLUMNS = [
    "date",
    "open",
    "predicted_return",
    "predicted_close",
    "p_up",
    "interval_low",
    "interval_high",
    "action",
    "option",
    "strike",
    "premium",
    "contracts",
    "reason",
]
#: The middle day of the replayed week, after which the file is cut and altered.
CUT_DAY = dt.date(2024, 11, 6)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def replayed_days() -> list[dt.date]:
    start, end = dt.date.fromisoformat(REPLAY_START), dt.date.fromisoformat(REPLAY_END)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [d for d in days if d.weekday() < 5]  # no holiday in that week


def sample_frame() -> pl.DataFrame:
    return pl.from_pandas(hvsampledata.apple_stocks("pandas")).with_columns(
        pl.col("date").cast(pl.Date)
    )


def get(mapping: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        assert isinstance(mapping, dict) and part in mapping, dotted
        mapping = mapping[part]
    return mapping


# --- the report of the shared fixture replay ----------------------------------------------------


REQUIRED_NUMBERS = (
    "metrics.model.rmse",
    "metrics.model.mae",
    "metrics.model.brier",
    "metrics.naive.rmse",
    "metrics.naive.mae",
    "metrics.prev_close.rmse",
    "metrics.base_rate_up",
    "metrics.rmse_ratio",
    "trading.pnl_total",
    "trading.expected_value_total",
    "metrics.calibration.coverage_50",
    "metrics.calibration.coverage_90",
    "metrics.calibration.z2_mean",
    "metrics.calibration.brier_base",
    "metrics.calibration.log_score",
    "timing.wall_seconds",
    "timing.compute_seconds",
)
#: Keys that must be present but may be null when undefined (no calls, no trades, too few days).
REQUIRED_NULLABLE = ("metrics.model.directional_accuracy", "metrics.dm_pvalue", "trading.hit_rate")
REQUIRED_COUNTS = (
    "trading_days",
    "trading.trades",
    "trading.no_trade_days",
    "lifecycle.weekly_optimizations",
    "lifecycle.reoptimizations_triggered",
    "lifecycle.models_trained",
)


def test_report_files_and_required_keys(replayed: Replayed) -> None:
    out = replayed.output
    report: dict[str, Any] = replayed.report
    assert report["ticker"] == "AAPL"
    assert (report["start"], report["end"]) == (REPLAY_START, REPLAY_END)
    for key in REQUIRED_NUMBERS:
        value = get(report, key)
        assert isinstance(value, int | float) and math.isfinite(value), key
    for key in REQUIRED_NULLABLE:
        value = get(report, key)
        assert value is None or (isinstance(value, float) and 0.0 <= value <= 1.0), key
    for key in REQUIRED_COUNTS:
        value = get(report, key)
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, key
    timing = report["timing"]
    assert timing["wall_seconds"] > 0 and timing["compute_seconds"] > 0
    parts = timing["by_part"]
    for name in ("dagster", "mlflow", "storage", "studies", "training", "setup_and_imports"):
        assert parts[name] >= 0, name
    assert parts["dagster"] > 0 and parts["mlflow"] > 0 and parts["storage"] > 0
    # The parts of the main process never add up to more than its wall time.
    main = sum(v for k, v in parts.items() if k != "studies_ahead_second_core")
    assert main <= timing["wall_seconds"] * 1.01
    assert 0 < timing["plain_equivalent_seconds"] < timing["wall_seconds"]
    # One run per trading day, plus the weekly studies and the re-optimizations.
    lc = report["lifecycle"]
    assert lc["dagster_runs"] == (
        report["trading_days"] + lc["weekly_optimizations"] + lc["reoptimizations_triggered"]
    )
    # The week's scheduled study was computed ahead and reused, not computed twice.
    assert timing["counts"].get("studies_reused", 0) >= lc["weekly_optimizations"]
    # Peak memory of the replay and of its study worker, each from its own process.
    assert 0 < timing["study_worker_peak_rss_mib"] < timing["peak_rss_mib"]
    from zdte_assets.apps.summary import where_the_time_went

    printed = where_the_time_went(timing)
    assert printed.startswith(f"where the time went ({timing['wall_seconds']:.1f} s wall)")
    assert "  dagster " in printed and "peak memory" in printed

    assert json.loads((out / "report.json").read_text()) == report
    md = (out / "report.md").read_text()
    assert md.startswith(f"# zdte replay: AAPL {REPLAY_START} to {REPLAY_END}")
    assert sorted(report["plots"]) == sorted(PLOTS)
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
        assert f"]({name})" in md

    days = pl.read_parquet(out / "predictions.parquet")
    assert set(TABLE_COLUMNS) <= set(days.columns)
    assert days["date"].to_list() == replayed_days()
    assert report["trading_days"] == days.height == len(replayed_days())


def test_report_figures_recomputed_from_the_table(replayed: Replayed) -> None:
    report: dict[str, Any] = replayed.report
    m, t, lc = report["metrics"], report["trading"], report["lifecycle"]
    days = pl.read_parquet(replayed.output / "predictions.parquet")
    opens, closes = days["open"].to_numpy(), days["close"].to_numpy()
    pred = days["predicted_return"].to_numpy()
    realized = np.log(closes / opens)
    np.testing.assert_allclose(days["realized_return"].to_numpy(), realized, rtol=1e-12)

    err = realized - pred
    assert m["model"]["rmse"] == pytest.approx(math.sqrt(np.mean(err**2)), rel=1e-9)
    assert m["model"]["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
    assert m["naive"]["rmse"] == pytest.approx(math.sqrt(np.mean(realized**2)), rel=1e-9)
    assert m["naive"]["mae"] == pytest.approx(np.mean(np.abs(realized)), rel=1e-9)
    prev_pred = np.log(days["prev_close"].to_numpy() / opens)
    assert m["prev_close"]["rmse"] == pytest.approx(
        math.sqrt(np.mean((realized - prev_pred) ** 2)), rel=1e-9
    )
    assert m["base_rate_up"] == pytest.approx(np.mean(closes > opens), abs=1e-12)
    assert m["rmse_ratio"] == pytest.approx(
        math.sqrt(np.mean(err**2)) / math.sqrt(np.mean(realized**2)), rel=1e-9
    )
    up = (closes > opens).astype(float)
    assert m["model"]["brier"] == pytest.approx(
        np.mean((days["p_up"].to_numpy() - up) ** 2), rel=1e-9
    )
    calls = pred != 0.0
    if calls.any():
        hits = np.sign(realized[calls]) == np.sign(pred[calls])
        assert m["model"]["directional_accuracy"] == pytest.approx(np.mean(hits), abs=1e-12)
    else:
        assert m["model"]["directional_accuracy"] is None

    actions = days["action"].to_list()
    pnl = days["pnl"].to_numpy()
    traded = np.array([a != "NO_TRADE" for a in actions])
    assert t["trades"] == int(traded.sum())
    assert t["no_trade_days"] == int((~traded).sum())
    assert t["pnl_total"] == pytest.approx(float(pnl.sum()), abs=1e-9)
    assert np.all(pnl[~traded] == 0.0)
    if traded.any():
        assert t["hit_rate"] == pytest.approx(np.mean(pnl[traded] > 0), abs=1e-12)
    else:
        assert t["hit_rate"] is None

    ev = days["expected_value_usd"].to_numpy()
    assert t["expected_value_total"] == pytest.approx(float(ev[traded].sum()), abs=1e-9)
    assert len(t["per_trade"]) == t["trades"]

    # Calibration, recomputed from the stored intervals and distributions.
    c = m["calibration"]
    low, high = days["interval_low"].to_numpy(), days["interval_high"].to_numpy()
    assert c["coverage_90"] == pytest.approx(np.mean((low <= closes) & (closes <= high)), abs=1e-12)
    assert sum(c["pit_counts"]) == days.height and len(c["pit_counts"]) == 10
    pit = days["pit"].to_numpy()
    assert c["pit_counts"] == np.histogram(pit, bins=10, range=(0, 1))[0].tolist()
    assert c["z2_mean"] == pytest.approx(float(np.mean(days["z"].to_numpy() ** 2)), rel=1e-9)
    base = [0.5] + [float(np.mean(up[:i])) for i in range(1, up.size)]
    assert c["brier_base"] == pytest.approx(float(np.mean((np.array(base) - up) ** 2)), rel=1e-9)
    assert c["log_score"] == pytest.approx(float(np.mean(days["log_score"].to_numpy())), rel=1e-9)
    md = (replayed.output / "report.md").read_text()
    assert "Coverage of the central 50% interval" in md and "straddle" in md

    weeks = {d.isocalendar()[:2] for d in days["date"].to_list()}
    assert lc["weekly_optimizations"] == len(weeks)
    assert lc["reoptimizations_triggered"] == len(lc["reoptimization_days"])
    assert int(days["reoptimized"].sum()) == len(set(lc["reoptimization_days"]))
    # A model per replayed day, plus one per retrain a re-optimization asked for.
    assert lc["models_trained"] >= days.height
    assert days["model_version"].n_unique() == days.height


# --- determinism and causality with the file source -----------------------------------------------


def replay_file(path: Path, start: str, end: str, out: Path) -> pl.DataFrame:
    """`zdte replay --source file` in this process (the instance and MLflow home are shared)."""
    code = cli.main(
        [
            "replay",
            "--ticker",
            "AAPL",
            "--source",
            "file",
            "--path",
            str(path),
            "--start",
            start,
            "--end",
            end,
            "--output",
            str(out),
            "--trials",
            str(REPLAY_TRIALS),
            "--no-progress",
        ]
    )
    assert code == 0
    return pl.read_parquet(out / "predictions.parquet")


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "aapl.csv"
    hvsampledata.apple_stocks("pandas").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def file_replay(sample_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    out = tmp_path_factory.mktemp("file-replay")
    return replay_file(sample_csv, REPLAY_START, REPLAY_END, out)


def test_file_source_replays_the_sample_identically(
    replayed: Replayed, file_replay: pl.DataFrame
) -> None:
    sample = pl.read_parquet(replayed.output / "predictions.parquet")
    assert file_replay["date"].to_list() == replayed_days()
    # Same bars, same studies and models: the same predictions, bit for bit.
    for column in [*PREDICTION_COLUMNS, "close", "pnl"]:
        assert file_replay[column].to_list() == sample[column].to_list(), column
    # ... by models of their own (registered again, under new versions).
    assert set(file_replay["model_version"]).isdisjoint(set(sample["model_version"]))


def test_predictions_do_not_depend_on_later_data(
    sample_csv: Path, file_replay: pl.DataFrame, tmp_path: Path
) -> None:
    frame = pl.read_csv(sample_csv, try_parse_dates=True).filter(pl.col("date") <= CUT_DAY)
    original = frame.filter(pl.col("date") == CUT_DAY).row(0, named=True)
    new_close = round(original["open"] * 0.97, 2)
    assert new_close != original["close"]
    altered = frame.with_columns(
        pl.when(pl.col("date") == CUT_DAY)
        .then(pl.lit(new_close))
        .otherwise(pl.col("close"))
        .alias("close"),
        pl.when(pl.col("date") == CUT_DAY)
        .then(pl.lit(round(max(original["open"], new_close) * 1.01, 2)))
        .otherwise(pl.col("high"))
        .alias("high"),
        pl.when(pl.col("date") == CUT_DAY)
        .then(pl.lit(round(min(original["open"], new_close) * 0.99, 2)))
        .otherwise(pl.col("low"))
        .alias("low"),
        pl.when(pl.col("date") == CUT_DAY)
        .then(pl.col("volume") * 2)
        .otherwise(pl.col("volume"))
        .alias("volume"),
    )
    cut_csv = tmp_path / "aapl-cut.csv"
    altered.write_csv(cut_csv)

    cut = replay_file(cut_csv, REPLAY_START, CUT_DAY.isoformat(), tmp_path / "out")

    full = file_replay.filter(pl.col("date") <= CUT_DAY)
    assert cut["date"].to_list() == [d for d in replayed_days() if d <= CUT_DAY]
    for column in PREDICTION_COLUMNS:
        assert cut[column].to_list() == full[column].to_list(), column
    # The altered day really was replayed with the altered bar: only its outcome changed.
    assert cut.filter(pl.col("date") == CUT_DAY)["close"].item() == new_close
    assert full.filter(pl.col("date") == CUT_DAY)["close"].item() == original["close"]
    assert (
        cut.filter(pl.col("date") < CUT_DAY)["close"].to_list()
        == full.filter(pl.col("date") < CUT_DAY)["close"].to_list()
    )


# --- bad input: one line on stderr, non-zero exit, before any Dagster run -------------------------


@dataclass(frozen=True)
class BadRun:
    args: list[str]
    home: Path
    output: Path
    expected: list[str]
    result: subprocess.CompletedProcess[str] | None = None


BAD_CASES = (
    "high_below_low",
    "range_beyond_calendar",
    "range_before_file",
    "unknown_ticker",
    "start_after_end",
    "missing_file",
)


@pytest.fixture(scope="module", autouse=True)
def started_bad_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[BadRun, subprocess.Popen[str]]]]:
    """All bad-input replays, started together as soon as this module starts.

    Each process spends most of its time importing; started early, that overlaps with the
    in-process replays of this module, which keep only one core busy.
    """
    root = tmp_path_factory.mktemp("bad-input")
    sample = sample_frame()
    good_csv = root / "aapl.csv"
    sample.write_csv(good_csv)

    bad_day = dt.date(2024, 6, 3)
    bad_row = sample["date"].to_list().index(bad_day) + 1  # 1-based data row of the file
    broken = sample.with_columns(
        pl.when(pl.col("date") == bad_day)
        .then(pl.col("low") - 1.0)
        .otherwise(pl.col("high"))
        .alias("high")
    )
    broken_csv = root / "broken.csv"
    broken.write_csv(broken_csv)

    multi_csv = root / "multi.csv"
    pl.concat(
        [
            sample.with_columns(pl.lit("AAPL").alias("ticker")),
            sample.with_columns(pl.lit("MSFT").alias("ticker")),
        ]
    ).write_csv(multi_csv)
    missing_csv = root / "does-not-exist.csv"

    week = ["--start", REPLAY_START, "--end", REPLAY_END]
    specs: dict[str, tuple[list[str], list[str]]] = {
        "high_below_low": (
            ["--ticker", "AAPL", "--source", "file", "--path", str(broken_csv), *week],
            [str(broken_csv), f"row {bad_row} ({bad_day})", "high", "< low"],
        ),
        "range_beyond_calendar": (
            ["--ticker", "AAPL", "--start", "2030-01-01", "--end", "2030-01-31"],
            ["2030-01-01..2030-01-31", "outside the trading calendar"],
        ),
        "range_before_file": (
            [
                *("--ticker", "AAPL", "--source", "file", "--path", str(good_csv)),
                *("--start", "2018-01-02", "--end", "2018-01-31"),
            ],
            [
                str(good_csv),
                "no data for AAPL",
                f"covers {sample['date'][0]} to {sample['date'][-1]}",
            ],
        ),
        "unknown_ticker": (
            ["--ticker", "NVDA", "--source", "file", "--path", str(multi_csv), *week],
            [str(multi_csv), "ticker NVDA not in file", "AAPL, MSFT"],
        ),
        "start_after_end": (
            ["--ticker", "AAPL", "--start", REPLAY_END, "--end", REPLAY_START],
            [f"--end {REPLAY_START} is before --start {REPLAY_END}"],
        ),
        "missing_file": (
            ["--ticker", "AAPL", "--source", "file", "--path", str(missing_csv), *week],
            [str(missing_csv), "file not found"],
        ),
    }
    assert set(specs) == set(BAD_CASES)
    started: dict[str, tuple[BadRun, subprocess.Popen[str]]] = {}
    for name, (args, expected) in specs.items():
        home = root / name / "home"
        output = root / name / "out"
        env = {k: v for k, v in os.environ.items() if k not in ZDTE_ENV}
        env.update(ZDTE_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
        cmd = [sys.executable, "-m", "zdte_assets.apps.cli", "replay", *args]
        cmd += ["--output", str(output), "--trials", "2", "--no-progress"]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        started[name] = (BadRun(args=cmd, home=home, output=output, expected=expected), proc)
    try:
        yield started
    finally:
        for _, proc in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.fixture(scope="module")
def bad_runs(
    started_bad_runs: dict[str, tuple[BadRun, subprocess.Popen[str]]],
) -> dict[str, BadRun]:
    """The finished bad-input replays with their exit code and output."""
    done = {}
    for name, (run, proc) in started_bad_runs.items():
        try:
            stdout, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        result = subprocess.CompletedProcess(run.args, proc.returncode, stdout, stderr)
        done[name] = dataclasses.replace(run, result=result)
    return done


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_exits_with_one_line(bad_runs: dict[str, BadRun], case: str) -> None:
    run = bad_runs[case]
    assert run.result is not None
    assert run.result.returncode != 0
    assert "Traceback" not in run.result.stderr
    lines = [line for line in run.result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.result.stderr
    assert lines[0].startswith("zdte: ")
    for fragment in run.expected:
        assert fragment in lines[0], (fragment, lines[0])
    # Refused before anything ran: no output directory, no Dagster run in the instance.
    assert not run.output.exists()
    assert not (run.home / "dagster").exists() or not any((run.home / "dagster").iterdir())
