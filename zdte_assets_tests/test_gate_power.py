"""The significance gate on a planted AR(1) signal: what it weighs, and how soon it can open.

Today's open-to-close return is ``PHI`` times yesterday's plus noise, so the best forecast (the
oracle ``PHI * r[t-1]``) has an RMSE of ``sqrt(1 - PHI**2)`` of the naive one. A forecaster
that uses a share ``k`` of the oracle, ``k * PHI * r[t-1]``, has an RMSE ratio ``R`` with
``R**2 = 1 - PHI**2 * (2k - k**2)``: the ratios the weekly studies report (0.8-0.9) are such
forecasters. These tests pin the gate's conventions (which errors, which pairs, which direction
of the one-sided test) with known answers, and the number of sessions its Diebold-Mariano test
needs, derived from the loss differential's moments, so a walk can be sized to let it open.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from zdte_assets.data import synthetic
from zdte_assets.evaluation.metrics import diebold_mariano, pesaran_timmermann
from zdte_assets.features.rows import LOOKBACK
from zdte_assets.trading.gate import GateConfig, significance_gate
from zdte_assets.trading.pricing import DecisionConfig

PHI = 0.8
SIGMA = 0.012
LEVEL = 0.05


def _ar1(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """``n + 1`` returns of a stationary AR(1): element 0 is the day before the first."""
    e = rng.normal(0.0, SIGMA, n + 1)
    r = np.empty(n + 1)
    r[0] = e[0] / math.sqrt(1.0 - PHI**2)
    for t in range(1, n + 1):
        r[t] = PHI * r[t - 1] + e[t]
    return r


def _share_for_ratio(ratio: float) -> float:
    """The share ``k`` of the oracle whose RMSE ratio to naive is ``ratio``."""
    return 1.0 - math.sqrt(1.0 - (1.0 - ratio**2) / PHI**2)


def test_the_gate_opens_on_the_oracle_and_never_on_its_opposite() -> None:
    rng = np.random.default_rng(0)
    r = _ar1(rng, 250)
    realized, oracle = r[1:], PHI * r[:-1]
    opened = significance_gate(oracle, realized, shrinkage=1.0, config=GateConfig())
    assert opened.open, opened.reason
    assert opened.dm_pvalue is not None and opened.dm_pvalue < 1e-6
    assert opened.dm_stat is not None and opened.dm_stat < 0  # the model's losses are smaller
    # The opposite forecast: its errors are larger and its directions wrong, so the one-sided
    # tests say "not better" with p near 1 rather than "significantly different".
    shut = significance_gate(-oracle, realized, shrinkage=1.0, config=GateConfig())
    assert not shut.open
    assert shut.dm_pvalue is not None and shut.dm_pvalue > 1 - 1e-6
    assert shut.pt_pvalue is not None and shut.pt_pvalue > 1 - 1e-6


def test_the_error_sign_does_not_matter_to_the_loss() -> None:
    """Squared losses: ``realized - predicted`` or ``predicted - realized`` give the same test
    (the naive error being ``realized`` or ``-realized`` alike), so no sign flip can hide skill."""
    rng = np.random.default_rng(1)
    r = _ar1(rng, 120)
    realized, oracle = r[1:], PHI * r[:-1]
    for alternative in ("two-sided", "model_better"):
        assert diebold_mariano(
            realized - oracle, realized, alternative=alternative
        ) == pytest.approx(
            diebold_mariano(oracle - realized, -realized, alternative=alternative), rel=1e-12
        )


def test_the_gate_weighs_each_forecast_against_its_own_day_open_to_close() -> None:
    """Through the platform's own walk: the gate's evidence is exactly the recorded pairs of
    (forecast of day d, log(close/open) of day d) of the sessions before the morning."""
    history = LOOKBACK + 70
    sessions = 12
    bars = synthetic.synthetic_bars("signal", history + sessions, seed=3, signal=PHI)
    config = DecisionConfig(gate_min_days=5)
    past, records = synthetic.simulate(bars, history, config=config)
    walked = bars.slice(history)
    realized = np.log(walked["close"].to_numpy() / walked["open"].to_numpy())
    np.testing.assert_allclose(past["realized_return"].to_numpy(), realized, rtol=1e-12)
    predicted = np.array([rec.predicted_return for rec in records])
    np.testing.assert_array_equal(past["predicted_return"].to_numpy(), predicted)
    assert past["date"].to_list() == walked["date"].to_list()
    for i, rec in enumerate(records):
        gate = rec.gate.model_dump()
        assert gate["n"] == i
        if i < 3:
            continue
        stat, p = diebold_mariano(
            realized[:i] - predicted[:i], realized[:i], alternative="model_better"
        )
        assert gate["dm_stat"] == pytest.approx(stat, rel=1e-12)
        assert gate["dm_pvalue"] == pytest.approx(p, rel=1e-12)
        pt = pesaran_timmermann(realized[:i], predicted[:i])[1]
        assert gate["pt_pvalue"] == pytest.approx(pt, rel=1e-12)


def dm_sessions_needed(ratio: float, power: float, level: float = LEVEL) -> int:
    """Fewest paired losses at which the gate's one-sided DM test (HLN, h = 1) rejects with
    probability ``power`` for a share of the oracle with RMSE ratio ``ratio``, by moments.

    With ``s**2`` the variance of the returns and ``x = r[t-1]``, the loss differential is
    ``d = c1 * x**2 + c2 * x * e`` with ``c1 = (k**2 - 2k) PHI**2`` and ``c2 = -2k PHI``: mean
    ``c1 s**2``, variance ``g0 = 2 c1**2 s**4 + c2**2 s**2 SIGMA**2``. ``x**2`` has
    autocorrelations ``PHI**(2j)``, so the long-run variance is
    ``lrv = 2 c1**2 s**4 (1 + PHI**2) / (1 - PHI**2) + c2**2 s**2 SIGMA**2``. The statistic
    divides by ``sqrt(g0 / n)`` (no autocovariances at h = 1) and so has mean
    ``sqrt(n - 1) * mean / sqrt(g0)`` and standard deviation ``sqrt(lrv / g0)``; its power is
    ``Phi((sqrt(n - 1) |mean| / sqrt(g0) - t_crit) / sqrt(lrv / g0))``.
    """
    k = _share_for_ratio(ratio)
    s2 = SIGMA**2 / (1.0 - PHI**2)
    c1, c2 = (k**2 - 2.0 * k) * PHI**2, -2.0 * k * PHI
    mean = c1 * s2
    g0 = 2.0 * c1**2 * s2**2 + c2**2 * s2 * SIGMA**2
    lrv = 2.0 * c1**2 * s2**2 * (1.0 + PHI**2) / (1.0 - PHI**2) + c2**2 * s2 * SIGMA**2
    for n in range(3, 10_000):
        t_crit = float(stats.t.ppf(1.0 - level, n - 1))
        z = (math.sqrt(n - 1) * abs(mean) / math.sqrt(g0) - t_crit) / math.sqrt(lrv / g0)
        if stats.norm.cdf(z) >= power:
            return n
    raise AssertionError("unreachable for a forecaster better than naive")


@pytest.mark.parametrize("ratio", [0.8, 0.87])
def test_dm_rejects_with_the_derived_power_within_the_derived_sessions(ratio: float) -> None:
    power = 0.8
    n = dm_sessions_needed(ratio, power)
    k = _share_for_ratio(ratio)
    rng = np.random.default_rng(4)
    paths = 400
    rejected = 0
    for _ in range(paths):
        r = _ar1(rng, n)
        realized, forecast = r[1:], k * PHI * r[:-1]
        p = diebold_mariano(realized - forecast, realized, alternative="model_better")[1]
        rejected += p < LEVEL
    # The normal approximation with the long-run variance is conservative for this statistic;
    # three binomial standard errors of slack below the target.
    assert rejected / paths >= power - 3 * math.sqrt(power * (1 - power) / paths), (n, rejected)
    # And 20 sessions are fewer than the moments ask for: "ratio 0.8 over 20 sessions" is not
    # a promise of significance.
    assert n > 20


def test_the_gate_opens_within_the_sessions_its_dm_test_needs() -> None:
    """The gate also asks Pesaran-Timmermann; on a forecaster with the studies' ratio it still
    opens, in most walks, within the sessions at which DM alone has 90% power (checked every
    session from ``min_days`` on, as the walk checks it every morning)."""
    ratio, min_days = 0.8, 10
    n = dm_sessions_needed(ratio, 0.9)
    k = _share_for_ratio(ratio)
    config = GateConfig(min_days=min_days)
    rng = np.random.default_rng(6)
    paths = 200
    opened = 0
    for _ in range(paths):
        r = _ar1(rng, n)
        realized, forecast = r[1:], k * PHI * r[:-1]
        opened += any(
            significance_gate(forecast[:i], realized[:i], k, config).open
            for i in range(min_days, n + 1)
        )
    target = 0.8
    assert opened / paths >= target - 3 * math.sqrt(target * (1 - target) / paths), (n, opened)
