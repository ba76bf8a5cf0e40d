"""Option pricing, expected payoffs and the 0-DTE decision rule."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from zdte_assets.core import calendar as trading_calendar
from zdte_assets.features.volatility import SessionForecast
from zdte_assets.trading.gate import Gate, significance_gate
from zdte_assets.trading.pricing import (
    MINUTES_PER_SESSION,
    TRADING_DAYS_PER_YEAR,
    Decision,
    DecisionConfig,
    candidate_strikes,
    candidates,
    contracts_for_budget,
    decide,
    payoff_at_close,
    position_pnl,
    time_to_close_years,
)

FULL_DAY = dt.date(2024, 6, 14)  # an ordinary Friday session
EARLY_CLOSE_DAY = dt.date(2024, 11, 29)  # day after Thanksgiving, closes at 13:00
OPEN = trading_calendar.session_open_time(FULL_DAY)
CLOSE = trading_calendar.session_close_time(FULL_DAY)

spots = st.floats(min_value=1.0, max_value=5000.0)
sigmas = st.floats(min_value=0.01, max_value=2.0)
years = st.floats(min_value=1e-4, max_value=3.0)
rates = st.floats(min_value=-0.02, max_value=0.15)
kinds = st.sampled_from(["call", "put"])


# ------------------------------------------------- Black-Scholes, the independent reference
# The platform prices on its session distribution (`SessionForecast.expected_payoff`); with a
# normal shape that must be Black-Scholes at rate 0, so the textbook formula lives here as the
# reference it is checked against, itself checked on Hull's worked examples.


def black_scholes(
    spot: float, strike: float, t_years: float, sigma: float, rate: float = 0.0, kind: str = "call"
) -> float:
    """European option price; intrinsic value against the discounted strike when no time or
    volatility is left."""
    if kind not in ("call", "put") or spot <= 0 or strike <= 0 or t_years < 0 or sigma < 0:
        raise ValueError(f"bad Black-Scholes input {(spot, strike, t_years, sigma, kind)}")
    discounted = strike * math.exp(-rate * t_years)
    sd = sigma * math.sqrt(t_years)
    if sd <= 0.0:
        return max(spot - discounted, 0.0) if kind == "call" else max(discounted - spot, 0.0)
    d1 = (math.log(spot / strike) + rate * t_years) / sd + 0.5 * sd
    d2 = d1 - sd
    if kind == "call":
        return float(spot * norm.cdf(d1) - discounted * norm.cdf(d2))
    return float(discounted * norm.cdf(-d2) - spot * norm.cdf(-d1))


def test_black_scholes_matches_hull_textbook_example() -> None:
    # Hull, Options, Futures and Other Derivatives: S=42, K=40, r=10%, sigma=20%, T=0.5.
    assert black_scholes(42, 40, 0.5, 0.2, 0.1, "call") == pytest.approx(4.76, abs=0.005)
    assert black_scholes(42, 40, 0.5, 0.2, 0.1, "put") == pytest.approx(0.81, abs=0.005)


def test_black_scholes_matches_hull_hedging_example() -> None:
    # Hull's delta-hedging example: S=49, K=50, r=5%, sigma=20%, 20 weeks -> 2.40 per share.
    assert black_scholes(49, 50, 20 / 52, 0.2, 0.05, "call") == pytest.approx(2.40, abs=0.005)


@pytest.mark.parametrize("kind", ["call", "put"])
@pytest.mark.parametrize("strike", [90.0, 100.0, 110.0])
def test_no_time_or_no_volatility_is_intrinsic_value(kind, strike) -> None:
    spot = 100.0
    intrinsic = max(spot - strike, 0.0) if kind == "call" else max(strike - spot, 0.0)
    assert black_scholes(spot, strike, 0.0, 0.3, 0.0, kind) == intrinsic
    assert black_scholes(spot, strike, 0.5, 0.0, 0.0, kind) == intrinsic
    assert payoff_at_close(kind, strike, spot) == intrinsic


def test_at_the_money_rule_of_thumb_for_one_session() -> None:
    # NOTES: an ATM option is worth about 0.4 x S x sigma x sqrt(T) with T = 1/252 per session.
    spot, sigma = 190.0, 0.23
    t = 1 / TRADING_DAYS_PER_YEAR
    approx = 0.4 * spot * sigma * math.sqrt(t)
    assert black_scholes(spot, spot, t, sigma) == pytest.approx(approx, rel=0.01)


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError):
        payoff_at_close("straddle", 100.0, 100.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SessionForecast(float("nan"), 0.01)
    with pytest.raises(ValueError):
        SessionForecast(0.0, 0.01, df=2.0)


# ------------------------------------------------------------------------------ time and vol


def test_full_session_is_one_trading_day_of_option_time() -> None:
    assert time_to_close_years(OPEN, CLOSE) == pytest.approx(1 / TRADING_DAYS_PER_YEAR)


def test_early_close_shortens_the_option_life() -> None:
    minutes = (13 * 60) - (9 * 60 + 30)
    expected = minutes / (TRADING_DAYS_PER_YEAR * MINUTES_PER_SESSION)
    start = trading_calendar.session_open_time(EARLY_CLOSE_DAY)
    end = trading_calendar.session_close_time(EARLY_CLOSE_DAY)
    assert time_to_close_years(start, end) == pytest.approx(expected)


def test_time_to_close_counts_remaining_minutes_and_stops_at_zero() -> None:
    noon = OPEN.replace(hour=12, minute=0)
    assert time_to_close_years(noon, CLOSE) == pytest.approx(
        240 / (TRADING_DAYS_PER_YEAR * MINUTES_PER_SESSION)
    )
    assert time_to_close_years(CLOSE + dt.timedelta(minutes=5), CLOSE) == 0.0


def test_implied_vol_of_a_decision_spreads_over_iv_ratio_times_the_session_vol() -> None:
    # A full session at the decision's implied vol spreads over exactly scale x iv_ratio.
    d = _decide(0.01, scale=0.0147, iv_ratio=1.1)
    assert d.implied_vol * math.sqrt(time_to_close_years(OPEN, CLOSE)) == pytest.approx(
        0.0147 * 1.1
    )


# ----------------------------------------------------------------------------------- strikes


@settings(max_examples=150, deadline=None)
@given(
    st.floats(1.0, 5000.0),
    st.sampled_from([0.5, 1.0, 2.5, 5.0]),
    st.floats(0.0, 0.05),
    st.floats(0.0, 3.0),
)
def test_candidate_strikes_lie_within_the_band_plus_the_nearest(spot, inc, scale, max_sd) -> None:
    strikes = candidate_strikes(spot, inc, scale, max_sd)
    nearest = math.floor(spot / inc + 0.5) * inc
    assert strikes == sorted(set(strikes))
    assert all(k > 0 for k in strikes)
    for k in strikes:
        assert abs(k / inc - round(k / inc)) < 1e-6
        inside = abs(math.log(k / spot)) <= max_sd * scale + 1e-9
        assert inside or abs(k - nearest) < 1e-6
    # Every listed strike inside the band is a candidate.
    lo, hi = spot * math.exp(-max_sd * scale), spot * math.exp(max_sd * scale)
    listed = [k * inc for k in range(math.ceil(lo / inc), math.floor(hi / inc) + 1) if k > 0]
    assert all(any(abs(k - c) < 1e-6 for c in strikes) for k in listed)


def test_strike_increments_follow_ticker_then_price() -> None:
    cfg = DecisionConfig()
    assert cfg.strike_increment("SPY", 590.0) == 1.0
    assert cfg.strike_increment("qqq", 20.0) == 1.0
    assert cfg.strike_increment("XYZ", 24.99) == 0.5
    assert cfg.strike_increment("XYZ", 25.0) == 1.0
    assert cfg.strike_increment("AAPL", 199.0) == 1.0
    assert cfg.strike_increment("AAPL", 226.0) == 2.5
    custom = DecisionConfig.from_dict(
        {"ticker_strike_increments": [["AAPL", 5.0]], "price_strike_increments": [[50.0, 0.5]]}
    )
    assert custom.strike_increment("AAPL", 10.0) == 5.0
    assert custom.strike_increment("XYZ", 100.0) == custom.strike_increment_above


def test_spread_scales_with_the_premium_above_a_floor() -> None:
    cfg = DecisionConfig(spread_fraction=0.03, spread_floor=0.01)
    assert cfg.half_spread(0.10) == 0.01
    assert cfg.half_spread(5.0) == pytest.approx(0.15)


# ------------------------------------------------------------------------ the market's price

dfs = st.sampled_from([None, 4.0, 5.0, 8.0, 30.0])


@settings(max_examples=100, deadline=None)
@given(st.floats(10.0, 2000.0), st.floats(0.8, 1.2), st.floats(0.002, 0.05), kinds)
def test_normal_market_price_is_black_scholes(spot, moneyness, scale, kind) -> None:
    # With a normal shape, the drift-free distribution is Black-Scholes at rate 0.
    strike = spot * moneyness
    bs = black_scholes(spot, strike, 1 / 252, scale * math.sqrt(252), 0.0, kind)
    grid = SessionForecast(0.0, scale, None).expected_payoff(kind, strike, spot)
    assert grid == pytest.approx(bs, abs=2e-4 * spot * scale + 1e-9)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(10.0, 2000.0), st.floats(0.8, 1.2), st.floats(-0.03, 0.03), st.floats(0.0, 0.05), dfs
)
def test_session_forecast_keeps_put_call_parity(spot, moneyness, mu, scale, df) -> None:
    f = SessionForecast(mu, scale, df)
    strike = spot * moneyness
    call, put = f.expected_payoff("call", strike, spot), f.expected_payoff("put", strike, spot)
    # E[close] = open * exp(mu), so C - P = open * exp(mu) - K.
    assert call - put == pytest.approx(spot * math.exp(mu) - strike, rel=1e-9, abs=1e-9 * spot)


def test_heavy_tails_raise_the_value_of_far_out_of_the_money_options() -> None:
    normal = SessionForecast(0.0, 0.01, None)
    heavy = SessionForecast(0.0, 0.01, 4.0)
    assert heavy.expected_payoff("call", 106.0, 100.0) > normal.expected_payoff(
        "call", 106.0, 100.0
    )
    assert heavy.expected_payoff("put", 94.0, 100.0) > normal.expected_payoff("put", 94.0, 100.0)


# -------------------------------------------------------------------------------- decision

OPEN_GATE = Gate(
    open=True,
    code="open",
    reason="the forecast beats the naive one (test)",
    n=250,
    n_calls=250,
    dm_stat=-3.0,
    dm_pvalue=0.001,
    pt_stat=3.0,
    pt_pvalue=0.001,
    shrinkage=0.5,
)


def _decide(mu: float, scale: float = 0.01, df: float | None = 5.0, **cfg: Any) -> Decision:
    return decide(
        190.0,
        SessionForecast(mu, scale, df),
        OPEN,
        CLOSE,
        OPEN_GATE,
        DecisionConfig(**cfg),
        ticker="XYZ",
    )


@settings(max_examples=200, deadline=None)
@given(
    spot=st.floats(5.0, 3000.0),
    scale=st.floats(0.0005, 0.08),
    df=dfs,
    iv_ratio=st.floats(1.0, 2.0),
    spread_fraction=st.floats(0.0, 0.1),
    spread_floor=st.floats(0.0, 0.05),
    commission=st.floats(0.0, 2.0),
    min_edge=st.floats(0.0, 0.1),
    max_sd=st.floats(0.0, 4.0),
    day=st.sampled_from([FULL_DAY, EARLY_CLOSE_DAY]),
)
def test_a_zero_forecast_never_trades(
    spot, scale, df, iv_ratio, spread_fraction, spread_floor, commission, min_edge, max_sd, day
) -> None:
    cfg = DecisionConfig(
        iv_ratio=iv_ratio,
        spread_fraction=spread_fraction,
        spread_floor=spread_floor,
        commission=commission,
        min_edge=min_edge,
        max_strike_sd=max_sd,
    )
    start = trading_calendar.session_open_time(day)
    end = trading_calendar.session_close_time(day)
    d = decide(spot, SessionForecast(0.0, scale, df), start, end, OPEN_GATE, cfg, ticker="XYZ")
    assert d.action == "NO_TRADE"
    # Not merely below the threshold: no candidate has a positive expected value at all.
    for c in candidates(
        spot, SessionForecast(0.0, scale, df), cfg.strike_increment("XYZ", spot), cfg
    ):
        assert c.expected_value <= 1e-9


@settings(max_examples=150, deadline=None)
@given(
    spot=st.floats(5.0, 3000.0),
    scale=st.floats(0.0005, 0.08),
    df=dfs,
    spread_fraction=st.floats(0.0, 0.1),
    spread_floor=st.floats(0.0, 0.05),
    commission=st.floats(0.0, 2.0),
)
def test_a_forecast_equal_to_the_market_has_exactly_minus_the_costs_as_value(
    spot, scale, df, spread_fraction, spread_floor, commission
) -> None:
    # iv_ratio 1 and no drift: the model and the market assume the same distribution, so the
    # expected payoff equals the market price and the expected value is minus the costs.
    cfg = DecisionConfig(
        iv_ratio=1.0,
        spread_fraction=spread_fraction,
        spread_floor=spread_floor,
        commission=commission,
        max_strike_sd=2.0,
    )
    forecast = SessionForecast(0.0, scale, df)
    for c in candidates(spot, forecast, cfg.strike_increment("XYZ", spot), cfg):
        costs = (c.premium - c.model_price) + commission / cfg.contract_multiplier
        assert c.expected_payoff == pytest.approx(c.model_price, rel=1e-12, abs=1e-12)
        assert c.expected_value == pytest.approx(-costs, rel=1e-9, abs=1e-12)


def test_iv_ratio_below_one_is_refused() -> None:
    # Below 1 the model would see an edge in volatility alone, which is not a forecast.
    with pytest.raises(ValueError, match="iv_ratio"):
        DecisionConfig(iv_ratio=0.9)


def test_strong_positive_forecast_buys_a_call_and_negative_a_put() -> None:
    up, down = _decide(0.01), _decide(-0.01)
    assert (up.action, up.option_kind, up.reason_code) == ("CALL", "call", "trade")
    assert (down.action, down.option_kind) == ("PUT", "put")
    assert up.expected_value is not None and up.expected_value > up.min_edge
    assert "contract(s)" in up.reason and OPEN_GATE.reason in up.reason


def test_sizing_names_the_cap_or_the_budget() -> None:
    capped = _decide(0.01, budget_usd=1e6, max_contracts=3)
    assert capped.contracts == 3 and "capped at 3 contracts" in capped.reason
    budget = _decide(0.01, budget_usd=500.0, max_contracts=1000)
    assert budget.cost_usd <= 500.0 and "budget 500 USD" in budget.reason
    assert budget.cost_per_share is not None
    assert budget.cost_usd + budget.cost_per_share * 100 > 500.0  # one more would not fit


def test_a_closed_gate_never_trades_and_says_why() -> None:
    noise = np.random.default_rng(0).normal(0, 0.01, 300)
    closed = significance_gate(noise * 0.0 + 0.001, noise, shrinkage=0.5)
    assert not closed.open
    d = decide(190.0, SessionForecast(0.02, 0.01, 5.0), OPEN, CLOSE, closed, ticker="XYZ")
    assert (d.action, d.reason_code, d.reason) == (
        "NO_TRADE",
        "forecast_not_significant",
        closed.reason,
    )
    assert d.gate == closed.to_dict()


def test_no_expiry_comes_first() -> None:
    d = decide(
        190.0,
        SessionForecast(0.02, 0.01, 5.0),
        OPEN,
        CLOSE,
        OPEN_GATE,
        expiry_today=False,
        no_expiry_reason="Monday",
    )
    assert (d.action, d.reason_code, d.reason) == (
        "NO_TRADE",
        "no_expiry",
        "no expiry today: Monday",
    )


def test_no_trade_after_the_close() -> None:
    d = decide(190.0, SessionForecast(0.02, 0.01), CLOSE, CLOSE, OPEN_GATE)
    assert (d.action, d.reason_code, d.strike) == ("NO_TRADE", "session_closed", None)


def test_premium_above_budget() -> None:
    d = _decide(0.02, budget_usd=1.0)
    assert (d.action, d.reason_code) == ("NO_TRADE", "premium_above_budget")
    assert "budget 1.00 USD" in d.reason


def test_threshold_reason_names_the_threshold() -> None:
    d = _decide(0.0005, min_edge=0.5)
    assert d.reason_code == "edge_below_threshold" and "0.50 threshold" in d.reason


def test_decision_figures_are_consistent() -> None:
    d = _decide(0.01)
    assert d.model_price is not None and d.premium is not None and d.cost_per_share is not None
    assert d.expected_payoff is not None
    assert d.premium == pytest.approx(d.model_price + DecisionConfig().half_spread(d.model_price))
    assert d.cost_per_share == pytest.approx(d.premium + 0.65 / 100)
    assert d.expected_value == pytest.approx(d.expected_payoff - d.cost_per_share)
    assert d.cost_usd == pytest.approx(d.cost_per_share * 100 * d.contracts)
    assert d.strike_increment == 1.0  # a 190 USD single stock


def test_decision_is_json_serialisable() -> None:
    for mu in (0.01, 0.0):
        d = _decide(mu)
        again = json.loads(json.dumps(d.to_dict(), allow_nan=False))
        assert again["action"] == d.action and again["reason"] == d.reason


def test_config_round_trips_through_json_and_rejects_unknown_keys() -> None:
    cfg = DecisionConfig(iv_ratio=1.2, budget_usd=750.0, max_contracts=5)
    assert DecisionConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert DecisionConfig.from_dict({"min_edge": 0.05}).min_edge == 0.05
    with pytest.raises(ValueError, match="unknown"):
        DecisionConfig.from_dict({"ivratio": 1.2})
    with pytest.raises(ValueError):
        DecisionConfig(spread_floor=-0.01)
    with pytest.raises(ValueError):
        DecisionConfig(max_contracts=0)


def test_budget_sizing() -> None:
    cfg = DecisionConfig(budget_usd=500.0, commission=0.0, max_contracts=100)
    assert contracts_for_budget(0.50, cfg) == 10
    assert contracts_for_budget(0.51, cfg) == 9
    assert contracts_for_budget(5.00, cfg) == 1
    assert contracts_for_budget(5.01, cfg) == 0
    assert contracts_for_budget(0.01, cfg) == 100  # capped
    # 0.07 x 100 is 7.000000000000001 in floating point; the budget still buys 100 of them.
    exact = DecisionConfig(budget_usd=700.0, max_contracts=1000)
    assert contracts_for_budget(0.07, exact) == 100


def test_pnl_of_a_trade() -> None:
    d = _decide(0.01)
    assert d.option_kind == "call" and d.strike is not None and d.cost_per_share is not None
    shares = d.contracts * d.contract_multiplier
    at_strike = position_pnl(d.option_kind, d.strike, d.cost_per_share, shares, d.strike)
    assert at_strike == pytest.approx(-d.cost_usd)
    close = d.strike + 3.0
    assert position_pnl(d.option_kind, d.strike, d.cost_per_share, shares, close) == pytest.approx(
        shares * (3.0 - d.cost_per_share)
    )
    assert payoff_at_close("put", 100.0, 97.0) == 3.0
