"""Market-data sources: offline sample, CSV/Parquet files, and yfinance at its boundary."""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
import yfinance
from curl_cffi.requests import exceptions as curl_exceptions
from yfinance.exceptions import YFRateLimitError, YFTzMissingError

from zdte_assets.core.calendar import NY, trading_days
from zdte_assets.data import market_data
from zdte_assets.data.market_data import (
    FileSource,
    MarketDataError,
    MarketDataSource,
    SampleSource,
    YFinanceSource,
    source_from_settings,
)
from zdte_assets.data.validation import BARS_SCHEMA, DataValidationError

DAYS = trading_days(dt.date(2024, 3, 1), dt.date(2024, 4, 30))


def series(n: int, seed: int) -> dict[str, list[Any]]:
    """Consistent random OHLCV columns on real sessions (seeded)."""
    rng = random.Random(seed)
    price = 50.0 + 100 * rng.random()
    out: dict[str, list[Any]] = {k: [] for k in ("date", "open", "high", "low", "close", "volume")}
    for day in DAYS[:n]:
        o = price * (1 + rng.gauss(0, 0.005))
        c = o * (1 + rng.gauss(0, 0.01))
        out["date"].append(day)
        out["open"].append(round(o, 4))
        out["high"].append(round(max(o, c) * 1.004, 4))
        out["low"].append(round(min(o, c) * 0.996, 4))
        out["close"].append(round(c, 4))
        out["volume"].append(rng.randint(10**6, 10**7))
        price = c
    return out


def one_line(err: BaseException) -> str:
    message = str(err)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- sample


def test_sample_loads_the_documented_rows() -> None:
    out = SampleSource().bars("AAPL", dt.date(2000, 1, 1), dt.date(2030, 1, 1))
    assert out.height == 1509
    assert out["date"][0] == dt.date(2019, 1, 2)
    assert out["date"][-1] == dt.date(2024, 12, 30)
    assert dict(out.schema) == BARS_SCHEMA
    assert out["adj_close"].null_count() == 0


def test_sample_values_match_the_packaged_file() -> None:
    import hvsampledata

    reference = hvsampledata.apple_stocks("pandas").set_index("date")
    day = dt.date(2022, 6, 15)
    out = SampleSource().bars("aapl", day, day)
    assert out.height == 1
    assert out["close"][0] == pytest.approx(reference.at[pd.Timestamp(day), "close"])
    assert SampleSource().session_open("AAPL", day) == pytest.approx(
        reference.at[pd.Timestamp(day), "open"]
    )


def test_sample_is_loaded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import hvsampledata

    calls: list[str] = []
    original = hvsampledata.apple_stocks

    def counting(engine: Any) -> Any:
        calls.append(engine)
        return original(engine)

    market_data._sample_bars.cache_clear()
    monkeypatch.setattr(hvsampledata, "apple_stocks", counting)
    try:
        for _ in range(2):
            SampleSource().bars("AAPL", dt.date(2020, 1, 1), dt.date(2020, 2, 1))
        assert calls == ["polars"]
    finally:
        market_data._sample_bars.cache_clear()


def test_sample_rejects_other_tickers() -> None:
    with pytest.raises(MarketDataError) as info:
        SampleSource().bars("MSFT", dt.date(2020, 1, 1), dt.date(2020, 2, 1))
    message = one_line(info.value)
    assert "MSFT" in message and "AAPL only" in message


def test_sample_range_without_data_raises() -> None:
    with pytest.raises(MarketDataError) as info:
        SampleSource().bars("AAPL", dt.date(2024, 12, 31), dt.date(2025, 1, 10))
    message = one_line(info.value)
    assert "2024-12-31" in message and "AAPL" in message


def test_sources_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(SampleSource(), MarketDataSource)
    assert isinstance(FileSource(tmp_path / "x.csv"), MarketDataSource)
    assert isinstance(YFinanceSource(), MarketDataSource)


# --------------------------------------------------------------------------- file


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_file_source_reads_csv_and_parquet_with_any_case(tmp_path: Path, suffix: str) -> None:
    data = series(20, seed=1)
    frame = pl.DataFrame(data).rename(
        {"date": " Date", "open": "OPEN", "high": "High", "low": "low", "close": "Close"}
    )
    frame = frame.with_columns(pl.Series("Adj_Close", [c * 0.99 for c in data["close"]]))
    path = tmp_path / f"bars{suffix}"
    if suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    out = FileSource(path).bars("ANY", DAYS[2], DAYS[9])
    assert out["date"].to_list() == data["date"][2:10]
    assert out["open"].to_list() == pytest.approx(data["open"][2:10])
    assert out["volume"].to_list() == [float(v) for v in data["volume"][2:10]]
    assert out["adj_close"].to_list() == pytest.approx([c * 0.99 for c in data["close"][2:10]])
    assert dict(out.schema) == BARS_SCHEMA


def multi_ticker_file(tmp_path: Path) -> tuple[Path, dict[str, dict[str, list[Any]]]]:
    """AAPL and MSFT rows interleaved, so file row numbers differ from per-ticker positions."""
    data = {"AAPL": series(10, seed=2), "MSFT": series(10, seed=3)}
    rows = []
    for i in range(10):
        for ticker, label in (("AAPL", "aapl"), ("MSFT", "Msft ")):
            rows.append({"Ticker": label, **{k: v[i] for k, v in data[ticker].items()}})
    path = tmp_path / "multi.csv"
    pl.DataFrame(rows).write_csv(path)
    return path, data


def test_multi_ticker_file_is_filtered_case_insensitively(tmp_path: Path) -> None:
    path, data = multi_ticker_file(tmp_path)
    source = FileSource(path)
    for ticker in ("AAPL", "msft"):
        out = source.bars(ticker, DAYS[0], DAYS[9])
        expected = data[ticker.upper()]
        assert out["date"].to_list() == expected["date"]
        assert out["close"].to_list() == pytest.approx(expected["close"])
        assert "ticker" not in out.columns
    assert source.session_open("MSFT", DAYS[4]) == pytest.approx(data["MSFT"]["open"][4])


def test_multi_ticker_unknown_ticker_lists_available(tmp_path: Path) -> None:
    path, _ = multi_ticker_file(tmp_path)
    with pytest.raises(MarketDataError) as info:
        FileSource(path).bars("TSLA", DAYS[0], DAYS[9])
    message = one_line(info.value)
    assert "TSLA" in message and "AAPL, MSFT" in message and str(path) in message


def test_multi_ticker_errors_report_the_row_in_the_file(tmp_path: Path) -> None:
    path, _ = multi_ticker_file(tmp_path)
    lines = path.read_text().splitlines()
    # MSFT's 4th bar is data row 8 of the file (rows alternate AAPL, MSFT).
    row = 8
    cells = lines[row].split(",")
    assert cells[0].strip().upper() == "MSFT"
    cells[-1] = "-7"  # volume is the last column
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    source = FileSource(path)
    assert source.bars("AAPL", DAYS[0], DAYS[9]).height == 10
    with pytest.raises(DataValidationError) as info:
        source.bars("MSFT", DAYS[0], DAYS[9])
    message = one_line(info.value)
    assert str(path) in message and f"row {row} " in message and "negative volume" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(MarketDataError) as info:
        FileSource(path).bars("AAPL", DAYS[0], DAYS[1])
    message = one_line(info.value)
    assert str(path) in message and "not found" in message


def test_unsupported_suffix(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match=r"\.xlsx"):
        FileSource(tmp_path / "bars.xlsx")


def test_file_range_without_data(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    pl.DataFrame(series(5, seed=4)).write_csv(path)
    with pytest.raises(MarketDataError) as info:
        FileSource(path).bars("AAPL", dt.date(2023, 1, 3), dt.date(2023, 1, 31))
    assert "2023-01-03" in one_line(info.value)


def test_file_is_read_once_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bars.csv"
    first = series(5, seed=5)
    pl.DataFrame(first).write_csv(path)
    reads: list[Path] = []
    original = pl.read_csv

    def counting(source: Any, **kwargs: Any) -> pl.DataFrame:
        reads.append(source)
        return original(source, **kwargs)

    monkeypatch.setattr(pl, "read_csv", counting)
    src = FileSource(path)
    for _ in range(3):
        src.bars("AAPL", DAYS[0], DAYS[4])
    assert len(reads) == 1

    second = series(5, seed=6)
    pl.DataFrame(second).write_csv(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    out = src.bars("AAPL", DAYS[0], DAYS[4])
    assert len(reads) == 2
    assert out["close"].to_list() == pytest.approx(second["close"])


# --------------------------------------------------------------------------- yfinance

FIXED_NOW = dt.datetime(2024, 6, 3, 12, 0, tzinfo=NY)


def yahoo_answer(data: dict[str, list[Any]], adj: bool = True) -> pd.DataFrame:
    """The shape Ticker.history(interval='1d', auto_adjust=False) returns."""
    index = pd.DatetimeIndex([pd.Timestamp(d) for d in data["date"]]).tz_localize(
        "America/New_York"
    )
    index.name = "Date"
    frame = pd.DataFrame(
        {
            "Open": data["open"],
            "High": data["high"],
            "Low": data["low"],
            "Close": data["close"],
            "Volume": np.array(data["volume"], dtype="int64"),
        },
        index=index,
    )
    if adj:
        frame.insert(4, "Adj Close", [c * 0.995 for c in data["close"]])
    return frame


class Recorder:
    """A downloader that replays scripted outcomes and records its calls."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, ticker: str, **kwargs: Any) -> Any:
        self.calls.append((ticker, kwargs))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def yf_source(downloader: Recorder, sleeps: list[float], **kwargs: Any) -> YFinanceSource:
    return YFinanceSource(
        downloader=downloader, sleep=sleeps.append, clock=lambda: FIXED_NOW, **kwargs
    )


def test_yfinance_good_answer_is_converted() -> None:
    data = series(8, seed=10)
    recorder = Recorder(yahoo_answer(data))
    sleeps: list[float] = []
    out = yf_source(recorder, sleeps).bars("aapl", DAYS[0], DAYS[7])
    assert out["date"].to_list() == data["date"]
    assert out["open"].to_list() == pytest.approx(data["open"])
    assert out["high"].to_list() == pytest.approx(data["high"])
    assert out["low"].to_list() == pytest.approx(data["low"])
    assert out["close"].to_list() == pytest.approx(data["close"])
    assert out["volume"].to_list() == [float(v) for v in data["volume"]]
    assert out["adj_close"].to_list() == pytest.approx([c * 0.995 for c in data["close"]])
    assert dict(out.schema) == BARS_SCHEMA
    assert sleeps == []
    ticker, kwargs = recorder.calls[0]
    assert ticker == "AAPL"
    assert kwargs == {
        "start": DAYS[0].isoformat(),
        "end": (DAYS[7] + dt.timedelta(days=1)).isoformat(),
        "interval": "1d",
        "auto_adjust": False,
        "actions": False,
    }


def test_yfinance_without_adj_close_gives_null_column() -> None:
    data = series(3, seed=11)
    out = yf_source(Recorder(yahoo_answer(data, adj=False)), []).bars("AAPL", DAYS[0], DAYS[2])
    assert out["adj_close"].null_count() == 3


@pytest.mark.parametrize(
    "error",
    [ConnectionError("reset by peer"), TimeoutError("timed out"), curl_exceptions.Timeout("t")],
    ids=["connection", "timeout", "curl-timeout"],
)
def test_yfinance_retries_transient_errors_then_succeeds(error: Exception) -> None:
    data = series(4, seed=12)
    recorder = Recorder(error, error, yahoo_answer(data))
    sleeps: list[float] = []
    out = yf_source(recorder, sleeps, retries=3, backoff_seconds=0.5).bars("AAPL", DAYS[0], DAYS[3])
    assert out.height == 4
    assert len(recorder.calls) == 3
    assert sleeps == [0.5 * 2**k for k in range(2)]
    assert sleeps[1] > sleeps[0]


def test_yfinance_persistent_failure_names_ticker_and_range() -> None:
    recorder = Recorder(ConnectionError("no route to host"))
    sleeps: list[float] = []
    with pytest.raises(MarketDataError) as info:
        yf_source(recorder, sleeps, retries=2, backoff_seconds=1.0).bars("MSFT", DAYS[0], DAYS[5])
    message = one_line(info.value)
    assert "MSFT" in message and str(DAYS[0]) in message and str(DAYS[5]) in message
    assert "network" in message
    assert len(recorder.calls) == 3
    assert sleeps == [1.0, 2.0]


def test_yfinance_rate_limit_raises_after_retries() -> None:
    recorder = Recorder(YFRateLimitError())
    sleeps: list[float] = []
    with pytest.raises(MarketDataError) as info:
        yf_source(recorder, sleeps, retries=3, backoff_seconds=2.0).bars("AAPL", DAYS[0], DAYS[0])
    message = one_line(info.value)
    assert "rate limit" in message and "AAPL" in message and f"on {DAYS[0]}" in message
    assert len(recorder.calls) == 4
    assert sleeps == [2.0, 4.0, 8.0]


def test_yfinance_empty_answer_is_an_error_without_retry() -> None:
    from yfinance import utils

    recorder = Recorder(utils.empty_df())

    sleeps: list[float] = []
    with pytest.raises(MarketDataError) as info:
        yf_source(recorder, sleeps).bars("ZZZZ", DAYS[3], DAYS[3])
    message = one_line(info.value)
    assert f"no data for ZZZZ on {DAYS[3]}" in message
    assert "unknown ticker or no session" in message
    assert len(recorder.calls) == 1 and sleeps == []


def test_yfinance_ticker_missing_exception_is_not_retried() -> None:
    recorder = Recorder(YFTzMissingError("ZZZZ"))
    sleeps: list[float] = []
    with pytest.raises(MarketDataError, match="no data for ZZZZ"):
        yf_source(recorder, sleeps).bars("ZZZZ", DAYS[0], DAYS[2])
    assert len(recorder.calls) == 1 and sleeps == []


def test_yfinance_malformed_columns() -> None:
    answer = yahoo_answer(series(3, seed=13)).drop(columns=["Volume", "Low"])
    with pytest.raises(MarketDataError) as info:
        yf_source(Recorder(answer), []).bars("AAPL", DAYS[0], DAYS[2])
    message = one_line(info.value)
    assert "malformed" in message and "Low" in message and "Volume" in message


def test_yfinance_malformed_types() -> None:
    answer = yahoo_answer(series(3, seed=14))
    answer["Open"] = ["a", "b", "c"]
    with pytest.raises(MarketDataError, match=r"column Open .* expected numbers"):
        yf_source(Recorder(answer), []).bars("AAPL", DAYS[0], DAYS[2])
    with pytest.raises(MarketDataError, match="expected a pandas DataFrame"):
        yf_source(Recorder({"Open": 1}), []).bars("AAPL", DAYS[0], DAYS[2])
    answer = yahoo_answer(series(3, seed=14)).reset_index(drop=True)
    with pytest.raises(MarketDataError, match="index"):
        yf_source(Recorder(answer), []).bars("AAPL", DAYS[0], DAYS[2])


def test_yfinance_bad_values_fail_validation_with_source_name() -> None:
    data = series(5, seed=15)
    answer = yahoo_answer(data)
    answer.loc[answer.index[3], "Close"] = np.nan
    with pytest.raises(DataValidationError) as info:
        yf_source(Recorder(answer), []).bars("AAPL", DAYS[0], DAYS[4])
    message = one_line(info.value)
    assert message.startswith(f"yfinance:AAPL: row 4 ({DAYS[3]})") and "missing close" in message


def test_yfinance_drops_todays_unfinished_bar() -> None:
    data = series(3, seed=16)
    today = data["date"][-1]
    during = dt.datetime.combine(today, dt.time(11, 0), tzinfo=NY)
    after = dt.datetime.combine(today, dt.time(17, 0), tzinfo=NY)
    answer = yahoo_answer(data)
    early = YFinanceSource(downloader=Recorder(answer), sleep=lambda s: None, clock=lambda: during)
    assert early.bars("AAPL", data["date"][0], today)["date"].to_list() == data["date"][:-1]
    with pytest.raises(MarketDataError, match="not yet closed"):
        early.bars("AAPL", today, today)
    late = YFinanceSource(downloader=Recorder(answer), sleep=lambda s: None, clock=lambda: after)
    assert late.bars("AAPL", data["date"][0], today)["date"].to_list() == data["date"]


def minute_bars(day: dt.date, start: dt.time, opens: list[float]) -> pd.DataFrame:
    first = pd.Timestamp(dt.datetime.combine(day, start), tz="America/New_York")
    index = pd.date_range(first, periods=len(opens), freq="1min", name="Datetime")
    return pd.DataFrame(
        {
            "Open": opens,
            "High": [o + 0.1 for o in opens],
            "Low": [o - 0.1 for o in opens],
            "Close": opens,
            "Adj Close": opens,
            "Volume": [1000] * len(opens),
        },
        index=index,
    )


def test_yfinance_session_open_today_uses_first_minute_bar_from_0930() -> None:
    day = DAYS[10]
    now = dt.datetime.combine(day, dt.time(9, 45), tzinfo=NY)
    # A stray pre-open bar at 09:29 must be skipped.
    recorder = Recorder(minute_bars(day, dt.time(9, 29), [170.0, 171.25, 171.5]))
    source = YFinanceSource(downloader=recorder, sleep=lambda s: None, clock=lambda: now)
    assert source.session_open("AAPL", day) == 171.25
    assert recorder.calls[0][1]["interval"] == "1m"
    assert recorder.calls[0][1]["start"] == day.isoformat()


def test_yfinance_session_open_today_before_the_bell_is_an_error() -> None:
    day = DAYS[10]
    now = dt.datetime.combine(day, dt.time(9, 10), tzinfo=NY)
    recorder = Recorder(minute_bars(day, dt.time(9, 30), [1.0]))
    source = YFinanceSource(downloader=recorder, sleep=lambda s: None, clock=lambda: now)
    with pytest.raises(MarketDataError, match="not opened yet"):
        source.session_open("AAPL", day)
    assert recorder.calls == []


def test_yfinance_session_open_past_day_uses_daily_bar() -> None:
    data = series(5, seed=17)
    recorder = Recorder(yahoo_answer({k: v[2:3] for k, v in data.items()}))
    assert yf_source(recorder, []).session_open("AAPL", data["date"][2]) == pytest.approx(
        data["open"][2]
    )
    assert recorder.calls[0][1]["interval"] == "1d"


def test_yfinance_session_open_on_a_holiday_is_an_error() -> None:
    with pytest.raises(MarketDataError, match="not an NYSE session"):
        yf_source(Recorder(None), []).session_open("AAPL", dt.date(2024, 3, 29))


def test_default_downloader_calls_yfinance_ticker_history(monkeypatch: pytest.MonkeyPatch) -> None:
    data = series(2, seed=18)
    seen: dict[str, Any] = {}

    class FakeTicker:
        def __init__(self, ticker: str) -> None:
            seen["ticker"] = ticker

        def history(self, **kwargs: Any) -> pd.DataFrame:
            seen["kwargs"] = kwargs
            seen["hide_exceptions"] = yfinance.config.debug.hide_exceptions
            return yahoo_answer(data)

    before = yfinance.config.debug.hide_exceptions
    monkeypatch.setattr(yfinance, "Ticker", FakeTicker)
    source = YFinanceSource(retries=0, sleep=lambda s: None, clock=lambda: FIXED_NOW)
    out = source.bars("AAPL", data["date"][0], data["date"][1])
    assert out["close"].to_list() == pytest.approx(data["close"])
    assert seen["ticker"] == "AAPL"
    assert seen["kwargs"] == {
        "start": data["date"][0].isoformat(),
        "end": (data["date"][1] + dt.timedelta(days=1)).isoformat(),
        "interval": "1d",
        "auto_adjust": False,
        "actions": False,
    }
    # Errors must surface during the call (so they can be retried) and the switch is restored.
    assert seen["hide_exceptions"] is False
    assert yfinance.config.debug.hide_exceptions == before


# --------------------------------------------------------------------------- factory


def test_source_from_settings(tmp_path: Path) -> None:
    assert isinstance(source_from_settings("sample", None), SampleSource)
    assert isinstance(source_from_settings(" YFinance ", None), YFinanceSource)
    file_source = source_from_settings("file", str(tmp_path / "bars.parquet"))
    assert isinstance(file_source, FileSource)
    assert file_source.path == tmp_path / "bars.parquet"


def test_source_from_settings_errors() -> None:
    with pytest.raises(ValueError, match="needs a path"):
        source_from_settings("file", None)
    with pytest.raises(ValueError) as info:
        source_from_settings("bloomberg", None)
    message = one_line(info.value)
    assert "bloomberg" in message
    for kind in ("sample", "file", "yfinance"):
        assert kind in message
