"""Forecast quality of the open-to-close return model, judged against what is free.

A return forecast is only worth something if it beats two free alternatives:

* the naive forecast "close = open" (a predicted log return of 0), compared on squared or
  absolute errors with the Diebold-Mariano test and the Harvey-Leybourne-Newbold (HLN)
  small-sample correction, because monitoring windows are short and the uncorrected test
  rejects too often on them;
* the base rate of up days for direction ("always up" scores the share of up days, about 55%
  on the AAPL sample), compared with the Pesaran-Timmermann test, which asks whether predicted
  and realized directions are dependent rather than whether the hit rate is above 50%.

Conventions shared by every function here:

* an error is ``actual - predicted``;
* a day is "up" when its realized log return is strictly positive, so a flat close is not up
  (for an at-the-money option buyer a flat close loses on both sides);
* a prediction of exactly 0 is "no call": the model abstains, so it is neither a hit nor a
  miss in the directional accuracy over calls (see ``directional_hits``);
* pairs where either value is NaN are dropped before anything is computed.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

DMAlternative = Literal["two-sided", "model_better"]
PTAlternative = Literal["greater", "two-sided"]


def _as_float(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64).ravel()


def _paired(a: ArrayLike, b: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Drop pairs with a NaN, so a missing prediction cannot silently count as a zero."""
    x, y = _as_float(a), _as_float(b)
    if x.shape != y.shape:
        raise ValueError(f"inputs must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def directional_hits(actual: ArrayLike, predicted: ArrayLike) -> NDArray[np.float64]:
    """Per-day direction outcome: 1.0 hit, 0.0 miss, NaN no call (or missing data).

    Returned with the inputs' shape (nothing dropped) so callers can take calendar windows of
    it; NaN keeps "the model abstained" distinct from "the model was wrong". A call on a flat
    day (actual exactly 0) is a miss, since neither direction paid off.
    """
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if a.shape != p.shape:
        raise ValueError(f"inputs must have the same shape, got {a.shape} and {p.shape}")
    out = np.full(a.shape, np.nan)
    valid = np.isfinite(a) & np.isfinite(p) & (p != 0.0)
    out[valid] = (np.sign(a[valid]) == np.sign(p[valid])).astype(np.float64)
    return out


def directional_accuracy(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Hits over calls (``directional_hits``): the one directional accuracy of the platform,
    used by the study, the drift report, the outcome and the replay. NaN when nothing was called.
    """
    hits = directional_hits(actual, predicted)
    calls = np.isfinite(hits)
    return float(np.mean(hits[calls])) if calls.any() else math.nan


def base_rate_up(actual: ArrayLike) -> float:
    """Share of up days (return > 0): the accuracy of "always up", the bar to clear.

    NaN for an empty input, because a base rate of nothing is not 0.5.
    """
    a = _as_float(actual)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return math.nan
    return float(np.mean(a > 0.0))


def forecast_metrics(actual: ArrayLike, predicted: ArrayLike) -> dict[str, float]:
    """Error and direction metrics, each next to the free benchmark it must beat.

    ``directional_accuracy`` is measured over calls only (non-zero predictions) so a model that
    abstains is judged on the days it spoke; ``coverage`` says how often that was, and
    ``hit_rate_all_days`` counts abstentions as misses for a comparison with "always up"
    (``base_rate_up``), which calls every day. ``rmse_naive``/``mae_naive`` are the errors of
    the zero-return forecast on the same days.
    """
    a, p = _paired(actual, predicted)
    n = a.size
    if n == 0:
        nan = math.nan
        return {
            "n": 0.0,
            "rmse": nan,
            "mae": nan,
            "bias": nan,
            "rmse_naive": nan,
            "mae_naive": nan,
            "directional_accuracy": nan,
            "n_calls": 0.0,
            "coverage": nan,
            "hit_rate_all_days": nan,
            "base_rate_up": nan,
        }
    err = a - p
    hits = directional_hits(a, p)
    calls = np.isfinite(hits)
    n_calls = int(calls.sum())
    n_hits = float(np.nansum(hits))
    return {
        "n": float(n),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "bias": float(np.mean(err)),
        "rmse_naive": float(np.sqrt(np.mean(a**2))),
        "mae_naive": float(np.mean(np.abs(a))),
        "directional_accuracy": directional_accuracy(a, p),
        "n_calls": float(n_calls),
        "coverage": n_calls / n,
        "hit_rate_all_days": n_hits / n,
        "base_rate_up": float(np.mean(a > 0.0)),
    }


def brier_score(p_up: ArrayLike, actual: ArrayLike) -> float:
    """Mean squared gap between the forecast probability of an up day and what happened.

    Kept separate from ``forecast_metrics`` because only models with a predictive distribution
    produce ``p_up``. The free benchmark is the constant base rate ``b``, whose score is
    ``b * (1 - b)`` (0.25 at b = 0.5).
    """
    prob, a = _paired(p_up, actual)
    if prob.size == 0:
        return math.nan
    if np.any((prob < 0.0) | (prob > 1.0)):
        raise ValueError("p_up must be probabilities in [0, 1]")
    return float(np.mean((prob - (a > 0.0)) ** 2))


def diebold_mariano(
    e_model: ArrayLike,
    e_naive: ArrayLike,
    h: int = 1,
    power: float = 2,
    alternative: DMAlternative = "two-sided",
) -> tuple[float, float]:
    """Diebold-Mariano test with the Harvey-Leybourne-Newbold correction, t(n-1) p-value.

    The loss differential is ``d_t = |e_model|^power - |e_naive|^power``; a negative statistic
    means the model has the smaller loss. Its variance is the long-run variance with
    autocovariances up to lag ``h - 1`` (an h-step forecast's errors are MA(h-1)); if that sum
    is not positive (possible for h > 1) the lag-0 variance is used instead. The statistic is
    multiplied by ``sqrt((n + 1 - 2h + h(h - 1)/n) / n)`` and referred to Student-t with
    ``n - 1`` degrees of freedom, which HLN showed keeps the size honest on short samples.

    ``alternative="model_better"`` is the one-sided test of "the model's expected loss is
    lower" (small p = evidence the model beats the naive forecast).

    Degenerate cases, chosen so a caller can tell "no difference" from "cannot say":

    * fewer than 3 usable pairs, or ``h >= n``: ``(nan, nan)`` -- no test is possible;
    * a loss differential with no variation that is identically 0 (identical errors):
      ``(0.0, 1.0)`` for either alternative -- there is no evidence of a difference;
    * a constant non-zero differential: ``(-inf or +inf, 0.0 or 1.0)`` -- one forecast is
      better on every single day, which no sampling variation can explain.
    """
    if h < 1:
        raise ValueError(f"h must be >= 1, got {h}")
    if power <= 0:
        raise ValueError(f"power must be > 0, got {power}")
    if alternative not in ("two-sided", "model_better"):
        raise ValueError(f"unknown alternative {alternative!r}")
    em, en = _paired(e_model, e_naive)
    d = np.abs(em) ** power - np.abs(en) ** power
    n = d.size
    if n < 3 or h >= n:
        return math.nan, math.nan
    d_bar = float(np.mean(d))
    dc = d - d_bar
    gamma0 = float(np.dot(dc, dc)) / n
    # A differential whose variation underflows to zero is as constant as one with none.
    if float(np.ptp(d)) == 0.0 or gamma0 == 0.0:
        if d_bar == 0.0:
            return 0.0, 1.0
        stat = math.copysign(math.inf, d_bar)
    else:
        lrv = gamma0 + 2.0 * sum(float(np.dot(dc[k:], dc[:-k])) / n for k in range(1, h))
        if lrv <= 0.0:
            lrv = gamma0
        dm = d_bar / math.sqrt(lrv / n)
        stat = dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    df = n - 1
    if alternative == "two-sided":
        pvalue = float(2.0 * stats.t.sf(abs(stat), df))
    else:
        pvalue = float(stats.t.cdf(stat, df))
    return float(stat), min(pvalue, 1.0)


def pesaran_timmermann(
    actual: ArrayLike, predicted: ArrayLike, alternative: PTAlternative = "greater"
) -> tuple[float, float]:
    """Pesaran-Timmermann (1992) test that predicted and realized directions are independent.

    Unlike a hit rate against 50%, it accounts for both marginal frequencies: on a sample with
    55% up days, "always up" hits 55% of the time yet has no skill, and this test says so.
    Only calls (non-zero predictions) enter; the realized direction is up when the return is
    > 0. The statistic is asymptotically N(0, 1); ``alternative="greater"`` (default) tests
    for positive directional skill, ``"two-sided"`` for any dependence.

    Degenerate cases return ``(nan, 1.0)``: no calls, all calls in one direction, or all
    realized days in one direction. The statistic's variance is then zero, and a forecast that
    never varies (or a sample that never varies) carries no evidence of skill, so the
    conservative p-value of 1 is the honest answer for a test whose alternative is skill.
    """
    if alternative not in ("greater", "two-sided"):
        raise ValueError(f"unknown alternative {alternative!r}")
    a, p = _paired(actual, predicted)
    calls = p != 0.0
    a, p = a[calls], p[calls]
    n = a.size
    if n == 0:
        return math.nan, 1.0
    y = a > 0.0
    x = p > 0.0
    p_hit = float(np.mean(x == y))
    py = float(np.mean(y))
    px = float(np.mean(x))
    p_star = py * px + (1.0 - py) * (1.0 - px)
    var_p = p_star * (1.0 - p_star) / n
    var_p_star = (
        (2.0 * py - 1.0) ** 2 * px * (1.0 - px) / n
        + (2.0 * px - 1.0) ** 2 * py * (1.0 - py) / n
        + 4.0 * py * px * (1.0 - py) * (1.0 - px) / n**2
    )
    denom = var_p - var_p_star
    if px in (0.0, 1.0) or py in (0.0, 1.0) or not denom > 0.0:
        return math.nan, 1.0
    stat = (p_hit - p_star) / math.sqrt(denom)
    if alternative == "greater":
        pvalue = float(stats.norm.sf(stat))
    else:
        pvalue = float(2.0 * stats.norm.sf(abs(stat)))
    return float(stat), pvalue
