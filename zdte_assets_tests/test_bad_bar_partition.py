"""With a file source, a bad bar fails only its own day's partitions; a broken file fails them all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from zdte_assets.core import calendar
from zdte_assets.data.market_data import FileSource
from zdte_assets.data.validation import DataValidationError
from zdte_assets.definitions import build_definitions
from zdte_assets.orchestration.jobs import asset_key
from zdte_assets.orchestration.runner import QUIET

TICKER = "TEST"
DAYS = calendar.trading_days(dt.date(2024, 3, 1), dt.date(2024, 3, 12))
BAD = 3  # index into DAYS of the bad row; data row BAD + 1 of the file
ASSETS = ("daily_bar", "session_open")


def good_frame() -> pl.DataFrame:
    """A consistent bar for each session, as the CSV text a vendor would hand over."""
    n = len(DAYS)
    opens = [100.0 + 1.5 * i for i in range(n)]
    return pl.DataFrame(
        {
            "date": [d.isoformat() for d in DAYS],
            "open": [str(o) for o in opens],
            "high": [str(o + 2.0) for o in opens],
            "low": [str(o - 2.0) for o in opens],
            "close": [str(o + 0.5 * (-1) ** i) for i, o in enumerate(opens)],
            "volume": ["1000000"] * n,
        }
    )


def _set(frame: pl.DataFrame, row: int, column: str, value: str) -> pl.DataFrame:
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=pl.String))


def _swap_high_low(frame: pl.DataFrame) -> pl.DataFrame:
    high, low = frame["high"][BAD], frame["low"][BAD]
    return _set(_set(frame, BAD, "high", low), BAD, "low", high)


@dataclass(frozen=True)
class DayCase:
    corrupt: Callable[[pl.DataFrame], pl.DataFrame]
    words: tuple[str, ...]


#: Bad bars of one known session: each must fail that session only.
DAY_CASES = {
    "high below low": DayCase(_swap_high_low, ("high", "< low")),
    "non-positive price": DayCase(lambda f: _set(f, BAD, "low", "-1"), ("non-positive low",)),
    "missing value": DayCase(lambda f: _set(f, BAD, "close", ""), ("missing close",)),
    "duplicate date": DayCase(
        # The row after the bad day repeats its date: that day is ambiguous, the next is missing.
        lambda f: _set(f, BAD + 1, "date", DAYS[BAD].isoformat()),
        ("duplicate date",),
    ),
}

#: Problems that make the whole file unusable: every partition fails with them.
FILE_CASES = {
    "unparseable date": (lambda f: _set(f, BAD, "date", "2024-13-45"), ("unparseable date",)),
    "dates out of order": (
        lambda f: _set(
            _set(f, BAD, "date", DAYS[BAD + 1].isoformat()), BAD + 1, "date", DAYS[BAD].isoformat()
        ),
        ("out of order",),
    ),
    "weekend date": (lambda f: _set(f, BAD, "date", "2024-03-09"), ("not an NYSE trading day",)),
    "missing column": (lambda f: f.drop("volume"), ("missing required column", "volume")),
}


@dataclass(frozen=True)
class Outcome:
    success: bool
    #: Step key -> message of the user-code exception that failed it.
    failures: dict[str, str]
    #: Check name -> its evaluation, for the checks the run evaluated.
    checks: dict[str, dg.AssetCheckEvaluation]


def run_day(defs: dg.Definitions, day: dt.date, instance: dg.DagsterInstance) -> Outcome:
    """Materialize both market assets of `day` in one run, the way a daily schedule does."""
    job = dg.define_asset_job(
        "bad_bar_test",
        selection=dg.AssetSelection.assets(*(asset_key(TICKER, a) for a in ASSETS)),
    )
    resolved = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(job.name)
    result = resolved.execute_in_process(
        run_config=QUIET, instance=instance, partition_key=day.isoformat(), raise_on_error=False
    )
    failures = {}
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None and error.cls_name != "DataValidationError":
                error = error.cause
            assert error is not None, f"{event.step_key} failed for another reason"
            failures[str(event.step_key)] = error.message.removeprefix(
                "zdte_assets.data.validation.DataValidationError: "
            ).strip()
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return Outcome(result.success, failures, checks)


def stored(storage: Path, asset: str, day: dt.date) -> Path:
    return storage / TICKER / asset / f"{day.isoformat()}.parquet"


def setup(tmp_path: Path, frame: pl.DataFrame) -> tuple[Path, Path, dg.Definitions]:
    path = tmp_path / "bars.csv"
    frame.write_csv(path)
    storage = tmp_path / "storage"
    defs = build_definitions(
        tickers=[TICKER],
        source_kind="file",
        source_path=str(path),
        storage_url=str(storage),
        start=DAYS[0],
    )
    return path, storage, defs


def assert_names(message: str, path: Path, words: tuple[str, ...], row: int, day: str) -> None:
    assert "\n" not in message
    assert message.startswith(f"{path}: row {row} ({day}):"), message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("case", sorted(DAY_CASES))
def test_a_bad_bar_fails_only_its_own_partitions(case: str, tmp_path: Path) -> None:
    good = good_frame()
    bad = DAY_CASES[case].corrupt(good)
    path, storage, defs = setup(tmp_path, bad)
    bad_day = DAYS[BAD]
    # The day before, the bad day and the day after it, whose gap check would compare with it
    # (with a duplicate the day after has no row, so the one after that).
    after = BAD + 2 if case == "duplicate date" else BAD + 1
    days = [DAYS[BAD - 1], bad_day, DAYS[after]]
    instance = dg.DagsterInstance.ephemeral()

    outcomes = {day: run_day(defs, day, instance) for day in days}

    failed = outcomes[bad_day]
    assert not failed.success
    assert set(failed.failures) == {f"{TICKER}__{a}" for a in ASSETS}
    row = BAD + 2 if case == "duplicate date" else BAD + 1
    for message in failed.failures.values():
        assert_names(message, path, DAY_CASES[case].words, row, bad_day.isoformat())
    for asset in ASSETS:
        assert not stored(storage, asset, bad_day).exists(), f"{asset} {bad_day} was written"

    for day in days:
        if day == bad_day:
            continue
        assert outcomes[day].success, (day, outcomes[day].failures)
        source_row = good.filter(pl.col("date") == day.isoformat()).cast(
            {c: pl.Float64 for c in ("open", "high", "low", "close", "volume")}
        )
        bar = pl.read_parquet(stored(storage, "daily_bar", day))
        assert bar["date"].to_list() == [day]
        for column in ("open", "high", "low", "close", "volume"):
            assert bar[column].to_list() == source_row[column].to_list(), (day, column)
        opened = pl.read_parquet(stored(storage, "session_open", day))
        assert opened["open"].to_list() == source_row["open"].to_list()


def test_the_bar_checks_pass_on_good_bars_and_name_a_stale_one(tmp_path: Path) -> None:
    """A well-formed file whose bar of one day repeats the day before: that day's run stores the
    bar (nothing in it is impossible) and its `not_stale` check fails naming the day; the
    other checks, and every check of the days around it, pass."""
    good = good_frame()
    stale = good.with_columns(
        pl.when(pl.int_range(pl.len()) == BAD).then(pl.col(c).shift(1)).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close", "volume")
    )
    _, storage, defs = setup(tmp_path, stale)
    instance = dg.DagsterInstance.ephemeral()
    for day in (DAYS[BAD - 1], DAYS[BAD], DAYS[BAD + 1]):
        outcome = run_day(defs, day, instance)
        assert outcome.success, outcome.failures
        assert set(outcome.checks) == {"ohlc_consistent", "overnight_gap", "not_stale"}
        assert outcome.checks["ohlc_consistent"].passed
        assert outcome.checks["ohlc_consistent"].metadata["checked"].value == 1
        assert outcome.checks["overnight_gap"].passed
        stale_check = outcome.checks["not_stale"]
        assert stale_check.passed == (day != DAYS[BAD]), day
        named = [day.isoformat()] if day == DAYS[BAD] else []
        assert stale_check.metadata["repeated_days"].value == named
        assert stored(storage, "daily_bar", day).exists()


def test_the_bad_day_materializes_once_the_row_is_fixed(tmp_path: Path) -> None:
    path, storage, defs = setup(tmp_path, _swap_high_low(good_frame()))
    instance = dg.DagsterInstance.ephemeral()
    assert not run_day(defs, DAYS[BAD], instance).success
    good_frame().write_csv(path)
    assert run_day(defs, DAYS[BAD], instance).success
    assert stored(storage, "daily_bar", DAYS[BAD]).exists()


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_a_broken_file_fails_every_partition_in_one_line(case: str, tmp_path: Path) -> None:
    corrupt, words = FILE_CASES[case]
    path, storage, defs = setup(tmp_path, corrupt(good_frame()))
    instance = dg.DagsterInstance.ephemeral()
    # Days away from the broken row, on either side of it.
    for day in (DAYS[0], DAYS[-1]):
        outcome = run_day(defs, day, instance)
        assert not outcome.success
        assert set(outcome.failures) == {f"{TICKER}__{a}" for a in ASSETS}
        for message in outcome.failures.values():
            assert "\n" not in message
            assert message.startswith(f"{path}:"), message
            for word in words:
                assert word in message, (word, message)
    assert not storage.exists() or not any(p.is_file() for p in storage.rglob("*"))


def test_file_source_reports_the_first_problem_of_the_range_asked_for(tmp_path: Path) -> None:
    frame = _set(_swap_high_low(good_frame()), BAD + 2, "volume", "-5")
    path = tmp_path / "bars.csv"
    frame.write_csv(path)
    source = FileSource(path)

    before = source.bars(TICKER, DAYS[0], DAYS[BAD - 1])
    assert before["date"].to_list() == DAYS[:BAD]
    assert source.bars(TICKER, DAYS[BAD + 1], DAYS[BAD + 1])["date"].to_list() == [DAYS[BAD + 1]]
    assert source.session_open(TICKER, DAYS[BAD + 1]) == float(good_frame()["open"][BAD + 1])

    with pytest.raises(DataValidationError) as info:
        source.bars(TICKER, DAYS[BAD + 1], DAYS[-1])
    assert (info.value.row, info.value.day) == (BAD + 3, DAYS[BAD + 2])
    assert "negative volume" in str(info.value)
    # A range holding both bad days fails with the one a reader meets first in the file.
    with pytest.raises(DataValidationError) as info:
        source.bars(TICKER, DAYS[0], DAYS[-1])
    assert (info.value.row, info.value.day) == (BAD + 1, DAYS[BAD])
    with pytest.raises(DataValidationError, match=r"high .* < low"):
        source.session_open(TICKER, DAYS[BAD])
