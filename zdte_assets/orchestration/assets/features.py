"""The `features` asset: the causal feature row of each trading day.

Row t is computed from the LOOKBACK sessions before t (the `daily_bar` window ending at t-1) and
`session_open` of t, nothing else; the partition mapping makes that explicit in the asset graph.
"""

import dagster as dg
import polars as pl

from zdte_assets.core import config, timing
from zdte_assets.data.validation import BARS_SCHEMA
from zdte_assets.features.rows import LOOKBACK
from zdte_assets.model.lifecycle import MissingHistoryError, feature_frame
from zdte_assets.orchestration.io_manager import WINDOW_INPUT
from zdte_assets.orchestration.jobs import DAILY_BACKFILL, asset_key, step_priority
from zdte_assets.orchestration.partitions import day_of

__all__ = ["MissingHistoryError", "build_feature_assets"]


def build_feature_assets(
    ticker: str, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=asset_key(ticker, "features"),
        op_tags=step_priority("features"),
        group_name=ticker,
        partitions_def=partitions,
        backfill_policy=DAILY_BACKFILL,
        kinds={"polars", "parquet"},
        ins={
            "daily_bar": dg.AssetIn(
                key=asset_key(ticker, "daily_bar"),
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-LOOKBACK, end_offset=-1
                ),
                metadata=WINDOW_INPUT,
            ),
            "session_open": dg.AssetIn(key=asset_key(ticker, "session_open")),
        },
        description=(
            f"Feature row of day t from the {LOOKBACK} sessions before t and the open of t "
            "(split-adjusted, scale-free); materialized at 09:30."
        ),
    )
    def features(
        context: dg.AssetExecutionContext, daily_bar: pl.DataFrame, session_open: pl.DataFrame
    ) -> dg.Output[pl.DataFrame]:
        if session_open["date"].is_duplicated().any():
            dup = session_open.filter(pl.col("date").is_duplicated())["date"][0]
            raise MissingHistoryError(f"features: session_open holds {dup} more than once")
        opens = dict(
            zip(session_open["date"].to_list(), session_open["open"].to_list(), strict=True)
        )
        days = [day_of(key) for key in context.partition_keys]
        if daily_bar.width == 0:
            # Nothing stored in the window: the loader has no schema to give; with the bars'
            # schema the rows' own check names the sessions that are missing.
            daily_bar = pl.DataFrame(schema=BARS_SCHEMA)
        with timing.part("compute"):
            frame = feature_frame(daily_bar, opens, days, config.known_splits(ticker))
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
