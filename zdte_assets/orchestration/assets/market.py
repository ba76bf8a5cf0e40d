"""Market-data assets: `session_open` (known at 09:30) and `daily_bar` (known after the close)."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import polars as pl

from zdte_assets.core import calendar, config
from zdte_assets.data.market_data import MarketDataError, MarketDataSource
from zdte_assets.data.validation import DataValidationError
from zdte_assets.orchestration import checks
from zdte_assets.orchestration.jobs import DAILY_BACKFILL, asset_key, step_priority
from zdte_assets.orchestration.metadata import prices
from zdte_assets.orchestration.partitions import day_of
from zdte_assets.orchestration.resources import MarketDataResource


def _requested_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    return [day_of(k) for k in context.partition_keys]


def _bars_with_previous(source: MarketDataSource, ticker: str, days: list[dt.date]) -> pl.DataFrame:
    """The bars of `days`, with the session before them when that one is usable.

    The previous session is only context for the gap and stale checks: a bad bar there fails its
    own partition, not this one, which then goes without the comparison.
    """
    first = calendar.previous_trading_day(days[0])
    try:
        return source.bars(ticker, first, days[-1])
    except DataValidationError as exc:
        if exc.day is None or exc.day >= days[0]:
            raise
    return source.bars(ticker, days[0], days[-1])


def build_market_assets(
    ticker: str, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """The two market-data assets of one ticker, keyed `<TICKER>/session_open` and `<TICKER>/daily_bar`."""

    bar_key = asset_key(ticker, "daily_bar")

    @dg.asset(
        key=bar_key,
        group_name=ticker,
        partitions_def=partitions,
        backfill_policy=DAILY_BACKFILL,
        kinds={"polars", "parquet"},
        check_specs=checks.bar_check_specs(bar_key),
        description=(
            "One session's OHLCV bar as the source reports it (validated, not adjusted), "
            "materialized after the 16:00 close."
        ),
    )
    def daily_bar(
        context: dg.AssetExecutionContext, market_data: MarketDataResource
    ) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
        days = _requested_days(context)
        source = market_data.source()
        # One session before the range too, so the gap and stale checks can compare with it.
        frame = _bars_with_previous(source, ticker, days)
        got = set(frame["date"].to_list())
        missing = [d for d in days if d not in got]
        if missing:
            raise MarketDataError(
                f"{source.name}: no bar for {ticker} on {missing[0].isoformat()}"
                + (f" (and {len(missing) - 1} more days)" if len(missing) > 1 else "")
            )
        bars = frame.filter(pl.col("date").is_in(days))
        yield dg.Output(
            bars,
            metadata={
                "ticker": ticker,
                "source": source.name,
                "first_day": days[0].isoformat(),
                "last_day": days[-1].isoformat(),
                "trading_day": days[-1].isoformat(),
                **prices({"last_close": bars["close"][-1]}),
            },
        )
        yield from checks.bar_check_results(bar_key, frame, days, config.known_splits(ticker))

    @dg.asset(
        key=asset_key(ticker, "session_open"),
        op_tags=step_priority("session_open"),
        group_name=ticker,
        partitions_def=partitions,
        backfill_policy=DAILY_BACKFILL,
        kinds={"polars", "parquet"},
        description="The session's official open: the only price of day t a 09:30 prediction may use.",
    )
    def session_open(
        context: dg.AssetExecutionContext, market_data: MarketDataResource
    ) -> dg.Output[pl.DataFrame]:
        days = _requested_days(context)
        source = market_data.source()
        opens = [source.session_open(ticker, d) for d in days]
        frame = pl.DataFrame(
            {"date": days, "open": opens}, schema={"date": pl.Date, "open": pl.Float64}
        )
        return dg.Output(
            frame,
            metadata={
                "ticker": ticker,
                "trading_day": days[-1].isoformat(),
                **prices({"open": opens[-1]}),
            },
        )

    return [daily_bar, session_open]
