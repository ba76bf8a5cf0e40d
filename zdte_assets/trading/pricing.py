"""Option prices, expected payoffs and the morning 0-DTE decision.

The decision compares two numbers per share for each candidate option, both computed from the
*same* session distribution (``volatility.SessionForecast``: one volatility, one tail shape):

* what the market is assumed to charge: the option's expected payoff when the close is expected
  to equal the open (a same-day option earns no carry) and the volatility is ``iv_ratio`` times
  the session forecast (buyers pay implied volatility, which usually exceeds realized), plus the
  half-spread and the commission spread over the shares of one contract;
* what the model expects the option to pay at the close: the expected payoff under the same
  distribution at the session forecast with the model's mean ``mu``.

Because the two differ only in ``mu`` and in a volatility ratio of at least 1, a forecast of 0
can never show an edge: the expected payoff of an option grows with the volatility of a
distribution of fixed mean (for any shape), so the premium is at least the model's expected
payoff, and costs come on top. An edge comes from the forecast or not at all, and a trade also
needs the significance gate (``gate``) to be open.

Strikes: listed on a grid whose increment depends on the ticker and the price
(``DecisionConfig.strike_increment``); candidates are the strikes within ``max_strike_sd``
session standard deviations of the open (at least the nearest strike). Among candidates whose
expected value per share exceeds ``min_edge`` and of which one contract fits the budget, the
pick is the highest expected value of the position in USD, sized by the budget and capped at
``max_contracts`` (the reason names the cap when it binds).

Costs (USD): half the bid-ask spread per share, ``max(spread_fraction x price, spread_floor)``,
paid once on entry; ``commission`` per contract on entry. Options are held to the close and worth
their intrinsic value there, with no exit cost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from zdte_assets.features.volatility import SessionForecast
from zdte_assets.trading.gate import Gate, GateConfig

OptionKind = Literal["call", "put"]
Action = Literal["CALL", "PUT", "NO_TRADE"]
ReasonCode = Literal[
    "trade",
    "no_expiry",
    "forecast_not_significant",
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
    return kind


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")


# ------------------------------------------------------------------------------ option time


def time_to_close_years(now: datetime, close: datetime) -> float:
    """Remaining session time in option years (minutes / (252 x 390)); zero once closed.

    Counting trading minutes rather than calendar time makes a full session exactly 1/252 of a
    year, so a daily volatility maps one-to-one to the session's price move.
    """
    minutes = (close - now).total_seconds() / 60.0
    return max(minutes, 0.0) / (TRADING_DAYS_PER_YEAR * MINUTES_PER_SESSION)


# --------------------------------------------------------------------------------- strikes


def _round_strike(value: float) -> float:
    return round(value, 6)


def candidate_strikes(spot: float, increment: float, scale: float, max_sd: float) -> list[float]:
    """Listed strikes within ``max_sd`` session standard deviations (in log) of the open.

    Strikes sit on a grid of ``increment``. The nearest strike is always included, so a session
    forecast narrower than half an increment still prices the at-the-money option; only positive
    strikes are returned.
    """
    _check_positive("spot", spot)
    _check_positive("increment", increment)
    _check_non_negative("scale", scale)
    _check_non_negative("max_sd", max_sd)
    lo = spot * math.exp(-max_sd * scale)
    hi = spot * math.exp(max_sd * scale)
    first = math.ceil(lo / increment - _STRIKE_EPS)
    last = math.floor(hi / increment + _STRIKE_EPS)
    ks = {k for k in range(first, last + 1) if k > 0}
    nearest = math.floor(spot / increment + 0.5)
    if nearest > 0:
        ks.add(nearest)
    return [_round_strike(k * increment) for k in sorted(ks)]


# ---------------------------------------------------------------------------------- payoffs


def payoff_at_close(kind: OptionKind, strike: float, close: float) -> float:
    """Intrinsic value per share when the option is held to the close."""
    kind = _check_kind(kind)
    if kind == "call":
        return max(close - strike, 0.0)
    return max(strike - close, 0.0)


# -------------------------------------------------------------------------------- decision

#: Strike increments the defaults assume: exchange-traded funds with 1 USD strikes at any price.
DEFAULT_TICKER_INCREMENTS: tuple[tuple[str, float], ...] = (
    ("SPY", 1.0),
    ("QQQ", 1.0),
    ("IWM", 1.0),
)
#: Single stocks: (price below which, increment), checked in order; above the last, the default.
DEFAULT_PRICE_INCREMENTS: tuple[tuple[float, float], ...] = ((25.0, 0.5), (200.0, 1.0))


def _ticker_increments(value: Any) -> Any:
    """Accept ``{ticker: increment}`` (run config) or ``[[ticker, increment], ...]`` (the
    records' JSON); tickers are upper-cased so lookups ignore case."""
    if isinstance(value, Mapping):
        value = list(value.items())
    try:
        return {str(t).upper(): float(i) for t, i in value}
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"ticker_strike_increments must be ticker/increment pairs, got {value!r}"
        ) from exc


def _price_increments(value: Any) -> Any:
    try:
        return [[float(p), float(i)] for p, i in value]
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"price_strike_increments must be price/increment pairs, got {value!r}"
        ) from exc


#: Stored as ``[[ticker, increment], ...]`` (the prediction's JSON since schema_version 2), held
#: as a mapping so that a run config can give ``{ticker: increment}``.
TickerIncrements = Annotated[
    dict[str, float],
    BeforeValidator(_ticker_increments),
    PlainSerializer(lambda d: [(k, v) for k, v in d.items()], return_type=list[tuple[str, float]]),
]
PriceIncrements = Annotated[list[list[float]], BeforeValidator(_price_increments)]


class DecisionConfig(BaseModel):
    """Trading assumptions: the decision's only knobs, stored with every prediction.

    A pydantic model: the prediction record embeds it as is and the `prediction` asset's run
    config derives from it, so no field can be missing there. Not a `core.records.Record`
    (the records import it). Units: USD; ``iv_ratio`` at least 1, since below it the decision
    would buy volatility, not a forecast.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        json_schema_serialization_defaults_required=True,
    )

    iv_ratio: float = Field(
        default=1.1,
        ge=1,
        description="Implied over forecast volatility assumed for the market price (at least 1).",
    )
    spread_fraction: float = Field(
        default=0.03,
        ge=0,
        description="Half the bid-ask spread as a fraction of the option's price.",
    )
    spread_floor: float = Field(
        default=0.01, ge=0, description="Smallest half-spread per share (USD)."
    )
    commission: float = Field(
        default=0.65, ge=0, description="Commission per contract, paid on entry (USD)."
    )
    min_edge: float = Field(
        default=0.01,
        ge=0,
        description="Expected value per share after costs that a trade must exceed (USD).",
    )
    budget_usd: float = Field(
        default=500.0, gt=0, description="Most spent on one day's position (USD)."
    )
    contract_multiplier: int = Field(default=100, ge=1, description="Shares per contract.")
    max_contracts: int = Field(
        default=50, ge=1, description="Cap on the position size in contracts."
    )
    max_strike_sd: float = Field(
        default=1.0,
        ge=0,
        description=(
            "Strikes considered lie within this many session standard deviations of the open "
            "(plus the nearest one)."
        ),
    )
    ticker_strike_increments: TickerIncrements = Field(
        default_factory=lambda: dict(DEFAULT_TICKER_INCREMENTS),
        description="[ticker, strike increment] pairs that override the price table.",
    )
    price_strike_increments: PriceIncrements = Field(
        default_factory=lambda: [list(p) for p in DEFAULT_PRICE_INCREMENTS],
        description="[price below which, strike increment] pairs, checked in order.",
    )
    strike_increment_above: float = Field(
        default=2.5, gt=0, description="Strike increment above the last price in the table (USD)."
    )
    gate_window: int = Field(
        default=250, ge=1, description="Past sessions the significance gate pools."
    )
    gate_min_days: int = Field(
        default=60, ge=1, description="Fewest past forecasts before the gate can open."
    )
    gate_dm_alpha: float = Field(
        default=0.05, gt=0, lt=1, description="Level of the one-sided Diebold-Mariano test."
    )
    gate_pt_alpha: float = Field(
        default=0.05, gt=0, lt=1, description="Level of the one-sided Pesaran-Timmermann test."
    )

    @model_validator(mode="after")
    def _check(self) -> DecisionConfig:
        for inc in (
            *self.ticker_strike_increments.values(),
            *(p[1] for p in self.price_strike_increments),
        ):
            _check_positive("strike increment", inc)
        self.gate_config()  # validates the gate fields together
        return self

    def gate_config(self) -> GateConfig:
        return GateConfig(
            window=self.gate_window,
            min_days=self.gate_min_days,
            dm_alpha=self.gate_dm_alpha,
            pt_alpha=self.gate_pt_alpha,
        )

    def strike_increment(self, ticker: str, price: float) -> float:
        """The listed strike spacing for ``ticker`` near ``price``."""
        if ticker.upper() in self.ticker_strike_increments:
            return self.ticker_strike_increments[ticker.upper()]
        for below, inc in self.price_strike_increments:
            if price < below:
                return inc
        return self.strike_increment_above

    def half_spread(self, price: float) -> float:
        """Half the bid-ask spread per share: a fraction of the option's price, with a floor."""
        return max(self.spread_fraction * price, self.spread_floor)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored with every prediction."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionConfig:
        """Build from a (possibly partial) mapping; unknown keys are an error, not ignored."""
        unknown = set(data) - set(cls.model_fields)
        if unknown:
            raise ValueError(f"unknown DecisionConfig keys: {sorted(unknown)}")
        return cls.model_validate(dict(data))


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

    Per share (USD): ``model_price`` the market's assumed mid price; ``premium`` = ``model_price``
    + half-spread; ``cost_per_share`` = ``premium`` + commission / multiplier;
    ``expected_payoff`` under the model's forecast; ``expected_value`` = ``expected_payoff`` -
    ``cost_per_share``. ``implied_vol`` is the market's volatility annualized over the time left.
    """

    action: Action
    reason: str
    reason_code: ReasonCode
    option_kind: OptionKind | None
    strike: float | None
    strike_increment: float
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
    gate: dict[str, Any] | None

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


def market_forecast(forecast: SessionForecast, config: DecisionConfig) -> SessionForecast:
    """What the market is assumed to price: no drift, ``iv_ratio`` times the volatility."""
    return SessionForecast(0.0, forecast.scale * config.iv_ratio, forecast.df)


def candidates(
    spot: float, forecast: SessionForecast, increment: float, config: DecisionConfig
) -> list[Candidate]:
    """Every option the decision considers, priced by the market and valued by the model."""
    market = market_forecast(forecast, config)
    per_share_commission = config.commission / config.contract_multiplier
    out = []
    for strike in candidate_strikes(spot, increment, forecast.scale, config.max_strike_sd):
        for kind in _KINDS:
            price = market.expected_payoff(kind, strike, spot)
            premium = price + config.half_spread(price)
            cost = premium + per_share_commission
            payoff = forecast.expected_payoff(kind, strike, spot)
            out.append(
                Candidate(
                    kind=kind,
                    strike=strike,
                    model_price=price,
                    premium=premium,
                    cost_per_share=cost,
                    expected_payoff=payoff,
                    expected_value=payoff - cost,
                    p_itm=forecast.p_itm(kind, strike, spot),
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
    forecast: SessionForecast,
    decision_time: datetime,
    close_time: datetime,
    gate: Gate,
    config: DecisionConfig | None = None,
    *,
    ticker: str = "",
    expiry_today: bool = True,
    no_expiry_reason: str | None = None,
) -> Decision:
    """Recommend CALL, PUT or NO_TRADE for one session, with the reason in plain words.

    ``forecast`` is the model's distribution of log(close / spot_open) over the rest of the
    session. Gates, in order: no same-day expiry; the significance gate closed; the session
    already closed; then the best candidate (see the module docstring) must clear ``min_edge``
    per share and at least one contract must fit the budget. ``decision_time`` and
    ``close_time`` come from the exchange calendar and give the option's life for the record.
    ``no_expiry_reason`` is appended to "no expiry today".
    """
    config = config or DecisionConfig()
    _check_positive("spot_open", spot_open)
    t_years = time_to_close_years(decision_time, close_time)
    increment = config.strike_increment(ticker, spot_open)
    iv_scale = forecast.scale * config.iv_ratio
    implied = iv_scale / math.sqrt(t_years) if t_years > 0 else 0.0
    m = config.contract_multiplier
    gate_record = gate.to_dict()

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
            strike_increment=increment,
            spot_open=spot_open,
            mu=forecast.mu,
            sigma_ret=forecast.scale,
            implied_vol=implied,
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
            gate=gate_record,
        )

    no_expiry_text = "no expiry today" + (f": {no_expiry_reason}" if no_expiry_reason else "")
    if t_years <= 0.0 or forecast.scale <= 0.0:
        # After the close the outcome is known; pricing it would only produce nonsense edges.
        if not expiry_today:
            return build("NO_TRADE", no_expiry_text, "no_expiry", None, 0)
        if not gate.open:
            return build("NO_TRADE", gate.reason, "forecast_not_significant", None, 0)
        return build("NO_TRADE", "the session has already closed", "session_closed", None, 0)

    priced = candidates(spot_open, forecast, increment, config)
    best_per_share = max(priced, key=lambda c: c.expected_value)

    if not expiry_today:
        return build("NO_TRADE", no_expiry_text, "no_expiry", best_per_share, 0)
    if not gate.open:
        return build("NO_TRADE", gate.reason, "forecast_not_significant", best_per_share, 0)

    eligible = [c for c in priced if _clears(c, config) and c.contracts >= 1]
    if eligible:
        best = max(eligible, key=lambda c: (c.position_value(m), c.expected_value))
        cost_usd = best.cost_per_share * m * best.contracts
        capped = best.contracts == config.max_contracts
        sizing = (
            f"capped at {config.max_contracts} contracts"
            if capped
            else f"budget {config.budget_usd:.0f} USD"
        )
        text = (
            f"{_label(best)} expected value {best.expected_value:+.2f} per share "
            f"(expected payoff {best.expected_payoff:.2f} vs premium {best.premium:.2f} "
            f"and costs), {best.p_itm:.0%} chance to finish in the money; "
            f"{best.contracts} contract(s) for {cost_usd:.2f} USD ({sizing}), expected "
            f"{best.position_value(m):+.2f} USD; {gate.reason}"
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


def position_pnl(
    kind: OptionKind, strike: float, cost_per_share: float, shares: int, close: float
) -> float:
    """Realized USD profit of ``shares`` options bought at ``cost_per_share`` and held to the
    close (``shares`` = contracts x multiplier); what an outcome records as ``pnl_usd``."""
    return (payoff_at_close(kind, strike, close) - cost_per_share) * shares
