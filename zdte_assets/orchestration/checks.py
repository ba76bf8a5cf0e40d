"""Asset checks on market data: OHLC consistency, overnight gap / split alarm, stale bars.

They run inside the `daily_bar` materialization (as check specs of that asset) so that every
partition range that is stored is also checked. What they find is computed by
`zdte_assets.data.bar_checks`; here it only becomes check results, each carrying the values it
was decided on as metadata (counts, days, the largest gap), so the UI and a test read the same
numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
import polars as pl

from zdte_assets.data.adjustment import Split
from zdte_assets.data.bar_checks import GAP_THRESHOLD, inspect_bars
from zdte_assets.orchestration.metadata import number, numbers

__all__ = ["GAP_THRESHOLD", "bar_check_results", "bar_check_specs"]


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


def _days(days: Sequence[dt.date]) -> dg.MetadataValue:
    return dg.MetadataValue.json([d.isoformat() for d in days])


def bar_check_results(
    asset_key: dg.AssetKey, frame: pl.DataFrame, days: list[dt.date], known: list[Split]
) -> Iterator[dg.AssetCheckResult]:
    """Check results for the bars of `days`; `frame` may also hold the session before them."""
    found = inspect_bars(frame, days, known)
    # Checks are not partitioned: each result names the session(s) of the materialization it
    # checked, the last as `trading_day` (the partition of a one-session run).
    checked_days: dict[str, Any] = {"trading_day": days[-1].isoformat(), "sessions": len(days)}
    if len(days) > 1:
        checked_days["first_day"] = days[0].isoformat()
    yield dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="ohlc_consistent",
        passed=not found.inconsistent,
        metadata={
            **checked_days,
            "checked": found.checked,
            "inconsistent": len(found.inconsistent),
            "inconsistent_days": _days(found.inconsistent),
        },
    )
    # A gap that could be a split or a crash is not a warning: features would be guessed.
    yield dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="overnight_gap",
        passed=not found.gaps,
        severity=dg.AssetCheckSeverity.ERROR if found.ambiguous else dg.AssetCheckSeverity.WARN,
        description=found.ambiguous[0].message() if found.ambiguous else None,
        metadata={
            **checked_days,
            **numbers({"threshold": GAP_THRESHOLD, "largest_gap_log": found.largest_gap_log}),
            "gap_days": _days(found.gaps),
            "detected_splits": dg.MetadataValue.json(
                [
                    {"date": s.date.isoformat(), "ratio": number(s.ratio), "source": s.source}
                    for s in found.splits
                ]
            ),
            "unexplained_gap_days": _days(found.unexplained_gaps),
            "ambiguous_gaps": dg.MetadataValue.json([a.message() for a in found.ambiguous]),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="not_stale",
        passed=not found.repeated,
        metadata={
            **checked_days,
            "repeated": len(found.repeated),
            "repeated_days": _days(found.repeated),
        },
    )
