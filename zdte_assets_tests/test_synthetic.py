"""The morning answer on series with known truth: noise, a planted signal, a regime change, a split.

Each walks hundreds of sessions through the same domain functions as the replay
(`synthetic.simulate`), with seeds, so the figures are reproducible and none is tuned to the
bundled sample.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from zdte_assets.core.records import Prediction
from zdte_assets.data import synthetic
from zdte_assets.data.adjustment import ambiguous_gaps, detect_splits

FIRST = 200  # sessions of history before the first decision (features + training + calibration)
N = 600


def _trades(past: pl.DataFrame) -> pl.DataFrame:
    return past.filter(pl.col("action") != "NO_TRADE")


@pytest.fixture(scope="module")
def noise() -> tuple[pl.DataFrame, list[Prediction]]:
    return synthetic.simulate(synthetic.synthetic_bars("noise", N, seed=11), FIRST)


def test_on_noise_nothing_is_traded_and_the_intervals_cover(noise) -> None:
    past, records = noise
    assert past.height == N - FIRST
    assert _trades(past).height == 0
    assert not any(r.gate.open for r in records)
    assert 0.87 <= float(past["in_interval"].mean()) <= 0.93  # type: ignore[arg-type]
    assert 0.44 <= float(past["in_interval_50"].mean()) <= 0.56  # type: ignore[arg-type]
    assert 0.85 <= float((past["z"] ** 2).mean()) <= 1.15  # type: ignore[operator]
    # A calibrated PIT: no tenth of the unit interval holds twice its share.
    counts = np.histogram(past["pit"].to_numpy(), bins=10, range=(0, 1))[0]
    assert counts.max() < 2 * past.height / 10


def test_a_planted_signal_opens_the_gate_and_its_trades_make_money() -> None:
    bars = synthetic.synthetic_bars("signal", N, seed=12, signal=0.6)
    past, records = synthetic.simulate(bars, FIRST)
    opened = [r for r in records if r.gate.open]
    assert opened, "the gate never opened on a learnable signal"
    trades = _trades(past)
    assert trades.height >= 20
    assert float(trades["pnl_usd"].sum()) > 0
    # The trades were promised a positive value at the open, and each one came through the gate.
    assert float(trades["expected_value_usd"].min()) > 0  # type: ignore[arg-type]
    trade_days = set(trades["date"].cast(pl.String).to_list())
    assert all(r.gate.open for r in records if r.date.isoformat() in trade_days)


def test_after_a_volatility_regime_change_coverage_recovers_within_weeks() -> None:
    change = 400
    bars = synthetic.synthetic_bars("regime", N, seed=13, regime_at=change, regime_factor=2.5)
    past, _ = synthetic.simulate(bars, FIRST)
    covered = past["in_interval"].to_numpy().astype(float)
    at = change - FIRST
    # The first days after the jump are too narrow ...
    assert covered[at : at + 5].mean() < 0.9
    # ... and from the fifth week on the 90% interval covers again.
    after = covered[at + 20 :]
    assert after.size >= 150
    assert 0.85 <= after.mean() <= 0.95


def test_an_unadjusted_split_changes_nothing_on_noise() -> None:
    bars = synthetic.synthetic_bars("split", N, seed=11, split_at=450)
    day = bars["date"][450]
    # Volume doubled with the prices halving: corroborated, so adjusted (not guessed).
    assert [(s.date, s.ratio, s.source) for s in detect_splits(bars)] == [(day, 2.0, "gap+volume")]
    assert ambiguous_gaps(bars) == []
    past, _ = synthetic.simulate(bars, FIRST)
    assert _trades(past).height == 0
    assert 0.87 <= float(past["in_interval"].mean()) <= 0.93  # type: ignore[arg-type]


def test_signal_regime_plants_both_the_signal_and_the_volatility_jump() -> None:
    """The whole-path test's series: a lag-1 signal throughout, the noise larger from `regime_at`."""
    n, at, factor, signal = 1200, 600, 3.0, 0.5
    bars = synthetic.synthetic_bars(
        "signal_regime", n, seed=14, signal=signal, regime_at=at, regime_factor=factor
    )
    r = np.log(bars["close"].to_numpy() / bars["open"].to_numpy())
    for part in (r[1:at], r[at + 1 :]):
        # Least-squares slope of today's return on yesterday's: the planted coefficient.
        slope = float(np.polyfit(part[:-1], part[1:], 1)[0])
        assert abs(slope - signal) < 4 / np.sqrt(part.size)
    # The innovation's scale: its ratio after / before is the planted factor.
    before = r[1:at] - signal * r[: at - 1]
    after = r[at + 1 :] - signal * r[at:-1]
    assert float(after.std() / before.std()) == pytest.approx(factor, rel=0.1)
    # The same seed without the jump is the `signal` scenario, bar for bar before `regime_at`.
    plain = synthetic.synthetic_bars("signal", n, seed=14, signal=signal)
    assert bars.head(at).equals(plain.head(at))
