"""Market-data sources: the bundled offline sample, a local CSV/Parquet file, and Yahoo via yfinance.

All three answer the same two questions so the pipeline does not care where bars come from:
the validated daily bars of a range of sessions, and the official open of one session (the only
price the model may use at 09:30). Every failure is raised, never papered over with an empty
frame: a missing day would otherwise surface much later as a silently shorter training set or a
prediction made from stale data. Messages are one line naming the ticker, the day or range and the
problem, because they end up in a run log read by someone deciding whether to trade.

Sources return bars as they are found (raw prices); split adjustment is a separate step
(:mod:`zdte_assets.data.adjustment`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd
import polars as pl

from zdte_assets.core.calendar import (
    NY,
    is_trading_day,
    session_close_time,
    session_open_time,
)
from zdte_assets.core.errors import ZdteError, first_line
from zdte_assets.data.validation import CheckedBars, DataValidationError, check_bars, validate_bars

SAMPLE_TICKER = "AAPL"
SOURCE_KINDS: tuple[str, ...] = ("sample", "file", "yfinance")
#: A daily bar is only trusted once the session is this long over; before that Yahoo's "daily"
#: row for today is a live snapshot whose close is the last trade, not the official close.
DAILY_BAR_SETTLE = dt.timedelta(minutes=15)

Downloader = Callable[..., Any]


class MarketDataError(ZdteError, RuntimeError):
    """A source could not deliver the requested bars; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@runtime_checkable
class MarketDataSource(Protocol):
    """What the pipeline needs from any provider of daily bars."""

    name: str

    def bars(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Validated Bars frame for the sessions in [start, end]; raises if there are none."""
        ...

    def session_open(self, ticker: str, day: dt.date) -> float:
        """Official open of the session ``day``, the price known at 09:30 New York."""
        ...


def _span(start: dt.date, end: dt.date) -> str:
    return f"on {start}" if start == end else f"from {start} to {end}"


def _norm_ticker(ticker: str) -> str:
    return ticker.strip().upper()


def _in_range(frame: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    return frame.filter(pl.col("date").is_between(start, end, closed="both"))


def _open_from_daily(source: MarketDataSource, ticker: str, day: dt.date, label: str) -> float:
    if not is_trading_day(day):
        raise MarketDataError(f"{label}: {ticker} {day} is not an NYSE session")
    frame = source.bars(ticker, day, day)
    return float(frame.get_column("open")[0])


# --------------------------------------------------------------------------- sample


@lru_cache(maxsize=1)
def _sample_bars() -> pl.DataFrame:
    import hvsampledata

    return validate_bars(hvsampledata.apple_stocks("polars"), "sample")


class SampleSource:
    """AAPL daily bars 2019-01-02..2024-12-30 bundled in ``hvsampledata``: works offline.

    The sample's prices already include the 2020 4:1 split; ``adj_close`` also folds in
    dividends.
    """

    name = "sample"

    def _frame(self, ticker: str) -> pl.DataFrame:
        if _norm_ticker(ticker) != SAMPLE_TICKER:
            raise MarketDataError(
                f"sample: no data for ticker {ticker!r}: the sample has {SAMPLE_TICKER} only"
            )
        return _sample_bars()

    def bars(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        frame = self._frame(ticker)
        out = _in_range(frame, start, end)
        if out.height == 0:
            first, last = frame["date"][0], frame["date"][-1]
            raise MarketDataError(
                f"sample: no data for {SAMPLE_TICKER} {_span(start, end)} "
                f"(the sample covers {first} to {last})"
            )
        return out

    def session_open(self, ticker: str, day: dt.date) -> float:
        self._frame(ticker)
        return _open_from_daily(self, _norm_ticker(ticker), day, "sample")


# --------------------------------------------------------------------------- file


class FileSource:
    """Daily bars from a CSV or Parquet file, optionally holding several tickers.

    Expected columns (any case): ``date, open, high, low, close, volume``, optional
    ``adj_close`` and optional ``ticker``. Without a ``ticker`` column the file is taken to be
    the series of whichever ticker is asked for. The file is read once and re-read only when its
    modification time changes, so a file refreshed by hand is picked up without a restart.

    A request fails only on problems that reach the days it asks for (a bad bar of that range,
    or a problem that makes the whole file unusable; see :mod:`zdte_assets.data.validation`): the
    daily partitions ask for one day each, and one bad row must not fail every other day.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        suffix = self.path.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise MarketDataError(
                f"{self.path}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet"
            )
        self.name = f"file:{self.path}"
        self._raw_key: tuple[str, int] | None = None
        self._raw: pl.DataFrame | None = None
        self._validated: dict[str, CheckedBars] = {}

    def _read(self) -> pl.DataFrame:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            raise MarketDataError(f"{self.path}: file not found") from None
        key = (str(self.path.resolve()), mtime)
        if self._raw is None or self._raw_key != key:
            self._raw = self._load()
            self._raw_key = key
            self._validated = {}
        return self._raw

    def _load(self) -> pl.DataFrame:
        source = str(self.path)
        try:
            if self.path.suffix.lower() == ".csv":
                # Everything as text: validation then reports bad values with their row number
                # instead of the reader failing on the first odd cell.
                return pl.read_csv(self.path, infer_schema=False)
            return pl.read_parquet(self.path)
        except pl.exceptions.NoDataError:
            raise DataValidationError(source, "empty file") from None
        except (pl.exceptions.ComputeError, OSError) as exc:
            raise DataValidationError(
                source, f"cannot read file: {first_line(str(exc), '(no message)')}"
            ) from exc

    def _ticker_frame(self, ticker: str) -> CheckedBars:
        raw = self._read()
        wanted = _norm_ticker(ticker)
        ticker_col = next((c for c in raw.columns if c.strip().lower() == "ticker"), None)
        key = "" if ticker_col is None else wanted
        if key in self._validated:
            return self._validated[key]
        if ticker_col is None:
            frame = check_bars(raw, str(self.path))
        else:
            tickers = (
                raw.get_column(ticker_col).cast(pl.String).str.strip_chars().str.to_uppercase()
            )
            rows = pl.int_range(1, raw.height + 1, eager=True)
            mask = tickers == wanted
            if not mask.fill_null(False).any():
                available = sorted(t for t in tickers.unique().to_list() if t)
                raise MarketDataError(
                    f"{self.path}: ticker {wanted} not in file (available: "
                    f"{', '.join(available) or 'none'})"
                )
            selected = raw.filter(mask.fill_null(False)).drop(ticker_col)
            frame = check_bars(selected, str(self.path), rows=rows.filter(mask.fill_null(False)))
        self._validated[key] = frame
        return frame

    def bars(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        checked = self._ticker_frame(ticker)
        problem = checked.problem_for(start, end)
        if problem is not None:
            raise problem.error()
        out = _in_range(checked.bars, start, end)
        if out.height == 0:
            covers = f"{checked.span[0]} to {checked.span[1]}" if checked.span else "no dates"
            raise MarketDataError(
                f"{self.path}: no data for {_norm_ticker(ticker)} {_span(start, end)} "
                f"(the file covers {covers})"
            )
        return out

    def session_open(self, ticker: str, day: dt.date) -> float:
        return _open_from_daily(self, _norm_ticker(ticker), day, str(self.path))


# --------------------------------------------------------------------------- yfinance

_PANDAS_COLUMNS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Volume": "volume",
}


def yfinance_history(ticker: str, **kwargs: Any) -> pd.DataFrame:
    """Default downloader: ``yfinance.Ticker(ticker).history(**kwargs)`` with errors raised.

    yfinance by default logs network failures and unknown tickers and returns an empty table,
    which would make a dropped connection indistinguishable from "no such ticker" and defeat the
    retry. Its ``debug.hide_exceptions`` switch is turned off for the duration of the call.
    """
    import yfinance

    debug = yfinance.config.debug
    previous = debug.hide_exceptions
    debug.hide_exceptions = False
    try:
        history: pd.DataFrame = yfinance.Ticker(ticker).history(**kwargs)
        return history
    finally:
        debug.hide_exceptions = previous


def _now_new_york() -> dt.datetime:
    return dt.datetime.now(NY)


class YFinanceSource:
    """Yahoo Finance daily (and, for today's open, 1-minute) bars through yfinance.

    ``retries`` is the number of additional attempts after the first on a transient failure
    (connection error, timeout, rate limit, Yahoo being down); the waits between attempts are
    ``backoff_seconds * 2**k`` for k = 0, 1, .... ``downloader`` replaces
    :func:`yfinance_history` (same keyword arguments, same return value) so the boundary can be
    driven without a network; ``sleep`` and ``clock`` (an aware "now") exist for the same reason.
    Prices are requested unadjusted (``auto_adjust=False``); Yahoo's unadjusted prices are already
    split-adjusted, and ``Adj Close`` is kept for split detection only.
    """

    name = "yfinance"

    def __init__(
        self,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        downloader: Downloader | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], dt.datetime] = _now_new_york,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.downloader: Downloader = downloader or yfinance_history
        self.sleep = sleep
        self.clock = clock

    def bars(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        ticker = _norm_ticker(ticker)
        answer = self._download(ticker, start, end, interval="1d")
        raw = _to_raw_frame(answer, ticker, start, end)
        frame = validate_bars(raw, f"yfinance:{ticker}")
        frame = _in_range(frame, start, end)
        # Drop today's row until the session is over: its "close" is still moving.
        now = self.clock().astimezone(NY)
        today = now.date()
        if is_trading_day(today) and now < session_close_time(today) + DAILY_BAR_SETTLE:
            frame = frame.filter(pl.col("date") < today)
        if frame.height == 0:
            raise MarketDataError(
                f"yfinance: no completed session for {ticker} {_span(start, end)} "
                "(unknown ticker, no session, or today's session not yet closed)"
            )
        return frame

    def session_open(self, ticker: str, day: dt.date) -> float:
        ticker = _norm_ticker(ticker)
        if not is_trading_day(day):
            raise MarketDataError(f"yfinance: {ticker} {day} is not an NYSE session")
        now = self.clock().astimezone(NY)
        if day > now.date():
            raise MarketDataError(f"yfinance: {ticker} {day} is in the future")
        if day < now.date():
            return _open_from_daily(self, ticker, day, "yfinance")
        opens_at = session_open_time(day)
        if now < opens_at:
            raise MarketDataError(
                f"yfinance: {ticker} session {day} has not opened yet (opens {opens_at:%H:%M} NY)"
            )
        answer = self._download(ticker, day, day, interval="1m")
        _check_shape(answer, ticker, day, day, needed=("Open",))
        stamps = _index_in_new_york(answer, ticker, day, day)
        opens = pd.to_numeric(answer["Open"], errors="coerce").to_numpy()
        for stamp, value in zip(stamps, opens, strict=True):
            if stamp >= opens_at and stamp.date() == day and value == value and value > 0:
                return float(value)
        raise MarketDataError(
            f"yfinance: no 1-minute bar at or after {opens_at:%H:%M} NY for {ticker} on {day}"
        )

    def _download(self, ticker: str, start: dt.date, end: dt.date, interval: str) -> Any:
        """Call the downloader, retrying transient failures with exponential backoff."""
        transient, missing = _yfinance_error_classes()
        attempts = self.retries + 1
        last: BaseException | None = None
        for attempt in range(attempts):
            try:
                return self.downloader(
                    ticker,
                    start=start.isoformat(),
                    # yfinance's end is exclusive.
                    end=(end + dt.timedelta(days=1)).isoformat(),
                    interval=interval,
                    auto_adjust=False,
                    actions=False,
                )
            except missing as exc:
                raise MarketDataError(
                    f"yfinance: no data for {ticker} {_span(start, end)} "
                    f"(unknown ticker or no session): {first_line(str(exc), '(no message)')}"
                ) from exc
            except transient as exc:
                last = exc
                if attempt + 1 < attempts:
                    self.sleep(self.backoff_seconds * 2**attempt)
            except Exception as exc:
                raise MarketDataError(
                    f"yfinance: request for {ticker} {_span(start, end)} failed: "
                    f"{type(exc).__name__}: {first_line(str(exc), '(no message)')}"
                ) from exc
        assert last is not None
        kind = "rate limited by Yahoo" if _is_rate_limit(last) else "network failure"
        raise MarketDataError(
            f"yfinance: {kind} for {ticker} {_span(start, end)} after {attempts} attempts: "
            f"{type(last).__name__}: {first_line(str(last), '(no message)')}"
        ) from last


def _yfinance_error_classes() -> tuple[tuple[type[BaseException], ...], type[BaseException]]:
    """(transient errors worth a retry, error meaning the ticker/range has no data)."""
    from yfinance.exceptions import YFDataException, YFRateLimitError, YFTickerMissingError

    # OSError covers ConnectionError, TimeoutError and both HTTP backends' request errors
    # (requests' and curl_cffi's RequestException derive from it).
    return (YFRateLimitError, YFDataException, OSError), YFTickerMissingError


def _is_rate_limit(exc: BaseException) -> bool:
    from yfinance.exceptions import YFRateLimitError

    return isinstance(exc, YFRateLimitError)


def _check_shape(
    answer: Any, ticker: str, start: dt.date, end: dt.date, needed: tuple[str, ...]
) -> None:
    where = f"{ticker} {_span(start, end)}"
    if not isinstance(answer, pd.DataFrame):
        raise MarketDataError(
            f"yfinance: malformed answer for {where}: expected a pandas DataFrame, "
            f"got {type(answer).__name__}"
        )
    if answer.dropna(how="all").empty:
        raise MarketDataError(f"yfinance: no data for {where} (unknown ticker or no session)")
    columns = [str(c) for c in answer.columns]
    absent = [c for c in needed if c not in columns]
    if absent:
        raise MarketDataError(
            f"yfinance: malformed answer for {where}: missing column(s) {', '.join(absent)} "
            f"(got: {', '.join(columns)})"
        )
    for c in needed:
        if not pd.api.types.is_numeric_dtype(answer[c]):
            raise MarketDataError(
                f"yfinance: malformed answer for {where}: column {c} has type "
                f"{answer[c].dtype}, expected numbers"
            )


def _index_in_new_york(
    answer: pd.DataFrame, ticker: str, start: dt.date, end: dt.date
) -> list[dt.datetime]:
    index = answer.index
    if not isinstance(index, pd.DatetimeIndex):
        raise MarketDataError(
            f"yfinance: malformed answer for {ticker} {_span(start, end)}: index is "
            f"{type(index).__name__}, expected timestamps"
        )
    if index.tz is None:
        index = index.tz_localize(NY)
    return list(index.tz_convert(NY).to_pydatetime())


def _to_raw_frame(answer: Any, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    """yfinance's pandas table -> raw polars frame with the lower-case Bars column names."""
    _check_shape(answer, ticker, start, end, needed=tuple(_PANDAS_COLUMNS))
    stamps = _index_in_new_york(answer, ticker, start, end)
    data: dict[str, Any] = {"date": [s.date() for s in stamps]}
    for src, dst in _PANDAS_COLUMNS.items():
        data[dst] = answer[src].to_numpy(dtype="float64", na_value=float("nan"))
    if "Adj Close" in answer.columns and pd.api.types.is_numeric_dtype(answer["Adj Close"]):
        data["adj_close"] = answer["Adj Close"].to_numpy(dtype="float64", na_value=float("nan"))
    frame = pl.DataFrame(data, schema_overrides={"date": pl.Date})
    if "adj_close" in frame.columns:
        frame = frame.with_columns(pl.col("adj_close").fill_nan(None))
    return frame


# --------------------------------------------------------------------------- factory


def source_from_settings(kind: str, path: str | None) -> MarketDataSource:
    """Build the source named by settings (``ZDTE_SOURCE``/``ZDTE_SOURCE_PATH``)."""
    normalized = (kind or "").strip().lower()
    if normalized == "sample":
        return SampleSource()
    if normalized == "file":
        if not path:
            raise ValueError("source 'file' needs a path (set ZDTE_SOURCE_PATH)")
        return FileSource(path)
    if normalized == "yfinance":
        return YFinanceSource()
    raise ValueError(
        f"unknown market-data source {kind!r}; choose one of {', '.join(SOURCE_KINDS)}"
    )
