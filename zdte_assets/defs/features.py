"""The `features` asset: the causal feature row of each trading day.

Row t is computed from the LOOKBACK sessions before t (the `daily_bar` window ending at t-1) and
`session_open` of t, nothing else; the partition mapping makes that explicit in the asset graph.
"""

import datetime as dt

import dagster as dg
import polars as pl

from zdte_assets import calendar
from zdte_assets.defs.partitions import day_of
from zdte_assets.features import LOOKBACK, feature_row_at_open


class MissingHistoryError(ValueError):
    """Some session of a feature window has no stored bar."""


def history_before(bars: pl.DataFrame, day: dt.date, sessions: int) -> pl.DataFrame:
    """The `sessions` bars before `day`, or a one-line error naming the first missing session."""
    expected = [calendar.previous_trading_day(day, n) for n in range(sessions, 0, -1)]
    window = bars.filter(pl.col("date").is_in(expected)).sort("date")
    if window.height != len(expected):
        have = set(window["date"].to_list())
        missing = [d for d in expected if d not in have]
        raise MissingHistoryError(
            f"features for {day} need daily_bar for the {sessions} sessions "
            f"{expected[0]}..{expected[-1]}; missing {len(missing)}, first {missing[0]}"
        )
    return window


def build_feature_assets(
    ticker: str, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=[ticker, "features"],
        group_name=ticker,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"polars", "parquet"},
        ins={
            "daily_bar": dg.AssetIn(
                key=[ticker, "daily_bar"],
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-LOOKBACK, end_offset=-1
                ),
            ),
            "session_open": dg.AssetIn(key=[ticker, "session_open"]),
        },
        description=(
            f"Feature row of day t from the {LOOKBACK} sessions before t and the open of t "
            "(split-adjusted, scale-free); materialized at 09:30."
        ),
    )
    def features(
        context: dg.AssetExecutionContext, daily_bar: pl.DataFrame, session_open: pl.DataFrame
    ) -> dg.Output[pl.DataFrame]:
        rows = []
        for key in context.partition_keys:
            day = day_of(key)
            opens = session_open.filter(pl.col("date") == day)
            if opens.height != 1:
                raise MissingHistoryError(f"features for {day} need session_open of {day}")
            history = history_before(daily_bar, day, LOOKBACK)
            rows.append(feature_row_at_open(history, day, float(opens["open"][0])))
        frame = pl.concat(rows).sort("date")
        return dg.Output(
            frame,
            metadata={
                "rows": frame.height,
                "columns": len(frame.columns),
                "preview": dg.MetadataValue.md(_preview(frame)),
            },
        )

    return [features]


def _preview(frame: pl.DataFrame, n: int = 5) -> str:
    head = frame.tail(n)
    cols = head.columns[:8]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.select(cols).iter_rows():
        lines.append(
            "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
        )
    return "\n".join(lines)
