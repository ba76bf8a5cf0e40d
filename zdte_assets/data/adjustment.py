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
2. **split table** (``known`` splits, e.g. from ``ZDTE_SPLITS``): a listed split is applied on
   its date whatever the prices say; it is how a desk settles a case the data cannot.
3. **gap route** (otherwise). The overnight ratio ``close[t-1] / open[t]`` must lie within 5% (in
   log) of one of :data:`GAP_RATIOS`: whole-number splits 2..10, 15, 20, 25, 30, 40, 50 and the
   reverse splits 1/2..1/10, 1/15, ..., 1/50, 1/100. A gap alone is not enough, because a real
   crash can have the same size (AAPL's -48% gap on 2000-09-29 is within 0.052 in log of a 2:1
   split): the volume must corroborate it. Volume is counted in shares, so after a split of
   ratio ``r`` it runs ``r`` times higher for good, while after a crash it spikes and decays. The
   geometric-mean volume of up to ``VOLUME_SESSIONS`` sessions from ``t`` on, over that of as
   many before, must lie within ``VOLUME_TOLERANCE`` (in log) of ``r``. Otherwise, or when fewer
   than ``MIN_VOLUME_SESSIONS`` sessions on either side have a volume (the morning of the split
   itself), the gap is **ambiguous**: nothing is rescaled, and :func:`ambiguous_gaps` names it
   so that the ``overnight_gap`` check fails with the remedy instead of guessing.

Known limits, which the :func:`overnight_gaps` alarm exists to surface:

- Fractional splits (3:2 is a -33% gap, 5:4 a -20% gap) are *not* detected from gaps: an
  earnings crash of -33% or -20% overnight is common, so these gaps cannot be told from market
  moves by price alone. They are detected when ``adj_close`` is available or the split is listed.
- A split on a day whose overnight move exceeds about 5% is not recognized from its gap.

The adjustment divides open/high/low/close of every row before a split by the product of the
ratios of all later splits, and multiplies volume by it, so share-count-based quantities stay
comparable. ``adj_close`` is left untouched: it is only used for detection, never to replace
prices, because it also folds in dividends. Adjusting already adjusted bars finds no split, so
the operation is idempotent.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
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
#: Sessions on each side of a gap whose median volumes are compared.
VOLUME_SESSIONS = 10
#: Fewest sessions with a volume from the gap on before the volume can corroborate anything.
MIN_VOLUME_SESSIONS = 3
#: Log distance allowed between the volume ratio and the split ratio (a factor of 1.5): three
#: standard deviations of the ratio of two 10-session geometric means when daily share volume
#: varies 30% in log, so a real split is almost never called ambiguous, while a panic that
#: multiplies share volume by 4 or more for days is not taken for a 2:1 split.
VOLUME_TOLERANCE = math.log(1.5)

_PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Split:
    """A split effective at the open of ``date`` (the first session at the new share count).

    ``ratio`` is shares after / shares before: 2.0 for a 2:1 split, 0.1 for a 1:10 reverse split.
    ``source`` says which evidence found it: ``"adj_close"``, ``"table"`` or ``"gap+volume"``.
    """

    date: dt.date
    ratio: float
    source: str


@dataclass(frozen=True)
class AmbiguousGap:
    """A gap the size of a split that nothing corroborates (see the module docstring)."""

    date: dt.date
    ratio: float
    gap_log: float
    volume_ratio: float | None

    def message(self) -> str:
        volume = (
            "no volume after it yet"
            if self.volume_ratio is None
            else f"share volume changed x{self.volume_ratio:.2f}, not x{self.ratio:g}"
        )
        return (
            f"{self.date}: overnight gap {self.gap_log:+.3f} in log looks like a split of ratio "
            f"{self.ratio:g} but {volume}; list it in ZDTE_SPLITS or provide adj_close if it is one"
        )


def _volume_ratio(volume: list[float], i: int) -> float | None:
    """Geometric-mean share volume from row ``i`` on over that before it (None: too few)."""
    after = [v for v in volume[i : i + VOLUME_SESSIONS] if v and v > 0]
    before = [v for v in volume[max(0, i - VOLUME_SESSIONS) : i] if v and v > 0]
    if min(len(after), len(before)) < MIN_VOLUME_SESSIONS:
        return None
    return statistics.geometric_mean(after) / statistics.geometric_mean(before)


def classify_gaps(
    bars: pl.DataFrame, known: Sequence[Split] = ()
) -> tuple[list[Split], list[AmbiguousGap]]:
    """Splits (adj_close, table, or gap corroborated by volume) and ambiguous gaps, oldest first."""
    table = {s.date: s for s in known}
    if bars.height < 2:
        return [s for s in known if bars.height and s.date == bars["date"][0]], []
    has_adj_col = "adj_close" in bars.columns
    adj = pl.col("adj_close") if has_adj_col else pl.lit(None, dtype=pl.Float64)
    factor = pl.col("close") / adj
    pairs = bars.select(
        pl.col("date"),
        (adj.is_not_null() & adj.shift(1).is_not_null()).alias("use_adj"),
        (factor.shift(1) / factor).log().alias("adj_log_ratio"),
        (pl.col("close").shift(1) / pl.col("open")).log().alias("gap_log_ratio"),
    ).slice(1)
    volume = [float(v) if v is not None else 0.0 for v in bars["volume"].to_list()]
    index = {d: i for i, d in enumerate(bars["date"].to_list())}
    candidates = pairs.filter(
        pl.col("date").is_in(list(table))
        | pl.when(pl.col("use_adj"))
        .then(pl.col("adj_log_ratio").abs() > ADJ_JUMP_MIN)
        .otherwise(pl.col("gap_log_ratio").abs() > math.log(2) - GAP_TOLERANCE)
    )
    splits: list[Split] = []
    ambiguous: list[AmbiguousGap] = []
    for day, use_adj, adj_lr, gap_lr in candidates.iter_rows():
        if day in table:
            splits.append(Split(date=day, ratio=table[day].ratio, source="table"))
            continue
        if use_adj:
            ratio = _nearest(adj_lr, ADJ_CLOSE_RATIOS, ADJ_TOLERANCE)
            if ratio is not None:
                splits.append(Split(date=day, ratio=ratio, source="adj_close"))
            continue
        ratio = _nearest(gap_lr, GAP_RATIOS, GAP_TOLERANCE)
        if ratio is None:
            continue
        vr = _volume_ratio(volume, index[day])
        if vr is not None and abs(math.log(vr) - math.log(ratio)) <= VOLUME_TOLERANCE:
            splits.append(Split(date=day, ratio=ratio, source="gap+volume"))
        else:
            ambiguous.append(AmbiguousGap(day, ratio, float(-gap_lr), vr))
    return splits, ambiguous


def ambiguous_gaps(bars: pl.DataFrame, known: Sequence[Split] = ()) -> list[AmbiguousGap]:
    """Gaps the size of a split that neither adj_close, the table nor the volume settles."""
    return classify_gaps(bars, known)[1]


def detect_splits(bars: pl.DataFrame, known: Sequence[Split] = ()) -> list[Split]:
    """Splits in a Bars frame, by the rule in the module docstring, oldest first."""
    return classify_gaps(bars, known)[0]


def adjust_splits(
    bars: pl.DataFrame, known: Sequence[Split] = ()
) -> tuple[pl.DataFrame, list[Split]]:
    """Rescale bars before each detected split to today's share count; return them and the splits.

    The input must be a validated Bars frame (sorted, unique dates). Prices after the last split
    are returned bit-for-bit unchanged.
    """
    splits = detect_splits(bars, known)
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
