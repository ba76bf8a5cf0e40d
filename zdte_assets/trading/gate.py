"""The significance gate: trade only on a forecast that has beaten the free ones out of sample.

Evidence is the pooled record of what the platform itself forecast on the sessions before the
day (the predictions of the daily models actually used, one per session, against what happened),
never the study's best trial, whose score is selected from many and so biased upwards. The gate
opens only when all of these hold:

* the model in use has a shrinkage above 0 (with 0 its forecast *is* the naive one);
* at least ``min_days`` past out-of-sample forecasts exist in the trailing ``window``;
* a one-sided Diebold-Mariano test (squared errors, Harvey-Leybourne-Newbold correction) says
  the model's errors are smaller than the naive forecast's at level ``dm_alpha``;
* a one-sided Pesaran-Timmermann test says its directions beat the base rate at ``pt_alpha``.

Both levels default to 0.05: on a market with no predictable component each test opens by
chance at most 5% of the time and both together less often, and the option premium's
``iv_ratio`` and costs still stand between an opened gate and a trade.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from zdte_assets.evaluation import metrics as evaluation

GateCode = Literal["open", "naive_model", "too_few_days", "not_better_than_naive"]


@dataclass(frozen=True)
class GateConfig:
    """Window and levels of the gate (sessions, sessions, test levels)."""

    window: int = 250
    min_days: int = 60
    dm_alpha: float = 0.05
    pt_alpha: float = 0.05

    def __post_init__(self) -> None:
        if not 1 <= self.min_days <= self.window:
            raise ValueError(f"need 1 <= min_days <= window, got {self.min_days}, {self.window}")
        for name in ("dm_alpha", "pt_alpha"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value!r}")


@dataclass(frozen=True)
class Gate:
    """The gate's verdict with its evidence, as stored in every prediction record."""

    open: bool
    code: GateCode
    reason: str
    n: int
    n_calls: int
    dm_stat: float | None
    dm_pvalue: float | None
    pt_stat: float | None
    pt_pvalue: float | None
    shrinkage: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def significance_gate(
    predicted: npt.ArrayLike,
    realized: npt.ArrayLike,
    shrinkage: float,
    config: GateConfig | None = None,
) -> Gate:
    """The verdict from past (predicted, realized) log returns, oldest first, days before today."""
    cfg = config or GateConfig()
    p = np.asarray(predicted, dtype=np.float64)[-cfg.window :]
    a = np.asarray(realized, dtype=np.float64)[-cfg.window :]
    if p.shape != a.shape:
        raise ValueError(f"predicted and realized differ in length: {p.size} vs {a.size}")
    keep = np.isfinite(p) & np.isfinite(a)
    p, a = p[keep], a[keep]
    n = int(p.size)
    n_calls = int(np.count_nonzero(p))
    dm_stat, dm_p = evaluation.diebold_mariano(a - p, a, alternative="model_better")
    pt_stat, pt_p = evaluation.pesaran_timmermann(a, p)
    evidence = (
        f"{n} past forecasts: Diebold-Mariano p = {dm_p:.3f}, Pesaran-Timmermann p = {pt_p:.3f}"
        if n >= 3
        else f"{n} past forecasts"
    )

    def verdict(is_open: bool, code: GateCode, reason: str) -> Gate:
        return Gate(
            open=is_open,
            code=code,
            reason=reason,
            n=n,
            n_calls=n_calls,
            dm_stat=_finite(dm_stat),
            dm_pvalue=_finite(dm_p),
            pt_stat=_finite(pt_stat),
            pt_pvalue=_finite(pt_p),
            shrinkage=shrinkage,
        )

    if not shrinkage > 0.0:
        return verdict(
            False, "naive_model", "the model's shrinkage is 0, so its forecast is the naive one"
        )
    if n < cfg.min_days:
        return verdict(
            False,
            "too_few_days",
            f"only {n} past out-of-sample forecasts, the gate needs {cfg.min_days}",
        )
    dm_ok = math.isfinite(dm_p) and dm_p < cfg.dm_alpha
    pt_ok = math.isfinite(pt_p) and pt_p < cfg.pt_alpha
    if not (dm_ok and pt_ok):
        return verdict(
            False,
            "not_better_than_naive",
            f"the forecast has not beaten the naive one ({evidence}; levels "
            f"{cfg.dm_alpha:g} and {cfg.pt_alpha:g})",
        )
    return verdict(True, "open", f"the forecast beats the naive one ({evidence})")


__all__ = ["Gate", "GateConfig", "significance_gate"]
