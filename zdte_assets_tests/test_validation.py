"""Bar validation: every bad input is rejected with one line naming file, row and problem."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zdte_assets.core.calendar import first_session, is_trading_day, trading_days
from zdte_assets.data.market_data import FileSource
from zdte_assets.data.validation import BARS_SCHEMA, DataValidationError, validate_bars

HEADER = ["date", "open", "high", "low", "close", "volume"]
DAYS = trading_days(dt.date(2024, 1, 2), dt.date(2024, 3, 28))


def good_rows(n: int = 30, seed: int = 7) -> list[dict[str, str]]:
    """A consistent random-walk series on real NYSE sessions, as CSV text cells."""
    rng = random.Random(seed)
    price = 100.0
    rows = []
    for day in DAYS[:n]:
        o = price * (1 + rng.gauss(0, 0.005))
        c = o * (1 + rng.gauss(0, 0.01))
        h = max(o, c) * (1 + abs(rng.gauss(0, 0.003)))
        low = min(o, c) * (1 - abs(rng.gauss(0, 0.003)))
        rows.append(
            {
                "date": day.isoformat(),
                "open": f"{o:.4f}",
                "high": f"{h:.4f}",
                "low": f"{low:.4f}",
                "close": f"{c:.4f}",
                "volume": str(rng.randint(1_000_000, 5_000_000)),
            }
        )
        price = c
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def load_error(path: Path) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        FileSource(path).bars("AAPL", dt.date(2000, 1, 1), dt.date(2030, 1, 1))
    return info.value


def assert_reported(err: Exception, path: Path, row: int | None, *words: str) -> None:
    message = str(err)
    assert "\n" not in message and "\r" not in message
    assert str(path) in message
    if row is not None:
        assert f"row {row} " in message or f"row {row}:" in message
        # The reported row really is the data row at that position in the file.
        data_line = path.read_text().splitlines()[row]
        assert data_line.split(",")[0].strip() in message or "date" in message
    for word in words:
        assert word in message, (word, message)


def corrupt(tmp_path: Path, index: int, **cells: str) -> tuple[Path, int]:
    rows = good_rows()
    rows[index].update(cells)
    return write_csv(tmp_path / "bars.csv", rows), index + 1


def test_good_file_passes_and_matches_the_bars_contract(tmp_path: Path) -> None:
    rows = good_rows()
    out = FileSource(write_csv(tmp_path / "bars.csv", rows)).bars(
        "AAPL", DAYS[0], DAYS[len(rows) - 1]
    )
    assert dict(out.schema) == BARS_SCHEMA
    assert out["date"].to_list() == [dt.date.fromisoformat(r["date"]) for r in rows]
    assert out["close"].to_list() == [float(r["close"]) for r in rows]
    assert out["volume"].to_list() == [float(r["volume"]) for r in rows]
    assert out["adj_close"].null_count() == len(rows)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("")
    assert_reported(load_error(path), path, None, "empty")


def test_header_only(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bars.csv", [])
    assert_reported(load_error(path), path, None, "no data rows")


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bars.csv", good_rows(), ["date", "open", "low", "close"])
    err = load_error(path)
    assert_reported(err, path, None, "missing required column", "high", "volume")
    assert "open," not in str(err).split("(found")[0]


def test_unparseable_date(tmp_path: Path) -> None:
    path, row = corrupt(tmp_path, 4, date="2024-13-45")
    assert_reported(load_error(path), path, row, "unparseable date", "2024-13-45")


def test_missing_date(tmp_path: Path) -> None:
    path, row = corrupt(tmp_path, 6, date="")
    assert_reported(load_error(path), path, row, "missing date")


@pytest.mark.parametrize("cell", ["", "nan", "NaN"])
def test_missing_or_nan_value(tmp_path: Path, cell: str) -> None:
    path, row = corrupt(tmp_path, 9, close=cell)
    assert_reported(load_error(path), path, row, "missing close")


def test_non_numeric_value(tmp_path: Path) -> None:
    path, row = corrupt(tmp_path, 3, open="12,5")
    assert_reported(load_error(path), path, row, "open", "not a number")


@pytest.mark.parametrize("price", ["0", "-3.5"])
def test_non_positive_price(tmp_path: Path, price: str) -> None:
    path, row = corrupt(tmp_path, 11, low=price)
    assert_reported(load_error(path), path, row, "non-positive low")


def test_negative_volume(tmp_path: Path) -> None:
    path, row = corrupt(tmp_path, 12, volume="-100")
    assert_reported(load_error(path), path, row, "negative volume")


def test_zero_volume_is_allowed(tmp_path: Path) -> None:
    path, _ = corrupt(tmp_path, 12, volume="0")
    out = FileSource(path).bars("AAPL", DAYS[0], DAYS[29])
    assert out["volume"][12] == 0.0


def test_high_below_low(tmp_path: Path) -> None:
    rows = good_rows()
    rows[16]["high"], rows[16]["low"] = rows[16]["low"], rows[16]["high"]
    path = write_csv(tmp_path / "bars.csv", rows)
    err = load_error(path)
    assert_reported(err, path, 17, "high", "< low", rows[16]["date"])


@pytest.mark.parametrize("column", ["open", "close"])
def test_open_or_close_outside_range(tmp_path: Path, column: str) -> None:
    rows = good_rows()
    above = float(rows[20]["high"]) * 1.01
    path, row = corrupt(tmp_path, 20, **{column: f"{above:.4f}"})
    assert_reported(load_error(path), path, row, column, "outside")


def test_range_check_tolerates_float_noise() -> None:
    base = pl.DataFrame(
        {
            "date": [DAYS[0]],
            "open": [100.0],
            "high": [101.0],
            "low": [99.0],
            "close": [101.0 * (1 + 1e-12)],
            "volume": [1],
        }
    )
    assert validate_bars(base, "mem").height == 1
    with pytest.raises(DataValidationError, match=r"close .* outside"):
        validate_bars(base.with_columns(close=pl.lit(101.0 * (1 + 1e-6))), "mem")


def test_duplicate_date(tmp_path: Path) -> None:
    path, row = corrupt(tmp_path, 8, date=good_rows()[7]["date"])
    assert_reported(load_error(path), path, row, "duplicate date", "row 8")


def test_unsorted_dates(tmp_path: Path) -> None:
    rows = good_rows()
    rows[14], rows[15] = rows[15], rows[14]
    path = write_csv(tmp_path / "bars.csv", rows)
    assert_reported(load_error(path), path, 16, "out of order")


@pytest.mark.parametrize("day", [dt.date(2024, 1, 15), dt.date(2024, 1, 13)])
def test_not_a_trading_day(tmp_path: Path, day: dt.date) -> None:
    assert not is_trading_day(day)  # MLK day (a Monday holiday) and a Saturday
    rows = [r for r in good_rows() if r["date"] < day.isoformat()]
    rows.append({**rows[-1], "date": day.isoformat()})
    path = write_csv(tmp_path / "bars.csv", rows)
    assert_reported(load_error(path), path, len(rows), "not an NYSE trading day")


def test_date_outside_calendar(tmp_path: Path) -> None:
    early = first_session() - dt.timedelta(days=365 * 3)
    rows = good_rows()
    rows[0]["date"] = early.isoformat()
    path = write_csv(tmp_path / "bars.csv", rows)
    assert_reported(load_error(path), path, 1, "outside the NYSE calendar")


def test_trading_day_check_can_be_disabled() -> None:
    frame = pl.DataFrame(
        {
            "date": ["2024-01-13"],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [0],
        }
    )
    assert validate_bars(frame, "mem", require_trading_days=False).height == 1
    with pytest.raises(DataValidationError):
        validate_bars(frame, "mem")


def test_first_problem_in_file_order_wins(tmp_path: Path) -> None:
    rows = good_rows()
    rows[25]["high"], rows[25]["low"] = rows[25]["low"], rows[25]["high"]
    rows[10]["volume"] = "-1"
    rows[18]["date"] = "garbage"
    path = write_csv(tmp_path / "bars.csv", rows)
    assert_reported(load_error(path), path, 11, "negative volume")


def test_names_are_case_and_space_insensitive_and_types_are_flexible() -> None:
    rows = good_rows(5)
    frame = pl.DataFrame(
        {
            " Date ": [dt.datetime.fromisoformat(r["date"]) for r in rows],
            "OPEN": [float(r["open"]) for r in rows],
            "High": [float(r["high"]) for r in rows],
            "low ": [float(r["low"]) for r in rows],
            "Close": [float(r["close"]) for r in rows],
            "Volume": [int(r["volume"]) for r in rows],
            "Adj Close": [float(r["close"]) * 0.98 for r in rows],
            "comment": ["x"] * 5,
        }
    )
    out = validate_bars(frame, "mem")
    assert dict(out.schema) == BARS_SCHEMA
    assert out["date"].to_list() == [dt.date.fromisoformat(r["date"]) for r in rows]
    assert out["adj_close"].to_list() == [float(r["close"]) * 0.98 for r in rows]


def test_row_numbers_can_be_supplied_for_filtered_frames() -> None:
    rows = good_rows(4)
    rows[2]["volume"] = "-5"
    frame = pl.DataFrame(rows)
    with pytest.raises(DataValidationError) as info:
        validate_bars(frame, "multi.csv", rows=[2, 5, 9, 12])
    assert "row 9 " in str(info.value)
    assert info.value.row == 9
    assert info.value.day == dt.date.fromisoformat(rows[2]["date"])


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=29),
    kind=st.sampled_from(["high<low", "neg volume", "bad date", "zero close", "blank open"]),
)
def test_any_single_corruption_is_reported_at_its_row(index: int, kind: str) -> None:
    rows = good_rows()
    row = rows[index]
    if kind == "high<low":
        row["high"], row["low"] = row["low"], row["high"]
    elif kind == "neg volume":
        row["volume"] = "-1"
    elif kind == "bad date":
        row["date"] = "not-a-date"
    elif kind == "zero close":
        row["close"] = "0"
    else:
        row["open"] = ""
    with pytest.raises(DataValidationError) as info:
        validate_bars(pl.DataFrame(rows), "prop.csv")
    assert info.value.row == index + 1
    assert str(info.value).startswith(f"prop.csv: row {index + 1}")
