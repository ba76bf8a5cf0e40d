"""Forecast metrics, Diebold-Mariano (HLN) and Pesaran-Timmermann against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from zdte_assets.evaluation.metrics import (
    base_rate_up,
    brier_score,
    diebold_mariano,
    directional_accuracy,
    directional_hits,
    forecast_metrics,
    pesaran_timmermann,
)

E_MODEL = [0.010, -0.020, 0.005, 0.030, -0.010, 0.015, -0.004]
E_NAIVE = [0.020, -0.010, 0.030, -0.040, 0.025, 0.012, -0.020]


def _dm_by_hand(e1: list[float], e2: list[float], h: int, power: float) -> tuple[float, float]:
    """The textbook formula with plain loops, sharing no code with the implementation."""
    d = [abs(a) ** power - abs(b) ** power for a, b in zip(e1, e2, strict=True)]
    n = len(d)
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / n
    for k in range(1, h):
        var += 2 * sum((d[t] - mean) * (d[t - k] - mean) for t in range(k, n)) / n
    dm = mean / math.sqrt(var / n)
    stat = dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return stat, 2 * stats.t.sf(abs(stat), n - 1)


@pytest.mark.parametrize(("h", "power"), [(1, 2), (1, 1), (2, 2), (3, 1)])
def test_dm_matches_hand_computation(h: int, power: float) -> None:
    stat, p = diebold_mariano(E_MODEL, E_NAIVE, h=h, power=power)
    want_stat, want_p = _dm_by_hand(E_MODEL, E_NAIVE, h, power)
    assert stat == pytest.approx(want_stat, rel=1e-12)
    assert p == pytest.approx(want_p, rel=1e-12)


def test_dm_hln_factor_shrinks_the_plain_statistic() -> None:
    # For h = 1 the HLN factor is sqrt((n - 1) / n): the corrected statistic is smaller.
    n = len(E_MODEL)
    d = np.array(E_MODEL) ** 2 - np.array(E_NAIVE) ** 2
    plain = d.mean() / math.sqrt(d.var() / n)
    stat, _ = diebold_mariano(E_MODEL, E_NAIVE)
    assert stat == pytest.approx(plain * math.sqrt((n - 1) / n), rel=1e-12)


def test_dm_one_sided_model_better() -> None:
    stat, p_two = diebold_mariano(E_MODEL, E_NAIVE)
    _, p_one = diebold_mariano(E_MODEL, E_NAIVE, alternative="model_better")
    assert p_one == pytest.approx(stats.t.cdf(stat, len(E_MODEL) - 1), rel=1e-12)
    # The stat is negative here (smaller model losses): one-sided p is half the two-sided one.
    assert stat < 0
    assert p_one == pytest.approx(p_two / 2, rel=1e-12)


def test_dm_identical_errors_give_p_one() -> None:
    e = np.random.default_rng(0).normal(size=50)
    assert diebold_mariano(e, e) == (0.0, 1.0)
    assert diebold_mariano(e, e, alternative="model_better") == (0.0, 1.0)


def test_dm_much_smaller_errors_give_small_p() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(scale=0.015, size=250)
    stat, p = diebold_mariano(0.3 * noise + rng.normal(scale=0.001, size=250), noise)
    assert stat < 0
    assert p < 1e-6


def test_dm_equal_quality_errors_are_not_significant_too_often() -> None:
    # Size check: two independent error series of the same scale; rejections near 5%.
    rng = np.random.default_rng(2)
    rejections = sum(
        diebold_mariano(rng.normal(size=40), rng.normal(size=40))[1] < 0.05 for _ in range(400)
    )
    assert 0.02 <= rejections / 400 <= 0.09


def test_dm_degenerate_cases() -> None:
    assert all(math.isnan(v) for v in diebold_mariano([0.1, 0.2], [0.3, 0.1]))
    assert all(math.isnan(v) for v in diebold_mariano([0.1, 0.2, 0.3], [0.3, 0.1, 0.2], h=3))
    # Constant non-zero differential: the model is better on every day by the same amount.
    stat, p = diebold_mariano([0.0, 0.0, 0.0, 0.0], [0.1, -0.1, 0.1, -0.1])
    assert stat == -math.inf and p == 0.0
    with pytest.raises(ValueError):
        diebold_mariano([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError):
        diebold_mariano(E_MODEL, E_NAIVE, h=0)


def test_dm_drops_nan_pairs() -> None:
    with_nan = diebold_mariano([*E_MODEL, math.nan, 0.3], [*E_NAIVE, 0.1, math.nan])
    assert with_nan == diebold_mariano(E_MODEL, E_NAIVE)


def test_pt_perfect_direction_on_long_series() -> None:
    actual = np.random.default_rng(3).normal(scale=0.015, size=1000)
    stat, p = pesaran_timmermann(actual, np.sign(actual) * 0.001)
    assert stat > 20
    assert p < 1e-12


def test_pt_independent_predictions_are_not_significant() -> None:
    rng = np.random.default_rng(4)
    actual = rng.normal(scale=0.015, size=500)
    _, p = pesaran_timmermann(actual, rng.normal(size=500))
    assert p > 0.05
    # And across many independent draws the test rejects at about its nominal 5% rate.
    rejections = sum(
        pesaran_timmermann(rng.normal(size=300), rng.normal(size=300))[1] < 0.05 for _ in range(400)
    )
    assert 0.02 <= rejections / 400 <= 0.09


def test_pt_always_wrong_is_dependence_but_not_skill() -> None:
    actual = np.random.default_rng(5).normal(size=400)
    stat, p_greater = pesaran_timmermann(actual, -actual)
    _, p_two = pesaran_timmermann(actual, -actual, alternative="two-sided")
    assert stat < -10
    assert p_greater > 0.999
    assert p_two < 1e-12


def test_pt_matches_formula_on_small_sample() -> None:
    actual = [0.01, -0.02, 0.03, 0.01, -0.01, 0.02, -0.03, 0.005]
    pred = [0.001, -0.002, 0.001, -0.001, -0.003, 0.002, 0.001, 0.004]
    n = 8
    y = [a > 0 for a in actual]
    x = [p > 0 for p in pred]
    p_hat = sum(a == b for a, b in zip(x, y, strict=True)) / n
    py, px = sum(y) / n, sum(x) / n
    p_star = py * px + (1 - py) * (1 - px)
    v_p = p_star * (1 - p_star) / n
    v_star = (
        (2 * py - 1) ** 2 * px * (1 - px) / n
        + (2 * px - 1) ** 2 * py * (1 - py) / n
        + 4 * py * px * (1 - py) * (1 - px) / n**2
    )
    want = (p_hat - p_star) / math.sqrt(v_p - v_star)
    stat, p = pesaran_timmermann(actual, pred)
    assert stat == pytest.approx(want, rel=1e-12)
    assert p == pytest.approx(stats.norm.sf(want), rel=1e-12)


def test_pt_degenerate_cases() -> None:
    actual = np.random.default_rng(6).normal(size=100)
    for pred in (np.ones(100), -np.ones(100), np.zeros(100)):
        stat, p = pesaran_timmermann(actual, pred)
        assert math.isnan(stat) and p == 1.0
    stat, p = pesaran_timmermann(np.abs(actual) + 0.1, actual)
    assert math.isnan(stat) and p == 1.0


def test_pt_ignores_no_call_days() -> None:
    rng = np.random.default_rng(7)
    actual = rng.normal(size=200)
    pred = np.where(rng.random(200) < 0.6, np.sign(actual), -np.sign(actual))
    padded_a = np.concatenate([actual, rng.normal(size=50)])
    padded_p = np.concatenate([pred, np.zeros(50)])
    assert pesaran_timmermann(padded_a, padded_p) == pesaran_timmermann(actual, pred)


def test_forecast_metrics_by_hand() -> None:
    actual = [0.01, -0.02, 0.03, 0.0]
    pred = [0.005, 0.01, 0.0, -0.01]
    m = forecast_metrics(actual, pred)
    errors = [0.005, -0.03, 0.03, 0.01]
    assert m["n"] == 4
    assert m["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / 4))
    assert m["mae"] == pytest.approx(sum(abs(e) for e in errors) / 4)
    assert m["bias"] == pytest.approx(sum(errors) / 4)
    assert m["rmse_naive"] == pytest.approx(math.sqrt((0.01**2 + 0.02**2 + 0.03**2) / 4))
    # Day 1 hit, day 2 miss, day 3 no call (prediction 0), day 4 a call on a flat day: a miss.
    assert m["n_calls"] == 3
    assert m["directional_accuracy"] == pytest.approx(1 / 3)
    assert m["coverage"] == pytest.approx(3 / 4)
    assert m["hit_rate_all_days"] == pytest.approx(1 / 4)
    assert m["base_rate_up"] == pytest.approx(2 / 4)


def test_forecast_metrics_empty_and_nan() -> None:
    m = forecast_metrics([math.nan], [0.1])
    assert m["n"] == 0 and math.isnan(m["rmse"])
    assert forecast_metrics([0.01, math.nan], [0.02, 0.03])["n"] == 1


def test_directional_hits_keeps_shape_and_marks_no_call() -> None:
    hits = directional_hits([[0.01, -0.01], [0.02, math.nan]], [[0.1, 0.1], [0.0, 0.1]])
    assert hits.shape == (2, 2)
    assert hits[0, 0] == 1.0 and hits[0, 1] == 0.0
    assert math.isnan(hits[1, 0]) and math.isnan(hits[1, 1])


@pytest.mark.parametrize("call", [0.01, -0.01])
def test_a_flat_day_is_a_miss_whichever_the_direction_called(call: float) -> None:
    # Neither a call nor a put pays when the close equals the open.
    assert directional_hits([0.0], [call])[0] == 0.0
    assert directional_accuracy([0.0, 0.02], [call, abs(call)]) == pytest.approx(1 / 2)


def test_a_zero_forecast_is_no_call_not_half_a_hit() -> None:
    assert math.isnan(directional_accuracy([0.01, -0.01], [0.0, 0.0]))
    assert directional_accuracy([0.01, -0.01, 0.02], [0.0, 0.0, 0.01]) == 1.0


def test_error_is_realized_minus_predicted() -> None:
    # The close came out above the forecast: a positive error, hence a positive bias.
    assert forecast_metrics([0.02], [0.005])["bias"] == pytest.approx(0.015)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.01, -0.01, 0.003]), st.sampled_from([0.0, 0.02, -0.002])),
        min_size=1,
        max_size=30,
    )
)
def test_one_directional_accuracy_everywhere(pairs: list[tuple[float, float]]) -> None:
    actual = [a for a, _ in pairs]
    pred = [p for _, p in pairs]
    hits = directional_hits(actual, pred)
    calls = [(a, p) for a, p in pairs if p != 0.0]
    expected = (
        sum((a > 0) == (p > 0) and a != 0.0 for a, p in calls) / len(calls) if calls else math.nan
    )
    for value in (
        directional_accuracy(actual, pred),
        forecast_metrics(actual, pred)["directional_accuracy"],
        float(np.nanmean(hits)) if np.isfinite(hits).any() else math.nan,
    ):
        assert value == pytest.approx(expected, nan_ok=True)


def test_base_rate_up() -> None:
    assert base_rate_up([0.01, -0.01, 0.0, 0.02, math.nan]) == pytest.approx(0.5)
    assert math.isnan(base_rate_up([]))


def test_brier_score() -> None:
    assert brier_score([1.0, 0.0, 0.5], [0.01, -0.01, 0.02]) == pytest.approx(0.25 / 3)
    # Constant base-rate forecast scores b (1 - b).
    actual = np.random.default_rng(8).normal(0.001, 0.015, size=1000)
    b = base_rate_up(actual)
    assert brier_score(np.full(1000, b), actual) == pytest.approx(b * (1 - b), rel=1e-12)
    with pytest.raises(ValueError):
        brier_score([1.2], [0.01])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-0.1, 0.1, allow_nan=False), st.floats(-0.1, 0.1, allow_nan=False)),
        min_size=3,
        max_size=40,
    )
)
def test_dm_is_antisymmetric(pairs: list[tuple[float, float]]) -> None:
    e1 = [a for a, _ in pairs]
    e2 = [b for _, b in pairs]
    s12, p12 = diebold_mariano(e1, e2)
    s21, p21 = diebold_mariano(e2, e1)
    if math.isnan(s12):
        assert math.isnan(s21)
    else:
        assert s12 == pytest.approx(-s21, rel=1e-9, abs=1e-12)
        assert p12 == pytest.approx(p21, rel=1e-9, abs=1e-12)
        assert 0.0 <= p12 <= 1.0
