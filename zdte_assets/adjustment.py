"""Stock-split detection and adjustment of daily bars.

Why: many files hold raw, unadjusted prices. A 2:1 split then shows up as a -50% overnight gap.
The same-day open-to-close return (the target) is unaffected, but every feature that reaches
across days (close-to-close lags, overnight gap, volatility) would see a crash that never
happened. :func:`adjust_splits` rescales history to today's share count so the series is
continuous; the latest prices are left as they are, so the most recent bar still matches the
quotes a trader sees.

Detection rule, decided per pair of consecutive rows (t-1, t):

1. **adj_close route** (both rows have a non-null ``adj_close``). The factor
   ``f = close / adj_close`` changes by a few percent at most on a dividend, but by the split ratio
   at a split when ``close`` is unadjusted and ``adj_close`` is. A split is declared on day t when
   ``ratio = f[t-1] / f[t]`` is more than 20% away from 1 (``|log ratio| > log 1.2``) and lies
   within 3% (in log) of one of :data:`ADJ_CLOSE_RATIOS`, which includes the fractional splits
   3:2, 4:3, 5:4, 5:3 and 5:2. The ratio is rounded to that candidate. A large factor jump that
   matches no candidate (spin-off, special dividend, vendor error) is not treated as a split.
   When ``adj_close`` is present the overnight gap is *not* consulted: a gap without a factor
   jump is a market move, and trusting ``adj_close`` is what keeps crashes from being "adjusted".
2. **gap route** (otherwise). The overnight ratio ``close[t-1] / open[t]`` must lie within 5% (in
   log) of one of :data:`GAP_RATIOS`: whole-number splits 2..10, 15, 20, 25, 30, 40, 50 and the
   reverse splits 1/2..1/10, 1/15, ..., 1/50, 1/100. Every candidate is at least a halving or a
   doubling overnight, a size that is rare for a genuine move, and the 5% band accommodates a
   normal overnight move on the split day itself. The candidates are far enough apart (the
   closest, 9 and 10, differ by 10.5% in log) that a gap matches at most one.

Known limits of the gap route, which the :func:`overnight_gaps` alarm exists to surface:

- Fractional splits (3:2 is a -33% gap, 5:4 a -20% gap) are *not* detected: an earnings crash of
  -33% or -20% overnight is common, so these gaps cannot be told from market moves by price alone.
  They are only detected when ``adj_close`` is available.
- A genuine overnight crash of about -50% (or -67%, -75%, ...) or a jump of about +100% (a
  biotech readout, a buy-out of a distressed stock) within 5% of a candidate would be taken for a
  split and wrongly rescaled.
- A split on a day whose overnight move exceeds about 5% is missed.
- Files where volume is already split-adjusted but prices are not get their volume rescaled too.

The adjustment divides open/high/low/close of every row before a split by the product of the
ratios of all later splits, and multiplies volume by it, so share-count-based quantities stay
comparable. ``adj_close`` is left untouched: it is only used for detection, never to replace
prices, because it also folds in dividends. Adjusting already adjusted bars finds no split, so
the operation is idempotent.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import polars as pl

#: Ratios (shares after / before) accepted when the close/adj_close factor jumps.
_FORWARD_FRACTIONS = (5 / 4, 4 / 3, 3 / 2, 5 / 3, 5 / 2)
_WHOLE = (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 50)
_REVERSE_WHOLE = (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 50, 100)
ADJ_CLOSE_RATIOS: tuple[float, ...] = tuple(
    sorted({*_FORWARD_FRACTIONS, *(float(n) for n in _WHOLE), *(1 / n for n in _REVERSE_WHOLE)})
)
#: Ratios accepted from an overnight gap alone: only halvings/doublings or more.
GAP_RATIOS: tuple[float, ...] = tuple(
    sorted(
        {
            *(float(n) for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50)),
            *(1 / n for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 100)),
        }
    )
)
#: |log ratio| a close/adj_close factor jump must exceed to be considered at all.
ADJ_JUMP_MIN = math.log(1.2)
#: Log distance to the nearest candidate allowed on the adj_close route.
ADJ_TOLERANCE = 0.03
#: Log distance to the nearest candidate allowed on the gap route.
GAP_TOLERANCE = 0.05

_PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Split:
    """A split effective at the open of ``date`` (the first session at the new share count).

    ``ratio`` is shares after / shares before: 2.0 for a 2:1 split, 0.1 for a 1:10 reverse split.
    ``source`` says which evidence found it: ``"adj_close"`` or ``"gap"``.
    """

    date: dt.date
    ratio: float
    source: str


def detect_splits(bars: pl.DataFrame) -> list[Split]:
    """Splits in a Bars frame, by the rule in the module docstring, oldest first."""
    if bars.height < 2:
        return []
    has_adj_col = "adj_close" in bars.columns
    adj = pl.col("adj_close") if has_adj_col else pl.lit(None, dtype=pl.Float64)
    factor = pl.col("close") / adj
    pairs = bars.select(
        pl.col("date"),
        (adj.is_not_null() & adj.shift(1).is_not_null()).alias("use_adj"),
        (factor.shift(1) / factor).log().alias("adj_log_ratio"),
        (pl.col("close").shift(1) / pl.col("open")).log().alias("gap_log_ratio"),
    ).slice(1)

    candidates = pairs.filter(
        pl.when(pl.col("use_adj"))
        .then(pl.col("adj_log_ratio").abs() > ADJ_JUMP_MIN)
        .otherwise(pl.col("gap_log_ratio").abs() > math.log(2) - GAP_TOLERANCE)
    )
    splits: list[Split] = []
    for day, use_adj, adj_lr, gap_lr in candidates.iter_rows():
        if use_adj:
            ratio = _nearest(adj_lr, ADJ_CLOSE_RATIOS, ADJ_TOLERANCE)
            source = "adj_close"
        else:
            ratio = _nearest(gap_lr, GAP_RATIOS, GAP_TOLERANCE)
            source = "gap"
        if ratio is not None:
            splits.append(Split(date=day, ratio=ratio, source=source))
    return splits


def adjust_splits(bars: pl.DataFrame) -> tuple[pl.DataFrame, list[Split]]:
    """Rescale bars before each detected split to today's share count; return them and the splits.

    The input must be a validated Bars frame (sorted, unique dates). Prices after the last split
    are returned bit-for-bit unchanged.
    """
    splits = detect_splits(bars)
    if not splits:
        return bars, []
    events = pl.DataFrame(
        {"date": [s.date for s in splits], "__ratio": [s.ratio for s in splits]},
        schema={"date": pl.Date, "__ratio": pl.Float64},
    )
    # Factor for row t = product of the ratios of splits strictly after t: a reverse cumulative
    # product of the per-day ratio, shifted by one row.
    factor = (
        pl.col("__ratio").fill_null(1.0).reverse().cum_prod().reverse().shift(-1).fill_null(1.0)
    )
    out = (
        bars.join(events, on="date", how="left", maintain_order="left")
        .with_columns(factor.alias("__factor"))
        .with_columns(
            *(
                pl.when(pl.col("__factor") == 1.0)
                .then(pl.col(c))
                .otherwise(pl.col(c) / pl.col("__factor"))
                .alias(c)
                for c in _PRICES
            ),
            pl.when(pl.col("__factor") == 1.0)
            .then(pl.col("volume"))
            .otherwise(pl.col("volume") * pl.col("__factor"))
            .alias("volume"),
        )
        .drop("__ratio", "__factor")
    )
    return out.select(bars.columns), splits


def overnight_gaps(bars: pl.DataFrame, threshold: float = 0.2) -> pl.DataFrame:
    """Sessions whose overnight gap ``log(open_t / close_{t-1})`` exceeds ``log(1 + threshold)``.

    Meant for a "gap/split alarm" check: after adjustment, a gap this large is either a real
    shock or a split the rule could not recognise (e.g. 3:2 without adj_close), and a person
    should look before it feeds lagged features.
    """
    limit = math.log1p(threshold)
    return (
        bars.select(
            pl.col("date"),
            (pl.col("open") / pl.col("close").shift(1)).log().alias("gap"),
        )
        .slice(1)
        .filter(pl.col("gap").abs() > limit)
    )


def _nearest(log_ratio: float | None, ratios: tuple[float, ...], tolerance: float) -> float | None:
    """The candidate ratio closest in log to ``log_ratio``, if within ``tolerance``."""
    if log_ratio is None or not math.isfinite(log_ratio):
        return None
    best = min(ratios, key=lambda r: abs(math.log(r) - log_ratio))
    if abs(math.log(best) - log_ratio) <= tolerance:
        return best
    return None
