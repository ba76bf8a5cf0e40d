"""Option prices, expected payoffs and the morning 0-DTE decision.

The decision compares two numbers per share for each candidate option:

* what the market is assumed to charge: a Black-Scholes price (rate 0 by default, since a
  same-day option earns a negligible carry) at an implied volatility of
  ``realized daily vol x sqrt(252) x iv_ratio`` (buyers pay implied volatility, which usually
  exceeds realized), plus half the bid-ask spread and the commission spread over the shares of
  one contract;
* what the model expects the option to pay at the close: the expectation of the payoff under the
  predictive distribution of ``log(close / open)``.

It buys only when the second exceeds the first by more than ``min_edge``, because a rule that
abstains when the expected value after costs is not positive is the one that does not lose money
on noise.

Strike choice: for each side (call and put) the decision evaluates the ``strikes_per_side``
listed strikes at or below the open and the same number at or above it (see
:func:`strike_grid`; the default 2 covers the at-the-money strike, the first out-of-the-money
strike on each side and one further step). Among candidates whose expected value per share
exceeds ``min_edge`` and of which at least one contract fits the budget, it picks the one with
the highest expected value of the whole position in USD (so the budget, not the share count,
is what is compared); ties go to the higher value per share. When nothing qualifies, the
candidate with the highest expected value per share is still reported so that a report can show
what was passed over.

Cost units (all in USD): ``spread_cost`` is per share and paid once on entry (half the bid-ask
spread, e.g. 0.02); ``commission`` is per contract and paid once on entry (e.g. 0.65). Options are
assumed to be held to the close and worth their intrinsic value there, with no exit cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from typing import Any, Literal, Protocol

import numpy as np
from scipy.stats import norm

from zdte_assets import calendar as trading_calendar

OptionKind = Literal["call", "put"]
Action = Literal["CALL", "PUT", "NO_TRADE"]
ReasonCode = Literal[
    "trade",
    "no_expiry",
    "model_not_better_than_naive",
    "session_closed",
    "edge_below_threshold",
    "premium_above_budget",
]

#: Trading days per year and minutes per regular session: the clock options are priced on.
TRADING_DAYS_PER_YEAR = 252
MINUTES_PER_SESSION = 390
_KINDS: tuple[OptionKind, ...] = ("call", "put")
# Tolerance (in units of one strike increment) so that an open quoted exactly on a strike is
# treated as on it despite floating-point division.
_STRIKE_EPS = 1e-9
#: USD per share; an edge must exceed min_edge by more than this to count.
_EDGE_TOLERANCE = 1e-9


def _check_kind(kind: str) -> OptionKind:
    if kind not in _KINDS:
        raise ValueError(f"option kind must be 'call' or 'put', got {kind!r}")
    return kind  # type: ignore[return-value]


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")


# --------------------------------------------------------------------------- Black-Scholes


def black_scholes(
    spot: float,
    strike: float,
    t_years: float,
    sigma: float,
    rate: float = 0.0,
    kind: OptionKind = "call",
) -> float:
    """European option price, used as the stand-in for the market's ask mid-price.

    With no time or no volatility left the option is worth the intrinsic value against the
    discounted strike, which is the limit of the formula and keeps put-call parity exact.
    """
    kind = _check_kind(kind)
    _check_positive("spot", spot)
    _check_positive("strike", strike)
    _check_non_negative("t_years", t_years)
    _check_non_negative("sigma", sigma)
    discounted_strike = strike * math.exp(-rate * t_years)
    sd = sigma * math.sqrt(t_years)
    if sd <= 0.0:
        if kind == "call":
            return max(spot - discounted_strike, 0.0)
        return max(discounted_strike - spot, 0.0)
    d1 = (math.log(spot / strike) + rate * t_years) / sd + 0.5 * sd
    d2 = d1 - sd
    if kind == "call":
        return float(spot * norm.cdf(d1) - discounted_strike * norm.cdf(d2))
    return float(discounted_strike * norm.cdf(-d2) - spot * norm.cdf(-d1))


def put_call_parity_gap(
    spot: float, strike: float, t_years: float, sigma: float, rate: float = 0.0
) -> float:
    """C - P - (S - K e^(-rT)): zero for a consistent pricer, so tests can check it."""
    call = black_scholes(spot, strike, t_years, sigma, rate, "call")
    put = black_scholes(spot, strike, t_years, sigma, rate, "put")
    return call - put - (spot - strike * math.exp(-rate * t_years))


def realized_vol_annual(daily_sigma: float, periods_per_year: int = TRADING_DAYS_PER_YEAR) -> float:
    """Annualise a daily log-return standard deviation, the unit Black-Scholes expects."""
    _check_non_negative("daily_sigma", daily_sigma)
    return daily_sigma * math.sqrt(periods_per_year)


def implied_vol(daily_sigma: float, iv_ratio: float = 1.1) -> float:
    """Annual implied volatility assumed for pricing: realized scaled by the usual premium."""
    _check_positive("iv_ratio", iv_ratio)
    return realized_vol_annual(daily_sigma) * iv_ratio


def time_to_close_years(now: datetime, close: datetime) -> float:
    """Remaining session time in option years (minutes / (252 x 390)); zero once closed.

    Counting trading minutes rather than calendar time makes a full session exactly 1/252 of a
    year, so a daily volatility maps one-to-one to the session's price move.
    """
    minutes = (close - now).total_seconds() / 60.0
    return max(minutes, 0.0) / (TRADING_DAYS_PER_YEAR * MINUTES_PER_SESSION)


def session_time_to_close(day: date, now: datetime | None = None) -> float:
    """Option years from ``now`` (default: the session open) to that session's real close.

    The exchange calendar supplies the close so that 13:00 early closes give a shorter option
    life than a full session.
    """
    close = trading_calendar.session_close_time(day)
    start = trading_calendar.session_open_time(day) if now is None else now
    return time_to_close_years(start, close)


# --------------------------------------------------------------------------------- strikes


def _round_strike(value: float) -> float:
    return round(value, 6)


def strike_grid(spot: float, increment: float = 2.5, n: int = 2) -> list[float]:
    """Listed strikes around the open: ``n`` at or below it and ``n`` at or above it.

    An open that sits exactly on a strike counts that strike once, giving ``2n - 1`` strikes.
    Only positive strikes are returned. Strikes are assumed to be listed on a regular grid of
    ``increment`` (2.5 USD suits AAPL near the money; SPY lists 1 USD strikes).
    """
    _check_positive("spot", spot)
    _check_positive("increment", increment)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    x = spot / increment
    lo = math.floor(x + _STRIKE_EPS)
    hi = math.ceil(x - _STRIKE_EPS)
    return [_round_strike(k * increment) for k in range(lo - (n - 1), hi + n) if k * increment > 0]


@dataclass(frozen=True)
class NearestStrikes:
    """The strikes closest to the open: at the money, and the first out of the money per side."""

    atm: float
    call_otm: float
    put_otm: float


def nearest_strikes(spot: float, increment: float = 2.5) -> NearestStrikes:
    """ATM (nearest, ties upward), first call strike >= spot, first put strike <= spot.

    If the open is on a strike, all three are that strike. A put strike of 0 can occur only for
    an open below one increment; it is returned as is and should not be traded.
    """
    _check_positive("spot", spot)
    _check_positive("increment", increment)
    x = spot / increment
    return NearestStrikes(
        atm=_round_strike(math.floor(x + 0.5) * increment),
        call_otm=_round_strike(math.ceil(x - _STRIKE_EPS) * increment),
        put_otm=_round_strike(math.floor(x + _STRIKE_EPS) * increment),
    )


# ---------------------------------------------------------------- payoffs and expectations


def payoff_at_close(kind: OptionKind, strike: float, close: float) -> float:
    """Intrinsic value per share when the option is held to the close."""
    kind = _check_kind(kind)
    if kind == "call":
        return max(close - strike, 0.0)
    return max(strike - close, 0.0)


def _payoff_array(kind: OptionKind, strike: float, closes: np.ndarray) -> np.ndarray:
    if kind == "call":
        return np.maximum(closes - strike, 0.0)
    return np.maximum(strike - closes, 0.0)


def expected_payoff(
    kind: OptionKind, strike: float, spot: float, mu: float, sigma_ret: float
) -> float:
    """E[payoff] when log(close/open) ~ Normal(mu, sigma_ret^2), by the lognormal partial mean.

    This is the model's side of the trade: unlike the Black-Scholes price it uses the predicted
    drift ``mu`` and the predicted spread ``sigma_ret`` (both for the whole remaining session,
    not annualised).
    """
    kind = _check_kind(kind)
    _check_positive("spot", spot)
    _check_positive("strike", strike)
    _check_non_negative("sigma_ret", sigma_ret)
    if not math.isfinite(mu):
        raise ValueError(f"mu must be finite, got {mu!r}")
    if sigma_ret == 0.0:
        return payoff_at_close(kind, strike, spot * math.exp(mu))
    d2 = (math.log(spot / strike) + mu) / sigma_ret
    d1 = d2 + sigma_ret
    forward = spot * math.exp(mu + 0.5 * sigma_ret * sigma_ret)
    if kind == "call":
        return float(forward * norm.cdf(d1) - strike * norm.cdf(d2))
    return float(strike * norm.cdf(-d2) - forward * norm.cdf(-d1))


def prob_itm(kind: OptionKind, strike: float, spot: float, mu: float, sigma_ret: float) -> float:
    """Probability of finishing strictly in the money under the normal log-return forecast."""
    kind = _check_kind(kind)
    _check_positive("spot", spot)
    _check_positive("strike", strike)
    _check_non_negative("sigma_ret", sigma_ret)
    if sigma_ret == 0.0:
        close = spot * math.exp(mu)
        return float(close > strike) if kind == "call" else float(close < strike)
    d2 = (math.log(spot / strike) + mu) / sigma_ret
    return float(norm.cdf(d2) if kind == "call" else norm.cdf(-d2))


class Predictive(Protocol):
    """A predictive distribution of log(close/open) that can value an option held to the close."""

    def expected_payoff(self, kind: OptionKind, strike: float, spot: float) -> float: ...

    def p_itm(self, kind: OptionKind, strike: float, spot: float) -> float: ...


@dataclass(frozen=True)
class NormalPredictive:
    """Normal log returns: the closed form, and the default for :func:`decide`."""

    mu: float
    sigma: float

    def expected_payoff(self, kind: OptionKind, strike: float, spot: float) -> float:
        return expected_payoff(kind, strike, spot, self.mu, self.sigma)

    def p_itm(self, kind: OptionKind, strike: float, spot: float) -> float:
        return prob_itm(kind, strike, spot, self.mu, self.sigma)


@dataclass(frozen=True)
class QuantilePredictive:
    """Log-return quantiles (e.g. from quantile regression or a Student-t fit) as a distribution.

    The quantile function is interpolated linearly between the given levels and held flat beyond
    the outermost ones, so tails beyond them are cut off; give levels reaching far enough (e.g.
    0.001 and 0.999) for out-of-the-money strikes.
    """

    levels: tuple[float, ...]
    values: tuple[float, ...]
    grid_size: int = 4000

    def __post_init__(self) -> None:
        lv = np.asarray(self.levels, dtype=float)
        vv = np.asarray(self.values, dtype=float)
        if lv.ndim != 1 or lv.shape != vv.shape or lv.size < 2:
            raise ValueError("levels and values must be 1-D sequences of equal length >= 2")
        if not (np.all((lv > 0) & (lv < 1)) and np.all(np.diff(lv) > 0)):
            raise ValueError("levels must be strictly increasing inside (0, 1)")
        if not (np.all(np.isfinite(vv)) and np.all(np.diff(vv) >= 0)):
            raise ValueError("quantile values must be finite and non-decreasing")

    def _closes(self, spot: float) -> np.ndarray:
        u = (np.arange(self.grid_size) + 0.5) / self.grid_size
        return spot * np.exp(np.interp(u, self.levels, self.values))

    def expected_payoff(self, kind: OptionKind, strike: float, spot: float) -> float:
        kind = _check_kind(kind)
        return float(np.mean(_payoff_array(kind, strike, self._closes(spot))))

    def p_itm(self, kind: OptionKind, strike: float, spot: float) -> float:
        closes = self._closes(spot)
        hits = closes > strike if _check_kind(kind) == "call" else closes < strike
        return float(np.mean(hits))


def expected_payoff_from_quantiles(
    kind: OptionKind,
    strike: float,
    spot: float,
    levels: Sequence[float],
    values: Sequence[float],
) -> float:
    """E[payoff] for a non-normal forecast given as log-return quantiles (see QuantilePredictive)."""
    return QuantilePredictive(tuple(levels), tuple(values)).expected_payoff(kind, strike, spot)


def expected_payoff_from_ppf(
    kind: OptionKind,
    strike: float,
    spot: float,
    ppf: Callable[[np.ndarray], np.ndarray],
    grid_size: int = 20000,
) -> float:
    """E[payoff] by integrating over the quantile function of log(close/open), e.g. a Student-t.

    Integrating in probability space (midpoint rule on u in (0, 1)) keeps the result finite for
    heavy tails whose exponential moments do not exist, at the price of truncating the last
    ``1 / (2 grid_size)`` of each tail.
    """
    kind = _check_kind(kind)
    _check_positive("spot", spot)
    _check_positive("strike", strike)
    u = (np.arange(grid_size) + 0.5) / grid_size
    closes = spot * np.exp(np.asarray(ppf(u), dtype=float))
    return float(np.mean(_payoff_array(kind, strike, closes)))


@dataclass(frozen=True)
class EmpiricalPredictive:
    """Equally weighted sampled log returns (ensemble members, bootstrap or residual draws)."""

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.samples) == 0 or not all(math.isfinite(x) for x in self.samples):
            raise ValueError("samples must be a non-empty sequence of finite log returns")

    def expected_payoff(self, kind: OptionKind, strike: float, spot: float) -> float:
        closes = spot * np.exp(np.asarray(self.samples, dtype=float))
        return float(np.mean(_payoff_array(_check_kind(kind), strike, closes)))

    def p_itm(self, kind: OptionKind, strike: float, spot: float) -> float:
        closes = spot * np.exp(np.asarray(self.samples, dtype=float))
        hits = closes > strike if _check_kind(kind) == "call" else closes < strike
        return float(np.mean(hits))


# -------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class DecisionConfig:
    """Trading assumptions; every field is a plain number so the config round-trips via JSON.

    Units: ``spread_cost`` USD per share paid on entry (half the bid-ask spread);
    ``commission`` USD per contract paid on entry; ``min_edge`` USD per share of expected value
    after premium, spread and commission that a trade must exceed; ``budget_usd`` the most spent
    on one day's position; ``max_contracts`` caps the size when premiums are very cheap;
    ``strikes_per_side`` listed strikes evaluated below and above the open for each option kind;
    ``rate`` the annual risk-free rate used in Black-Scholes.
    """

    strike_increment: float = 2.5
    iv_ratio: float = 1.1
    spread_cost: float = 0.02
    commission: float = 0.65
    min_edge: float = 0.01
    budget_usd: float = 500.0
    contract_multiplier: int = 100
    max_contracts: int = 50
    strikes_per_side: int = 2
    rate: float = 0.0

    def __post_init__(self) -> None:
        _check_positive("strike_increment", self.strike_increment)
        _check_positive("iv_ratio", self.iv_ratio)
        _check_non_negative("spread_cost", self.spread_cost)
        _check_non_negative("commission", self.commission)
        _check_non_negative("min_edge", self.min_edge)
        _check_positive("budget_usd", self.budget_usd)
        if not math.isfinite(self.rate):
            raise ValueError(f"rate must be finite, got {self.rate!r}")
        for name in ("contract_multiplier", "max_contracts", "strikes_per_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionConfig:
        """Build from a (possibly partial) mapping; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown DecisionConfig keys: {sorted(unknown)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class Candidate:
    """One option the decision priced, with everything needed to compare and size it."""

    kind: OptionKind
    strike: float
    model_price: float
    premium: float
    cost_per_share: float
    expected_payoff: float
    expected_value: float
    p_itm: float
    contracts: int

    def position_value(self, multiplier: int) -> float:
        return self.expected_value * multiplier * self.contracts


@dataclass(frozen=True)
class Decision:
    """The morning recommendation; ``to_dict()`` is JSON-serialisable.

    ``option_kind``/``strike`` and the per-share figures describe the best candidate even when
    ``action`` is NO_TRADE (they are None only when no option could be priced, i.e. after the
    close); ``contracts``, ``cost_usd`` and ``expected_value_usd`` are 0 unless a trade is made.

    Per share (USD): ``model_price`` Black-Scholes at ``implied_vol``; ``premium`` =
    ``model_price`` + spread; ``cost_per_share`` = ``premium`` + commission / multiplier;
    ``expected_payoff`` under the predictive distribution; ``expected_value`` =
    ``expected_payoff`` - ``cost_per_share``.
    """

    action: Action
    reason: str
    reason_code: ReasonCode
    option_kind: OptionKind | None
    strike: float | None
    spot_open: float
    mu: float
    sigma_ret: float
    implied_vol: float
    t_years: float
    model_price: float | None
    premium: float | None
    cost_per_share: float | None
    expected_payoff: float | None
    expected_value: float | None
    p_itm: float | None
    contracts: int
    cost_usd: float
    expected_value_usd: float
    contract_multiplier: int
    min_edge: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def contracts_for_budget(cost_per_share: float, config: DecisionConfig) -> int:
    """Whole contracts the budget buys at this all-in price per share, capped by max_contracts.

    0 means not even one contract fits, which the decision reports as "premium above budget".
    """
    _check_non_negative("cost_per_share", cost_per_share)
    per_contract = cost_per_share * config.contract_multiplier
    if per_contract * config.max_contracts <= config.budget_usd:
        return config.max_contracts
    # A small relative tolerance so that e.g. 700 / (0.07 x 100) gives 100, not 99.
    return math.floor(config.budget_usd / per_contract * (1 + 1e-12))


def _candidates(
    spot: float,
    predictive: Predictive,
    sigma_annual: float,
    t_years: float,
    config: DecisionConfig,
) -> list[Candidate]:
    out = []
    per_share_commission = config.commission / config.contract_multiplier
    for strike in strike_grid(spot, config.strike_increment, config.strikes_per_side):
        for kind in _KINDS:
            price = black_scholes(spot, strike, t_years, sigma_annual, config.rate, kind)
            premium = price + config.spread_cost
            cost = premium + per_share_commission
            payoff = predictive.expected_payoff(kind, strike, spot)
            out.append(
                Candidate(
                    kind=kind,
                    strike=strike,
                    model_price=price,
                    premium=premium,
                    cost_per_share=cost,
                    expected_payoff=payoff,
                    expected_value=payoff - cost,
                    p_itm=predictive.p_itm(kind, strike, spot),
                    contracts=contracts_for_budget(cost, config),
                )
            )
    return out


def _clears(c: Candidate, config: DecisionConfig) -> bool:
    # The tolerance keeps floating-point ties (an option priced exactly at its expected payoff)
    # from ever counting as an edge.
    return c.expected_value > config.min_edge + _EDGE_TOLERANCE


def _fmt_strike(strike: float) -> str:
    return f"{strike:.4f}".rstrip("0").rstrip(".")


def _label(c: Candidate) -> str:
    return f"{c.kind.upper()} {_fmt_strike(c.strike)}"


def decide(
    spot_open: float,
    mu: float,
    sigma_ret: float,
    vol_daily: float,
    decision_time: datetime,
    close_time: datetime,
    config: DecisionConfig | None = None,
    expiry_today: bool = True,
    model_beats_naive: bool = True,
    *,
    predictive: Predictive | None = None,
    no_expiry_reason: str | None = None,
) -> Decision:
    """Recommend CALL, PUT or NO_TRADE for one session, with the reason in plain words.

    Gates, in order: no same-day expiry; the model not beating the naive forecast on validation;
    the session already closed; then the best candidate (see the module docstring) must clear
    ``min_edge`` per share and at least one contract must fit the budget.

    ``mu``/``sigma_ret`` describe log(close / spot_open) over the rest of the session (at the
    open: the model's open-to-close forecast); ``predictive`` replaces that normal forecast when
    the model's distribution is not normal. ``vol_daily`` should be the trailing standard
    deviation of open-to-close log returns, from which the market's implied volatility is
    assumed as ``vol_daily x sqrt(252) x iv_ratio``. ``decision_time`` and ``close_time`` should
    come from the exchange calendar (``session_open_time``/``session_close_time``) so early
    closes shorten the option's life. ``no_expiry_reason`` is appended to "no expiry today"
    (e.g. the text of ``expiries.expiry_reason``).
    """
    config = config or DecisionConfig()
    _check_positive("spot_open", spot_open)
    _check_non_negative("sigma_ret", sigma_ret)
    _check_non_negative("vol_daily", vol_daily)
    if not math.isfinite(mu):
        raise ValueError(f"mu must be finite, got {mu!r}")
    t_years = time_to_close_years(decision_time, close_time)
    sigma_annual = implied_vol(vol_daily, config.iv_ratio)
    dist: Predictive = predictive if predictive is not None else NormalPredictive(mu, sigma_ret)
    m = config.contract_multiplier

    def build(
        action: Action, reason: str, code: ReasonCode, best: Candidate | None, contracts: int
    ) -> Decision:
        cost_usd = best.cost_per_share * m * contracts if best else 0.0
        ev_usd = best.expected_value * m * contracts if best else 0.0
        return Decision(
            action=action,
            reason=reason,
            reason_code=code,
            option_kind=best.kind if best else None,
            strike=best.strike if best else None,
            spot_open=spot_open,
            mu=mu,
            sigma_ret=sigma_ret,
            implied_vol=sigma_annual,
            t_years=t_years,
            model_price=best.model_price if best else None,
            premium=best.premium if best else None,
            cost_per_share=best.cost_per_share if best else None,
            expected_payoff=best.expected_payoff if best else None,
            expected_value=best.expected_value if best else None,
            p_itm=best.p_itm if best else None,
            contracts=contracts,
            cost_usd=cost_usd,
            expected_value_usd=ev_usd,
            contract_multiplier=m,
            min_edge=config.min_edge,
        )

    if t_years <= 0.0:
        # After the close the outcome is known; pricing it would only produce nonsense edges.
        if not expiry_today:
            code: ReasonCode = "no_expiry"
            text = "no expiry today" + (f": {no_expiry_reason}" if no_expiry_reason else "")
        elif not model_beats_naive:
            code, text = "model_not_better_than_naive", _NAIVE_REASON
        else:
            code, text = "session_closed", "the session has already closed"
        return build("NO_TRADE", text, code, None, 0)

    candidates = _candidates(spot_open, dist, sigma_annual, t_years, config)
    best_per_share = max(candidates, key=lambda c: c.expected_value)

    if not expiry_today:
        text = "no expiry today" + (f": {no_expiry_reason}" if no_expiry_reason else "")
        return build("NO_TRADE", text, "no_expiry", best_per_share, 0)
    if not model_beats_naive:
        return build("NO_TRADE", _NAIVE_REASON, "model_not_better_than_naive", best_per_share, 0)

    eligible = [c for c in candidates if _clears(c, config) and c.contracts >= 1]
    if eligible:
        best = max(eligible, key=lambda c: (c.position_value(m), c.expected_value))
        cost_usd = best.cost_per_share * m * best.contracts
        text = (
            f"{_label(best)} expected value {best.expected_value:+.2f} per share "
            f"(expected payoff {best.expected_payoff:.2f} vs premium {best.premium:.2f} "
            f"and costs), {best.p_itm:.0%} chance to finish in the money; "
            f"{best.contracts} contract(s) for {cost_usd:.2f} USD, expected "
            f"{best.position_value(m):+.2f} USD"
        )
        action: Action = "CALL" if best.kind == "call" else "PUT"
        return build(action, text, "trade", best, best.contracts)

    if _clears(best_per_share, config):
        # The edge is there but even one contract of every qualifying strike costs too much.
        one = best_per_share.cost_per_share * m
        text = (
            f"premium above budget: one {_label(best_per_share)} contract costs {one:.2f} USD "
            f"with costs, budget {config.budget_usd:.2f} USD"
        )
        return build("NO_TRADE", text, "premium_above_budget", best_per_share, 0)
    text = (
        f"expected value {best_per_share.expected_value:+.2f} per share after premium and costs "
        f"is below the {config.min_edge:.2f} threshold (best candidate {_label(best_per_share)})"
    )
    return build("NO_TRADE", text, "edge_below_threshold", best_per_share, 0)


_NAIVE_REASON = "model does not beat the naive forecast on validation"


def pnl(decision: Decision, close: float) -> float:
    """Realized USD profit of the recommended position held to the close; 0 for NO_TRADE."""
    if decision.action == "NO_TRADE" or decision.contracts == 0:
        return 0.0
    if decision.option_kind is None or decision.strike is None or decision.cost_per_share is None:
        raise ValueError("a trade decision must carry its option kind, strike and cost")
    payoff = payoff_at_close(decision.option_kind, decision.strike, close)
    return (payoff - decision.cost_per_share) * decision.contract_multiplier * decision.contracts
