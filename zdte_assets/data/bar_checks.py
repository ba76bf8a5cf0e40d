"""What the daily bar's quality checks find, as plain data: inconsistent prices, large overnight
gaps (named as splits where the split rule settles them), and stale bars.

Why a module of its own: a source's validation (`validation`) refuses a file it cannot read, but
a bar can be well formed and still wrong for the features: a vendor that repeats yesterday's bar,
a gap that is a split nobody listed. These findings are what the asset checks of `daily_bar`
report (the orchestration only turns them into check results), and what a desk can compute on a
frame outside Dagster to see why a check failed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from zdte_assets.data.adjustment import AmbiguousGap, Split, classify_gaps, overnight_gaps

#: Overnight moves beyond this (as a fraction of the previous close) raise the gap / split alarm.
GAP_THRESHOLD = 0.2
#: The columns a stale bar repeats exactly from the session before it.
BAR_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class BarFindings:
    """The quality findings on the bars of the days asked for, oldest first."""

    #: Bars of the days asked for that were looked at.
    checked: int
    #: Days whose prices are not positive or not ordered low <= open, close <= high.
    inconsistent: tuple[dt.date, ...]
    #: Days whose overnight gap exceeds the threshold.
    gaps: tuple[dt.date, ...]
    #: The largest overnight move among the days, ``|log(open_t / close_{t-1})|``; None when no
    #: day has a previous close to compare with.
    largest_gap_log: float | None
    #: Splits found in the frame (the split rule of `adjustment`), whatever the days asked for.
    splits: tuple[Split, ...]
    #: Split-sized gaps among the days that nothing corroborates: the features would be guessed.
    ambiguous: tuple[AmbiguousGap, ...]
    #: Days whose bar repeats the previous session's exactly.
    repeated: tuple[dt.date, ...]

    @property
    def unexplained_gaps(self) -> tuple[dt.date, ...]:
        """Large gaps that are not a split the rule recognised."""
        split_days = {s.date for s in self.splits}
        return tuple(d for d in self.gaps if d not in split_days)


def inconsistent_days(bars: pl.DataFrame) -> list[dt.date]:
    """Days whose bar is impossible: a price <= 0, or open or close outside [low, high]."""
    bad = bars.filter(
        (pl.col("high") < pl.col("low"))
        | (pl.col("open") > pl.col("high"))
        | (pl.col("open") < pl.col("low"))
        | (pl.col("close") > pl.col("high"))
        | (pl.col("close") < pl.col("low"))
        | (pl.min_horizontal("open", "high", "low", "close") <= 0)
    )
    return list(bad["date"].to_list())


def repeated_days(frame: pl.DataFrame) -> list[dt.date]:
    """Days whose bar equals the previous row's in every column of `BAR_COLUMNS`."""
    same = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in BAR_COLUMNS])
    return list(frame.filter(same)["date"].to_list())


def inspect_bars(
    frame: pl.DataFrame,
    days: Sequence[dt.date],
    known: Sequence[Split] = (),
    gap_threshold: float = GAP_THRESHOLD,
) -> BarFindings:
    """Findings on the bars of `days`; `frame` may also hold the session before them, which is
    then only what the first day's gap and staleness are measured against."""
    wanted = pl.col("date").is_in(list(days))
    bars = frame.filter(wanted)
    # Every nonzero overnight move of the days (the first row of `frame` has no previous close).
    moves = overnight_gaps(frame, threshold=0.0).filter(wanted)
    limit = math.log1p(gap_threshold)
    compared = frame.slice(1).filter(wanted).height
    largest = max((abs(g) for g in moves["gap"].to_list()), default=0.0) if compared else None
    splits, ambiguous = classify_gaps(frame, known)
    asked = set(days)
    return BarFindings(
        checked=bars.height,
        inconsistent=tuple(inconsistent_days(bars)),
        gaps=tuple(moves.filter(pl.col("gap").abs() > limit)["date"].to_list()),
        largest_gap_log=largest,
        splits=tuple(splits),
        ambiguous=tuple(a for a in ambiguous if a.date in asked),
        repeated=tuple(d for d in repeated_days(frame) if d in asked),
    )
