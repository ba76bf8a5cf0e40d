"""The predictive distribution of a day's log open-to-close return.

Student-t with ``DEFAULT_DF`` degrees of freedom, scaled so its standard deviation equals the
model's sigma (fat tails without inflating the spread); ``df=None`` gives a normal distribution.
Pricing integrates option payoffs over it, so it accepts arrays as well as scalars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from scipy import stats

#: Degrees of freedom of the Student-t predictive distribution.
DEFAULT_DF = 5.0


@dataclass(frozen=True)
class PredictiveDistribution:
    """Distribution of the log open-to-close return: Student-t (std = sigma) or normal."""

    mean: float
    sigma: float
    df: float | None = DEFAULT_DF

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"need a finite mean and a positive sigma, got {self}")
        if self.df is not None and not self.df > 2:
            raise ValueError("df must be > 2 (finite variance) or None for a normal")

    def _frozen(self) -> Any:
        if self.df is None:
            return stats.norm(loc=self.mean, scale=self.sigma)
        scale = self.sigma * math.sqrt((self.df - 2) / self.df)
        return stats.t(self.df, loc=self.mean, scale=scale)

    @overload
    def prob_above(self, log_threshold: float) -> float: ...

    @overload
    def prob_above(self, log_threshold: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

    def prob_above(
        self, log_threshold: float | npt.NDArray[np.float64]
    ) -> float | npt.NDArray[np.float64]:
        """P(return > log_threshold); ``log(strike / open)`` gives P(close > strike)."""
        out = self._frozen().sf(log_threshold)
        return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)

    @overload
    def quantile(self, q: float) -> float: ...

    @overload
    def quantile(self, q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

    def quantile(self, q: float | npt.NDArray[np.float64]) -> float | npt.NDArray[np.float64]:
        """Inverse CDF; arrays are accepted so pricing can integrate payoffs over quantiles."""
        out = self._frozen().ppf(q)
        return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)

    @property
    def p_up(self) -> float:
        return self.prob_above(0.0)

    @property
    def q05(self) -> float:
        return self.quantile(0.05)

    @property
    def q95(self) -> float:
        return self.quantile(0.95)

    def to_dict(self) -> dict[str, float | None]:
        return {
            "mean": self.mean,
            "sigma": self.sigma,
            "df": self.df,
            "p_up": self.p_up,
            "q05": self.q05,
            "q95": self.q95,
        }


def predictive_distribution(
    mean: float, sigma: float, df: float | None = DEFAULT_DF
) -> PredictiveDistribution:
    """Student-t by default because daily returns have fatter tails than a normal."""
    return PredictiveDistribution(mean=float(mean), sigma=float(sigma), df=df)
