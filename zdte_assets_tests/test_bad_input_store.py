"""Bad input files fail the `daily_bar` materialization with one line and write nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from zdte_assets.apps.cli import user_error
from zdte_assets.core import calendar
from zdte_assets.data.validation import DataValidationError
from zdte_assets.definitions import build_definitions
from zdte_assets.orchestration.runner import materialize_range

DAYS = calendar.trading_days(dt.date(2024, 3, 1), dt.date(2024, 3, 28))


def good_frame() -> pl.DataFrame:
    n = len(DAYS)
    opens = [100.0 + i for i in range(n)]
    return pl.DataFrame(
        {
            "date": [d.isoformat() for d in DAYS],
            "open": opens,
            "high": [o + 2.0 for o in opens],
            "low": [o - 2.0 for o in opens],
            "close": [o + 1.0 for o in opens],
            "volume": [1_000_000.0] * n,
        }
    )


def _set(frame: pl.DataFrame, row: int, column: str, value: object) -> pl.DataFrame:
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column], strict=False))


BAD_CASES = {
    "missing column": lambda f: f.drop("volume"),
    "NaN price": lambda f: _set(f, 5, "close", float("nan")),
    "non-positive price": lambda f: _set(f, 5, "low", -1.0),
    "high below low": lambda f: _set(f, 5, "high", 50.0),
    "open outside range": lambda f: _set(f, 5, "open", 500.0),
    "duplicate date": lambda f: _set(f, 5, "date", DAYS[4].isoformat()),
    "unsorted dates": lambda f: _set(
        _set(f, 5, "date", DAYS[6].isoformat()), 6, "date", DAYS[5].isoformat()
    ),
    "not a trading day": lambda f: _set(f, 5, "date", "2024-03-09"),
    "empty file": lambda f: f.head(0),
}


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_file_fails_materialization_and_leaves_store_unchanged(
    case: str, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    good = tmp_path / "good.csv"
    good_frame().write_csv(good)
    defs = build_definitions(
        tickers=["TEST"],
        source_kind="file",
        source_path=str(good),
        storage_url=str(storage),
        start=dt.date(2024, 1, 2),
    )
    instance = dg.DagsterInstance.ephemeral()
    first, last = DAYS[1].isoformat(), DAYS[-1].isoformat()
    materialize_range(defs, ["TEST/daily_bar"], first, last, instance)
    before = snapshot(storage)
    assert before, "the good file should have produced stored bars"

    bad = tmp_path / "bad.csv"
    BAD_CASES[case](good_frame()).write_csv(bad)
    bad_defs = build_definitions(
        tickers=["TEST"],
        source_kind="file",
        source_path=str(bad),
        storage_url=str(storage),
        start=dt.date(2024, 1, 2),
    )
    with pytest.raises(Exception) as info:
        materialize_range(bad_defs, ["TEST/daily_bar"], first, last, instance)
    inner = user_error(info.value)
    assert isinstance(inner, DataValidationError), f"{case}: {type(inner).__name__}: {inner}"
    message = str(inner)
    assert "\n" not in message
    assert str(bad) in message
    if case != "empty file" and case != "missing column":
        assert "row" in message
    assert snapshot(storage) == before, f"{case}: the store changed after a failed materialization"
