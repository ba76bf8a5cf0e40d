"""The session's predictive distribution: volatility forecast, tail shape and calibration.

A 0-DTE option bought at the open lives through one session, so what matters is the spread of
``log(close / open)`` for that session. It is built in three steps, each from rows strictly
before the day it serves:

1. **Volatility forecast** (``session_vol``, a feature column): an exponentially weighted mean
   of the daily Garman-Klass open-to-close variance over the feature window, RiskMetrics' daily
   decay ``EWMA_DECAY`` = 0.94 (a half-life of about 11 sessions). Range-based estimators use
   high and low as well as open and close and so are several times more efficient than squared
   returns; the exponential weights let the forecast follow a change of regime within a few
   weeks. The weights are truncated to the feature window and renormalized, like every
   "recursive" indicator in ``features``, so the value depends on the window alone.
2. **Tail shape**: past returns divided by the forecast made before each of them
   (standardized residuals of the naive mean) pick the degrees of freedom of a unit-variance
   Student-t by maximum likelihood over ``DF_GRID``. Daily stock returns standardized by a good
   volatility forecast typically have 4-10 degrees of freedom; the grid lets the data choose.
3. **Calibration** (split conformal): the forecast is multiplied by the factor that makes the
   central ``CALIBRATION_LEVEL`` interval cover the past standardized residuals at the
   finite-sample conformal quantile (rank ``ceil((n + 1) * level)`` of ``|z|``). A range-based
   estimator on discretely traded bars is biased low, and a forecast's error adds to the
   return's own spread; the factor absorbs both without ever seeing the day it serves.

The distribution used for the day is ``log(close/open) = mu + s * Z - log E[exp(s * Z)]`` with
``Z`` the unit-variance shape, ``s`` the calibrated session volatility and ``mu`` the model's
forecast. The correction term makes ``E[close] = open * exp(mu)``: a zero forecast says the
close is expected to equal the open, which is also what the option market assumes (rate 0 for a
same-day option). ``pricing`` prices the market's premium with the same shape at ``iv_ratio``
times ``s``, so an edge can only come from ``mu``.

Expectations are taken over ``GRID_SIZE`` equally likely quantiles of ``Z`` (midpoints in
probability), which keeps them finite for Student-t tails whose exponential moments do not
exist; the same grid serves the correction term, so the market and the model agree exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

OptionKind = Literal["call", "put"]

#: RiskMetrics' daily decay for exponentially weighted volatility.
EWMA_DECAY = 0.94
#: Degrees of freedom the tail shape is chosen from (None: normal).
DF_GRID: tuple[float | None, ...] = (4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 30.0, None)
#: Shape used until enough past residuals exist to choose one.
DEFAULT_DF = 5.0
#: Central interval the conformal factor is fitted to.
CALIBRATION_LEVEL = 0.9
#: Past sessions the shape and the factor are estimated from (the most recent ones): half a
#: year leaves 12 residuals beyond the 90% quantile and still follows a change in the shape.
CALIBRATION_WINDOW = 120
#: Fewer past residuals than this: no calibration (factor 1, default shape), and it is said so.
MIN_CALIBRATION_ROWS = 30
#: Equally likely quantiles of the shape used for expectations.
GRID_SIZE = 4000


def ewma_weights(length: int, decay: float = EWMA_DECAY) -> npt.NDArray[np.float64]:
    """Weights (newest last) of an exponential average truncated to ``length`` and renormalized."""
    w = decay ** np.arange(length - 1, -1, -1, dtype=np.float64)
    out: npt.NDArray[np.float64] = w / w.sum()
    return out


def garman_klass_terms(
    o: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Per-bar Garman-Klass variance of the open-to-close log price, clipped at 0 for bad bars."""
    hl = np.log(h / lo)
    oc = np.log(c / o)
    return np.maximum(0.5 * hl**2 - (2.0 * math.log(2.0) - 1.0) * oc**2, 0.0)


def session_vol(
    terms: npt.NDArray[np.float64], decay: float = EWMA_DECAY
) -> npt.NDArray[np.float64]:
    """EWMA session volatility from rows of per-bar variances (shape ``(m, window)``)."""
    # An elementwise product and a row sum, not a matrix product: BLAS may block a product
    # differently for one row than for many, and the live row must equal the training row.
    out: npt.NDArray[np.float64] = np.sqrt(
        (terms * ewma_weights(terms.shape[-1], decay)).sum(axis=-1)
    )
    return out


# ------------------------------------------------------------------------------- the shape


def _check_df(df: float | None) -> None:
    if df is not None and not (math.isfinite(df) and df > 2):
        raise ValueError(f"df must be > 2 (finite variance) or None for a normal, got {df!r}")


def _shape(df: float | None) -> Any:
    """The unit-variance shape as a frozen scipy distribution."""
    if df is None:
        return stats.norm()
    return stats.t(df, scale=math.sqrt((df - 2.0) / df))


@functools.lru_cache(maxsize=64)
def _grid(df: float | None) -> npt.NDArray[np.float64]:
    u = (np.arange(GRID_SIZE) + 0.5) / GRID_SIZE
    z = np.asarray(_shape(df).ppf(u), dtype=np.float64)
    z.setflags(write=False)
    return z


@dataclass(frozen=True)
class SessionForecast:
    """``log(close/open) = mu + scale * Z - log E[exp(scale * Z)]`` (see the module docstring).

    ``scale`` is the standard deviation of the log return over the session (not annualized);
    ``df`` the shape's degrees of freedom (None: normal).
    """

    mu: float
    scale: float
    df: float | None = DEFAULT_DF

    def __post_init__(self) -> None:
        if not math.isfinite(self.mu):
            raise ValueError(f"mu must be finite, got {self.mu!r}")
        if not (math.isfinite(self.scale) and self.scale >= 0.0):
            raise ValueError(f"scale must be a non-negative finite number, got {self.scale!r}")
        _check_df(self.df)

    @property
    def drift_correction(self) -> float:
        """``log E[exp(scale * Z)]`` on the grid, so that ``E[close] = open * exp(mu)``."""
        if self.scale == 0.0:
            return 0.0
        x = self.scale * _grid(self.df)
        top = float(x.max())
        return top + math.log(float(np.mean(np.exp(x - top))))

    @property
    def location(self) -> float:
        return self.mu - self.drift_correction

    def log_returns(self) -> npt.NDArray[np.float64]:
        """Equally likely log returns (the grid) that expectations are taken over."""
        return self.location + self.scale * _grid(self.df)

    def closes(self, spot: float) -> npt.NDArray[np.float64]:
        return spot * np.exp(self.log_returns())

    def expected_payoff(self, kind: OptionKind, strike: float, spot: float) -> float:
        closes = self.closes(spot)
        if kind == "call":
            return float(np.mean(np.maximum(closes - strike, 0.0)))
        return float(np.mean(np.maximum(strike - closes, 0.0)))

    def p_itm(self, kind: OptionKind, strike: float, spot: float) -> float:
        """P(finishing strictly in the money), from the shape's distribution function."""
        p_above = self.sf(math.log(strike / spot))
        return p_above if kind == "call" else 1.0 - p_above

    # Exact functions of the (untruncated) shape, for intervals and scores.
    def cdf(self, x: float | npt.NDArray[np.float64]) -> Any:
        if self.scale == 0.0:
            return np.where(np.asarray(x) >= self.location, 1.0, 0.0)
        return _shape(self.df).cdf((np.asarray(x) - self.location) / self.scale)

    def sf(self, x: float) -> float:
        return float(1.0 - self.cdf(x))

    def quantile(self, q: float) -> float:
        return float(self.location + self.scale * _shape(self.df).ppf(q))

    def logpdf(self, x: float) -> float:
        if self.scale == 0.0:
            return math.inf if x == self.location else -math.inf
        return float(
            _shape(self.df).logpdf((x - self.location) / self.scale) - math.log(self.scale)
        )

    @property
    def p_up(self) -> float:
        """P(close > open)."""
        return self.sf(0.0)

    def with_mu(self, mu: float) -> SessionForecast:
        return SessionForecast(mu, self.scale, self.df)

    def scaled(self, factor: float) -> SessionForecast:
        return SessionForecast(self.mu, self.scale * factor, self.df)

    def to_dict(self) -> dict[str, Any]:
        return {"family": "student_t" if self.df else "normal", **asdict(self)}


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """Shape and conformal factor estimated from past standardized residuals ``z``.

    ``factor`` multiplies the ``session_vol`` forecast; ``n`` is the number of past residuals
    used (0 when there were too few and the defaults apply).
    """

    df: float | None = DEFAULT_DF
    factor: float = 1.0
    n: int = 0
    level: float = CALIBRATION_LEVEL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        df = data.get("df")
        return cls(
            df=None if df is None else float(df),
            factor=float(data["factor"]),
            n=int(data["n"]),
            level=float(data.get("level", CALIBRATION_LEVEL)),
        )


def standardized_residuals(returns: npt.ArrayLike, vol: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``return / vol`` for pairs where both are finite and the volatility is positive."""
    r = np.asarray(returns, dtype=np.float64)
    v = np.asarray(vol, dtype=np.float64)
    keep = np.isfinite(r) & np.isfinite(v) & (v > 0)
    return r[keep] / v[keep]


def choose_df(z: npt.NDArray[np.float64]) -> float | None:
    """Maximum-likelihood degrees of freedom on ``DF_GRID`` (scale free: ``z`` is rescaled to
    unit root-mean-square first, so the choice is about the shape only)."""
    rms = math.sqrt(float(np.mean(z**2)))
    if not rms > 0:
        return DEFAULT_DF
    u = z / rms
    scores = [float(np.sum(_shape(df).logpdf(u))) for df in DF_GRID]
    return DF_GRID[int(np.argmax(scores))]


def calibrate(z: npt.ArrayLike, level: float = CALIBRATION_LEVEL) -> Calibration:
    """Shape by maximum likelihood, then the split-conformal factor for the central interval."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    arr = np.asarray(z, dtype=np.float64)
    arr = arr[np.isfinite(arr)][-CALIBRATION_WINDOW:]
    n = int(arr.size)
    if n < MIN_CALIBRATION_ROWS:
        return Calibration(level=level)
    df = choose_df(arr)
    rank = min(math.ceil((n + 1) * level), n)
    q_abs = float(np.sort(np.abs(arr))[rank - 1])
    q_shape = float(_shape(df).ppf(0.5 + level / 2.0))
    factor = q_abs / q_shape if q_abs > 0 else 1.0
    return Calibration(df=df, factor=factor, n=n, level=level)


__all__ = [
    "CALIBRATION_LEVEL",
    "Calibration",
    "SessionForecast",
    "calibrate",
    "choose_df",
    "ewma_weights",
    "garman_klass_terms",
    "session_vol",
    "standardized_residuals",
]
