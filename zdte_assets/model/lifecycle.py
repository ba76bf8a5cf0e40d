"""The domain steps of one trading day, shared by the Dagster assets and plain Python.

The assets in `zdte_assets.orchestration` only load inputs, call these functions and record the results;
`benchmarks/replay_benchmark.py` calls the same functions in the same order without Dagster,
MLflow or storage, so the replay's overhead is measured against exactly the same computations.
Nothing here imports Dagster.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence

import polars as pl

from zdte_assets.core import calendar
from zdte_assets.core.config import STUDY_LOOKBACK_WEEKS
from zdte_assets.core.errors import ZdteError
from zdte_assets.data.adjustment import Split
from zdte_assets.features.rows import LOOKBACK, feature_row_at_open, target_frame


class MissingHistoryError(ZdteError, ValueError):
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


def feature_frame(
    bars: pl.DataFrame,
    opens: Mapping[dt.date, float],
    days: Sequence[dt.date],
    known: Sequence[Split] = (),
) -> pl.DataFrame:
    """Feature rows of `days`, each from the LOOKBACK bars before it and its own open."""
    rows = []
    for day in days:
        if day not in opens:
            raise MissingHistoryError(f"features for {day} need session_open of {day}")
        history = history_before(bars, day, LOOKBACK)
        rows.append(feature_row_at_open(history, day, float(opens[day]), known))
    return pl.concat(rows).sort("date")


def labeled_rows(features: pl.DataFrame, daily_bar: pl.DataFrame, before: dt.date) -> pl.DataFrame:
    """Feature rows joined with their realized target, for days strictly before `before`."""
    targets = target_frame(daily_bar)
    return (
        features.join(targets, on="date", how="inner").filter(pl.col("date") < before).sort("date")
    )


def data_digest(frame: pl.DataFrame) -> str:
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()


def week_as_of(monday: dt.date) -> dt.date:
    """The last session whose data a scheduled study of the week of `monday` may use."""
    return calendar.previous_trading_day(monday)


def study_name(ticker: str, monday: dt.date, as_of: dt.date) -> str:
    """The Optuna study of the week of `monday` with data through `as_of` (one per data cut)."""
    return f"zdte-{ticker}-{monday.isoformat()}-asof-{as_of.isoformat()}"


def study_window_start(monday: dt.date) -> dt.date:
    """First day of the rows a study of the week of `monday` draws from (its lookback)."""
    return monday - dt.timedelta(weeks=STUDY_LOOKBACK_WEEKS)


def study_rows(
    features: pl.DataFrame, daily_bar: pl.DataFrame, monday: dt.date, as_of: dt.date
) -> pl.DataFrame:
    """Labeled rows a study of the week of `monday` with data through `as_of` sees."""
    start = study_window_start(monday)
    feats = features.filter(pl.col("date") >= start)
    bars = daily_bar.filter(pl.col("date") >= start)
    return labeled_rows(feats, bars, before=as_of + dt.timedelta(days=1))
