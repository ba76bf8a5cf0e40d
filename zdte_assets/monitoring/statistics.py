"""Drift statistics: two-sample tests and distances between a recent window and a reference.

All compare a recent window with a reference sample (typically the model's training period):

* Kolmogorov-Smirnov (scipy): distribution-free and comes with a p-value, so the rule has a
  stated error rate; it assumes independent observations. ``ks_pvalue_effective`` corrects it
  for autocorrelated features, ``ks_statistic_windows`` gives scipy's statistic for many
  overlapping windows at once (what the false-alarm simulation needs).
* PSI with quantile bins of the reference: the industry habit, reported for comparison, but on
  a 20-day window its sampling noise alone usually exceeds the customary 0.25.
* Wasserstein-1 (scipy), also divided by the reference's standard deviation so one threshold
  means the same thing for every feature and ticker.
* The Holm correction over a family of features.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray
from scipy import stats

#: Floor for a bin proportion in PSI, so an empty bin gives a large but finite term.
PSI_EPS = 1e-4


def clean(x: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def ks_2samp(ref: ArrayLike, cur: ArrayLike) -> tuple[float, float]:
    """Two-sample KS statistic and p-value from scipy (exact for samples up to 10,000).

    NaNs are dropped; an empty side gives ``(nan, nan)`` because no test is possible.
    """
    r, c = clean(ref), clean(cur)
    if r.size == 0 or c.size == 0:
        return math.nan, math.nan
    res = stats.ks_2samp(r, c)
    return float(res.statistic), float(res.pvalue)


def lag1_autocorr(x: ArrayLike) -> float:
    """Lag-1 autocorrelation of a time-ordered series (NaNs dropped), 0 when undefined.

    Rolling-window features (20-day volatility, momentum) have autocorrelations near 1, which
    makes consecutive days nearly copies of each other; this number measures how much.
    """
    a = clean(x)
    if a.size < 3:
        return 0.0
    dc = a - a.mean()
    denom = float(np.dot(dc, dc))
    if denom == 0.0:
        return 0.0
    return float(np.dot(dc[1:], dc[:-1]) / denom)


def effective_en(n_ref: int, n_cur: int, rho: float) -> int:
    """Smirnov's ``m n / (m + n)`` after shrinking both sizes to AR(1) effective sizes."""
    r = min(max(rho, 0.0), 0.999) if math.isfinite(rho) else 0.0
    factor = (1.0 - r) / (1.0 + r)
    m, n = n_ref * factor, n_cur * factor
    return max(1, int(np.round(m * n / (m + n))))


@lru_cache(maxsize=1 << 16)
def kstwo_sf(d: float, n: int) -> float:
    return float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))


def ks_pvalue_effective(stat: float, n_ref: int, n_cur: int, rho: float) -> float:
    """KS p-value for autocorrelated samples, from AR(1) effective sample sizes.

    The KS p-value assumes independent days; for a feature with lag-1 autocorrelation ``rho``
    a window of ``n`` days carries about ``n (1 - rho) / (1 + rho)`` independent observations,
    so the plain p-value is far too small and the test "detects" drift on a stationary series.
    This applies scipy's asymptotic two-sided distribution (``kstwo`` at the rounded
    ``m n / (m + n)``) to the effective sizes. For moving-window features, whose
    autocorrelation decays more slowly than AR(1) at short lags and faster later, it is
    conservative.
    """
    if n_ref < 1 or n_cur < 1 or not math.isfinite(stat):
        return math.nan
    return kstwo_sf(float(stat), effective_en(n_ref, n_cur, rho))


def psi_edges(ref: NDArray[np.float64], bins: int) -> NDArray[np.float64]:
    """Interior bin edges at the reference's quantiles (duplicates merged for tied data)."""
    qs = np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(qs)


def bin_props(x: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.float64]:
    idx = np.searchsorted(edges, x, side="right")
    return np.bincount(idx, minlength=edges.size + 1) / x.size


def psi_from_props(p_ref: NDArray[np.float64], p_cur: NDArray[np.float64], eps: float) -> Any:
    r = np.maximum(p_ref, eps)
    c = np.maximum(p_cur, eps)
    return np.sum((c - r) * np.log(c / r), axis=-1)


def psi(ref: ArrayLike, cur: ArrayLike, bins: int = 10, eps: float = PSI_EPS) -> float:
    """Population stability index with ``bins`` quantile bins of the reference.

    Bin proportions are floored at ``eps`` so an empty bin adds a large finite term instead of
    infinity. Identical samples give exactly 0. Beware of small windows: with 10 bins and 20
    observations, sampling noise alone usually exceeds the customary 0.25 "shift" threshold.
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    r, c = clean(ref), clean(cur)
    if r.size == 0 or c.size == 0:
        return math.nan
    edges = psi_edges(r, bins)
    return float(psi_from_props(bin_props(r, edges), bin_props(c, edges), eps))


def wasserstein(ref: ArrayLike, cur: ArrayLike) -> float:
    """Wasserstein-1 distance from scipy, in the units of the data (NaN if a side is empty)."""
    r, c = clean(ref), clean(cur)
    if r.size == 0 or c.size == 0:
        return math.nan
    return float(stats.wasserstein_distance(r, c))


def wasserstein_scaled(ref: ArrayLike, cur: ArrayLike) -> float:
    """Wasserstein-1 divided by the reference's standard deviation.

    A raw distance of 0.01 is huge for a daily return and nothing for an RSI, so only the
    scaled value lets one threshold serve every feature and ticker. A constant reference gives
    0 when the current sample equals it and infinity otherwise.
    """
    r, c = clean(ref), clean(cur)
    if r.size < 2 or c.size == 0:
        return math.nan
    w = float(stats.wasserstein_distance(r, c))
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        return 0.0 if w == 0.0 else math.inf
    return w / sd


def holm_adjust(pvalues: ArrayLike) -> NDArray[np.float64]:
    """Holm step-down adjusted p-values along the last axis.

    Testing 25 features at 1% each would flag one about every fourth day by chance alone; the
    Holm adjustment keeps the chance of any false flag at the stated level without assuming
    the features are independent. For a 1-D input, NaN entries stay NaN and are not counted
    in the family; N-D inputs must be finite.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim == 1:
        out = np.full(p.shape, np.nan)
        ok = np.isfinite(p)
        if ok.any():
            out[ok] = _holm_last_axis(p[ok])
        return out
    if not np.all(np.isfinite(p)):
        raise ValueError("holm_adjust needs finite p-values for inputs with more than 1 axis")
    return _holm_last_axis(p)


def _holm_last_axis(p: NDArray[np.float64]) -> NDArray[np.float64]:
    k = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, axis=-1)
    adj = np.minimum(np.maximum.accumulate(ps * (k - np.arange(k)), axis=-1), 1.0)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return out


def window_at(x: NDArray[Any], days: NDArray[np.int64], w: int) -> NDArray[Any]:
    """(S, D, w) copies of the windows (t - w, t] of x (S, T) for each monitored day t."""
    return np.ascontiguousarray(sliding_window_view(x, w, axis=1)[:, days - w + 1, :])


def ks_statistic_windows(
    ref: NDArray[np.float64], series: NDArray[np.float64], days: NDArray[np.int64], n: int
) -> NDArray[np.int64]:
    """scipy's two-sample KS statistic of each reference (S, m) against the windows (t - n, t]
    of ``series`` (S, T) for every day t in ``days``, times lcm(m, n), as exact integers.

    One scipy call costs about a millisecond, and the false-alarm table needs about a million
    (every path, day and feature); this gives the same statistics in one pass. Between two
    consecutive window points the window's ECDF is flat and the reference's is monotone, so the
    supremum is reached at a window point, either at it or just before it; both sides are
    evaluated, which reproduces scipy's statistic for continuous data (ties are caught where
    the p-value is taken, see ``false_alarms``). The reference counts are computed once per
    series value and gathered per window, since windows overlap; sorting the counts sorts the
    points, counts being monotone in the value. Integers make equal statistics compare equal,
    so a p-value is computed once per distinct value.
    """
    n_sims, m = ref.shape
    lcm = math.lcm(m, n)
    ref_sorted = np.sort(ref, axis=1)
    right = np.stack(
        [np.searchsorted(ref_sorted[s], series[s], side="right") for s in range(n_sims)]
    ).astype(np.int64)
    left = np.stack(
        [np.searchsorted(ref_sorted[s], series[s], side="left") for s in range(n_sims)]
    ).astype(np.int64)
    right_w = np.sort(window_at(right, days, n), axis=-1)
    left_w = np.sort(window_at(left, days, n), axis=-1)
    i = np.arange(1, n + 1, dtype=np.int64)
    a, b = lcm // m, lcm // n
    d = np.maximum(np.abs(right_w * a - i * b), np.abs(left_w * a - (i - 1) * b))
    return np.asarray(d.max(axis=-1))


def rms(x: NDArray[np.float64]) -> Any:
    """Root mean square along the last axis (the "moving RMSE" of a window of errors)."""
    return np.sqrt(np.mean(x * x, axis=-1))
