"""Asset checks on market data: OHLC consistency, overnight gap / split alarm, stale bars.

They run inside the `daily_bar` materialization (as check specs of that asset) so that every
partition range that is stored is also checked; the statistics come from the domain modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import polars as pl

from zdte_assets.data.adjustment import Split, classify_gaps, overnight_gaps

#: Overnight moves beyond this (as a fraction) raise the gap / split alarm.
GAP_THRESHOLD = 0.2


def bar_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "ohlc_consistent", asset=asset_key, description="low <= open, close <= high; prices > 0"
        ),
        dg.AssetCheckSpec(
            "overnight_gap",
            asset=asset_key,
            description=(
                f"No overnight gap beyond {GAP_THRESHOLD:.0%} (warning; splits are named), and no "
                "split-sized gap that nothing corroborates (error: it would be guessed)"
            ),
        ),
        dg.AssetCheckSpec(
            "not_stale",
            asset=asset_key,
            description="A bar is not an exact repeat of the previous one",
        ),
    ]


def _fmt_days(days: list[dt.date]) -> str:
    return ", ".join(d.isoformat() for d in days[:10]) + (" ..." if len(days) > 10 else "")


def bar_check_results(
    asset_key: dg.AssetKey, frame: pl.DataFrame, days: list[dt.date], known: list[Split]
) -> Iterator[dg.AssetCheckResult]:
    """Check results for the bars of `days`; `frame` may also hold the session before them."""
    bars = frame.filter(pl.col("date").is_in(days))
    bad = bars.filter(
        (pl.col("high") < pl.col("low"))
        | (pl.col("open") > pl.col("high"))
        | (pl.col("open") < pl.col("low"))
        | (pl.col("close") > pl.col("high"))
        | (pl.col("close") < pl.col("low"))
        | (pl.min_horizontal("open", "high", "low", "close") <= 0)
    )
    yield dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="ohlc_consistent",
        passed=bad.height == 0,
        metadata={"bad_days": _fmt_days(bad["date"].to_list()), "checked": bars.height},
    )

    gaps = overnight_gaps(frame, threshold=GAP_THRESHOLD).filter(pl.col("date").is_in(days))
    splits, ambiguous = classify_gaps(frame, known)
    ambiguous = [a for a in ambiguous if a.date in days]
    split_days = {s.date for s in splits}
    unexplained = [d for d in gaps["date"].to_list() if d not in split_days]
    yield dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="overnight_gap",
        passed=gaps.height == 0,
        # A gap that could be a split or a crash is not a warning: features would be guessed.
        severity=dg.AssetCheckSeverity.ERROR if ambiguous else dg.AssetCheckSeverity.WARN,
        description=ambiguous[0].message() if ambiguous else None,
        metadata={
            "gap_days": _fmt_days(gaps["date"].to_list()),
            "detected_splits": ", ".join(f"{s.date} ratio {s.ratio:g} ({s.source})" for s in splits)
            or "none",
            "unexplained_gaps": _fmt_days(unexplained),
            "ambiguous_gaps": "; ".join(a.message() for a in ambiguous) or "none",
        },
    )

    cols = ["open", "high", "low", "close", "volume"]
    repeated = frame.filter(
        pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in cols])
        & pl.col("date").is_in(days)
    )
    yield dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="not_stale",
        passed=repeated.height == 0,
        metadata={"repeated_days": _fmt_days(repeated["date"].to_list())},
    )
