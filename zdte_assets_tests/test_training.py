"""Tests for walk-forward windows, fitting, shrinkage, the Pareto rule and the study.

All frames are synthetic (weekdays, noise features, a target that is noise or a strong function
of one feature), so nothing here depends on the feature builder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import math
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from zdte_assets.model import fitting, persistence, scoring, walkforward
from zdte_assets.model.distribution import predictive_distribution
from zdte_assets.model.fitting import FittedModel, fit_model, train_daily
from zdte_assets.model.params import (
    MIN_TRAIN_ROWS,
    InsufficientHistoryError,
    ModelParams,
    candidate_columns,
    rows_before,
)
from zdte_assets.model.scoring import ABSTAIN_ACCURACY
from zdte_assets.model.scoring import objective_accuracy as directional_accuracy
from zdte_assets.model.study import (
    StudyResult,
    TrialSummary,
    choose_trial,
    run_study,
)
from zdte_assets.model.walkforward import (
    WalkForwardConfig,
    evaluate_walk_forward,
    study_train_window_range,
    walk_forward_windows,
)

BASE_FEATURES = ("gap", "range_1", "vol_5", "dow")


def weekdays(n: int, start: dt.date = dt.date(2024, 1, 1)) -> list[dt.date]:
    days: list[dt.date] = []
    day = start
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def make_frame(n: int, seed: int, signal: float = 0.0, noise: float = 0.01) -> pl.DataFrame:
    """Lag and base features of pure noise; ``target = signal * noise * gap + noise``."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {"date": weekdays(n), "open": 100.0 + rng.normal(size=n)}
    for k in range(1, 6):
        cols[f"ret_oc_lag{k}"] = rng.normal(0.0, 0.01, n)
        cols[f"ret_cc_lag{k}"] = rng.normal(0.0, 0.012, n)
    for name in BASE_FEATURES:
        cols[name] = rng.normal(size=n)
    gap = np.asarray(cols["gap"])
    cols["target"] = signal * noise * gap + rng.normal(0.0, noise, n)
    return pl.DataFrame(cols).with_columns(pl.col("date").cast(pl.Date))


def mad_spread(y: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(y - np.median(y))))


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


# --------------------------------------------------------------------------- walk-forward


@pytest.mark.parametrize("train_window", [None, 30, 45])
def test_windows_roll_by_test_days_and_end_at_last_row(train_window: int | None) -> None:
    cfg = WalkForwardConfig(train_days=30, test_days=10, n_windows=4)
    n = 88
    windows = walk_forward_windows(n, cfg, train_window)
    length = cfg.train_days if train_window is None else train_window
    assert len(windows) == 4
    assert windows[-1][1][-1] == n - 1
    for (train, test), (next_train, next_test) in itertools.pairwise(windows):
        assert next_test[0] - test[0] == cfg.test_days
        assert next_train[0] - train[0] == cfg.test_days
    for train, test in windows:
        assert len(train) == length and len(test) == cfg.test_days
        assert train[-1] + 1 == test[0]
    # The test rows do not depend on the training length.
    fixed = [test for _, test in walk_forward_windows(n, cfg)]
    assert all(np.array_equal(a, b) for a, (_, b) in zip(fixed, windows, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    train_days=st.integers(1, 50),
    test_days=st.integers(1, 20),
    n_windows=st.integers(1, 6),
    extra=st.integers(0, 30),
    train_window=st.one_of(st.none(), st.integers(1, 80)),
)
def test_windows_never_overlap_train_and_test(
    train_days: int, test_days: int, n_windows: int, extra: int, train_window: int | None
) -> None:
    cfg = WalkForwardConfig(train_days, test_days, n_windows)
    length = train_days if train_window is None else train_window
    n = length + test_days * n_windows + extra
    windows = walk_forward_windows(n, cfg, train_window)
    tests = np.concatenate([test for _, test in windows])
    assert len(np.unique(tests)) == len(tests) == test_days * n_windows
    assert tests.max() == n - 1 and tests.min() >= length
    for train, test in windows:
        assert len(train) == length
        assert train.min() >= 0 and train[-1] + 1 == test.min()
    with pytest.raises(InsufficientHistoryError):
        walk_forward_windows(n - extra - 1, cfg, train_window)


def test_too_few_rows_says_needed_and_available() -> None:
    cfg = WalkForwardConfig(train_days=30, test_days=10, n_windows=4)
    with pytest.raises(InsufficientHistoryError, match=r"needs 70 rows, got 69") as info:
        walk_forward_windows(69, cfg)
    assert isinstance(info.value, ValueError)
    assert (info.value.needed, info.value.available) == (70, 69)


# --------------------------------------------------------------------------- params, columns


def test_candidate_columns_keeps_base_features_and_short_lags() -> None:
    columns = ["date", "open", "ret_oc_lag1", "ret_cc_lag1", "gap"]
    columns += [f"ret_oc_lag{k}" for k in range(2, 6)] + ["ret_cc_lag3", "target", "vol_5"]
    got = candidate_columns(columns, 2)
    assert got == ["ret_oc_lag1", "ret_cc_lag1", "gap", "ret_oc_lag2", "vol_5"]
    assert "ret_cc_lag3" in candidate_columns(columns, 3)
    assert not {"date", "open", "target"} & set(candidate_columns(columns, 5))


def test_model_params_json_round_trip_and_validation() -> None:
    params = ModelParams(n_lags=4, n_features=3, learning_rate=0.1, reg_lambda=2.5, seed=7)
    again = ModelParams.from_dict(json.loads(json.dumps(params.to_dict())))
    assert again == params
    with pytest.raises(ValueError, match="unknown"):
        ModelParams.from_dict({**params.to_dict(), "max_depth": 3})
    with pytest.raises(ValueError, match="num_leaves"):
        ModelParams(num_leaves=1)
    with pytest.raises(ValueError, match="train_window"):
        ModelParams(train_window=5)


def test_the_study_scores_direction_like_everything_else() -> None:
    from zdte_assets.evaluation import metrics as evaluation

    actual = np.array([0.01, -0.02, 0.03, -0.01, 0.0])
    assert directional_accuracy(np.sign(actual[:4]), actual[:4]) == 1.0
    assert directional_accuracy(-actual, actual) == 0.0  # the flat day is a miss
    # Zero forecasts are no call; hits over the calls, as in evaluation.
    pred = [0.1, 0.1, 0.0, 0.0, 0.1]
    assert directional_accuracy(pred, actual) == pytest.approx(1 / 3)
    assert directional_accuracy(pred, actual) == evaluation.directional_accuracy(actual, pred)
    # Only a forecast that never calls needs a number: a coin.
    assert directional_accuracy(np.zeros(5), actual) == ABSTAIN_ACCURACY


# --------------------------------------------------------------------------- fit_model


def test_fit_model_rejects_bad_training_frames() -> None:
    frame = make_frame(40, seed=1)
    with pytest.raises(ValueError, match="constant"):
        fit_model(frame.with_columns(target=pl.lit(0.001)), ModelParams())
    with pytest.raises(ValueError, match="at least"):
        fit_model(frame.head(MIN_TRAIN_ROWS - 1), ModelParams())
    with pytest.raises(ValueError, match="sorted"):
        fit_model(frame.reverse(), ModelParams())
    with pytest.raises(ValueError, match="target"):
        fit_model(frame.with_columns(target=pl.lit(None, dtype=pl.Float64)), ModelParams())


def test_fit_model_is_deterministic_and_respects_n_lags_and_n_features() -> None:
    frame = make_frame(60, seed=2, signal=1.0)
    params = ModelParams(n_lags=2, n_features=4)
    first = fit_model(frame.head(50), params)
    second = fit_model(frame.head(50), params)
    assert first.features == second.features
    assert np.array_equal(first.predict(frame.tail(10)), second.predict(frame.tail(10)))
    assert len(first.features) == 4
    assert all(not name.endswith(("lag3", "lag4", "lag5")) for name in first.features)


def test_fit_model_tolerates_missing_feature_values() -> None:
    frame = make_frame(40, seed=3)
    holes = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 5)
        .then(None)
        .otherwise(pl.col("ret_oc_lag1"))
        .alias("ret_oc_lag1")
    )
    pred = fit_model(holes.head(30), ModelParams()).predict(holes.tail(10))
    assert np.all(np.isfinite(pred))


def test_shrinkage_pushes_noise_forecasts_to_zero() -> None:
    params = ModelParams()
    shrinkages, shrunk, raw = [], [], []
    for seed in range(4):
        frame = make_frame(80, seed=10 + seed)
        model = fit_model(frame.head(60), params)
        spread = float(np.std(frame.get_column("target").to_numpy(), ddof=1))
        shrinkages.append(model.shrinkage)
        shrunk.append(float(np.mean(np.abs(model.predict(frame.tail(20))))) / spread)
        raw.append(float(np.mean(np.abs(model.predict_raw(frame.tail(20))))) / spread)
        assert 0.0 <= model.shrinkage <= 1.0
    assert np.mean(shrinkages) < 0.15
    # The booster alone does chase the noise; the shrinkage is what removes it.
    assert np.mean(raw) > 3 * np.mean(shrunk)
    assert np.mean(shrunk) < 0.05


def test_strong_signal_is_kept_and_beats_naive_out_of_sample() -> None:
    frame = make_frame(80, seed=20, signal=2.0)
    model = fit_model(frame.head(60), ModelParams())
    assert model.shrinkage > 0.5
    assert "gap" in model.features
    test = frame.tail(20)
    actual = test.get_column("target").to_numpy()
    assert scoring.rmse(model.predict(test), actual) < scoring.rmse(np.zeros(20), actual)


def test_sigma_is_out_of_sample_and_floored_by_target_spread() -> None:
    for signal in (0.0, 3.0):
        frame = make_frame(60, seed=30, signal=signal)
        model = fit_model(frame, ModelParams())
        spread = mad_spread(frame.get_column("target").to_numpy())
        assert model.sigma >= spread * fitting.SIGMA_FLOOR_FRACTION - 1e-15
        assert model.sigma >= model.diagnostics["sigma_oos"]
    # With a strong signal the out-of-sample residuals are tighter than the floor.
    assert model.diagnostics["sigma_oos"] < model.sigma


# --------------------------------------------------------------------------- no look-ahead


@pytest.mark.parametrize("train_window", [30, 55])
def test_selection_only_ever_sees_each_window_training_rows(
    monkeypatch: pytest.MonkeyPatch, train_window: int
) -> None:
    frame = make_frame(100, seed=4)
    cfg = WalkForwardConfig()
    log: list[tuple[str, set[dt.date]]] = []
    real_select, real_fit = fitting._select_columns, walkforward.fit_model
    # Selection works on a matrix built once per fit; its rows are told apart by their targets
    # (continuous, so unique), which name the dates the selection saw.
    date_of = dict(zip(frame["target"].to_list(), frame["date"].to_list(), strict=True))
    assert len(date_of) == frame.height

    def spy_select(x: np.ndarray, y: np.ndarray, *args: object, **kwargs: object) -> list[int]:
        assert x.shape[0] == y.shape[0]
        log.append(("select", {date_of[float(v)] for v in y}))
        return real_select(x, y, *args, **kwargs)  # type: ignore[arg-type]

    def spy_fit(train: pl.DataFrame, params: ModelParams) -> FittedModel:
        log.append(("fit", set(train.get_column("date").to_list())))
        return real_fit(train, params)

    monkeypatch.setattr(fitting, "_select_columns", spy_select)
    monkeypatch.setattr(walkforward, "fit_model", spy_fit)
    evaluate_walk_forward(frame, cfg, ModelParams(n_features=3, train_window=train_window))

    dates = frame.get_column("date").to_list()
    tests = [test for _, test in walk_forward_windows(frame.height, cfg)]
    fits = [(i, d) for i, (kind, d) in enumerate(log) if kind == "fit"]
    assert len(fits) == cfg.n_windows
    for (start, fit_dates), test in zip(fits, tests, strict=True):
        first = int(test[0])
        assert fit_dates == set(dates[first - train_window : first])
        first_test = dates[first]
        end = next((i for i, (kind, _) in enumerate(log) if kind == "fit" and i > start), None)
        selects = [d for kind, d in log[start + 1 : end] if kind == "select"]
        assert selects, "selection was not observed"
        for seen in selects:
            assert seen <= fit_dates
            assert max(seen) < first_test
    assert any(len(d) == train_window for kind, d in log if kind == "select")


def test_validation_rows_that_would_reward_leakage_change_nothing_before_them() -> None:
    """From window 2's first test row on, the target is a perfect function of ``leak``.

    A selection that saw those rows would pick ``leak`` (checked below), so windows 0-2 must
    come out identical with and without the planted rows.
    """
    cfg = WalkForwardConfig()
    base = make_frame(70, seed=5)
    leak = np.random.default_rng(105).normal(size=base.height)
    frame = base.with_columns(leak=pl.Series(leak))
    test_start = int(walk_forward_windows(frame.height, cfg)[2][1][0])
    target = frame.get_column("target").to_numpy().copy()
    target[test_start:] = 0.02 * leak[test_start:]
    planted = frame.with_columns(target=pl.Series(target))

    params = ModelParams(n_features=1, n_lags=2, train_window=cfg.train_days)
    # The planted rows are strong enough to win the selection whenever they are visible.
    assert fit_model(planted.slice(test_start - 10, 30), params).features == ("leak",)

    clean = evaluate_walk_forward(frame, cfg, params)
    dirty = evaluate_walk_forward(planted, cfg, params)
    for window in range(3):
        assert dirty[window].features == clean[window].features
        assert "leak" not in dirty[window].features
        assert dirty[window].predicted == clean[window].predicted
    assert dirty[2].actual != clean[2].actual


def test_rows_before_drops_the_day_and_everything_after() -> None:
    frame = make_frame(30, seed=6)
    day = frame.get_column("date")[20]
    kept = rows_before(frame, day)
    assert kept.height == 20
    assert kept.get_column("date").max() < day


def test_train_daily_ignores_rows_at_or_after_the_day() -> None:
    frame = make_frame(90, seed=7)
    params = ModelParams(train_window=40)
    day = frame.get_column("date")[70]
    later = pl.int_range(pl.len()) >= 70
    scrambled = frame.with_columns(
        target=pl.when(later).then(pl.col("target") * -50.0).otherwise(pl.col("target")),
        gap=pl.when(later).then(pl.col("gap") + 9.0).otherwise(pl.col("gap")),
    )
    probe = frame.slice(70, 5)

    sliced = train_daily(rows_before(frame, day), params)
    via_before = train_daily(frame, params, before=day)
    from_scrambled = train_daily(scrambled, params, before=day)
    expected = sliced.predict(probe)
    assert np.array_equal(via_before.predict(probe), expected)
    assert np.array_equal(from_scrambled.predict(probe), expected)
    assert sliced.diagnostics["train_end"] == frame.get_column("date")[69].isoformat()
    assert sliced.diagnostics["train_start"] == frame.get_column("date")[30].isoformat()
    assert sliced.diagnostics["n_train_rows"] == 40

    # Rows older than the window do not matter either.
    older = frame.with_columns(
        target=pl.when(pl.int_range(pl.len()) < 30).then(0.5).otherwise(pl.col("target"))
    )
    assert np.array_equal(train_daily(older, params, before=day).predict(probe), expected)


def test_train_daily_needs_a_full_window() -> None:
    frame = make_frame(50, seed=8)
    with pytest.raises(InsufficientHistoryError, match="needs 60 rows, got 50"):
        train_daily(frame, ModelParams(train_window=60))


# --------------------------------------------------------------------------- persistence


def test_model_directory_round_trip_without_pickle(tmp_path: Path) -> None:
    frame = make_frame(60, seed=9, signal=1.5)
    model = fit_model(frame.head(50), ModelParams(n_features=5))
    out = model.to_dir(tmp_path / "model")
    loaded = FittedModel.from_dir(out)
    assert np.array_equal(loaded.predict(frame.tail(10)), model.predict(frame.tail(10)))
    assert (loaded.features, loaded.shrinkage, loaded.sigma, loaded.params) == (
        model.features,
        model.shrinkage,
        model.sigma,
        model.params,
    )
    names = {p.name for p in out.rglob("*")}
    assert names == {persistence.BOOSTER_FILE, persistence.METADATA_FILE}
    assert not list(tmp_path.rglob("*.pkl"))
    meta = json.loads((out / persistence.METADATA_FILE).read_text())
    meta["format"] = 999
    (out / persistence.METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format"):
        FittedModel.from_dir(out)


# --------------------------------------------------------------------------- distribution


def test_predictive_distribution_properties() -> None:
    sigma = 0.015
    flat = predictive_distribution(0.0, sigma)
    assert flat.p_up == pytest.approx(0.5)
    up = predictive_distribution(0.004, sigma)
    assert up.p_up > 0.5
    assert up.q05 < up.mean < up.q95
    assert up.q95 - up.mean == pytest.approx(up.mean - up.q05)

    normal = predictive_distribution(0.004, sigma, df=None)
    assert normal.p_up == pytest.approx(stats.norm.cdf(0.004 / sigma))
    assert normal.q95 == pytest.approx(0.004 + stats.norm.ppf(0.95) * sigma)
    # Same standard deviation, fatter tails: narrower 90% band, more mass beyond 4 sigma.
    assert up.q95 - up.q05 < normal.q95 - normal.q05
    assert up.prob_above(0.004 + 4 * sigma) > normal.prob_above(0.004 + 4 * sigma)

    strikes = np.log(np.array([98.0, 100.0, 102.0]) / 100.0)
    probs = up.prob_above(strikes)
    assert probs.shape == (3,) and np.all(np.diff(probs) < 0)
    assert probs[1] == pytest.approx(up.p_up)
    levels = up.quantile(np.array([0.05, 0.5, 0.95]))
    assert levels == pytest.approx([up.q05, up.mean, up.q95])
    assert up.prob_above(levels) == pytest.approx([0.95, 0.5, 0.05])
    json.dumps(up.to_dict())
    with pytest.raises(ValueError):
        predictive_distribution(0.0, 0.0)
    with pytest.raises(ValueError):
        predictive_distribution(0.0, sigma, df=2.0)


def test_fitted_model_predictive_uses_model_sigma() -> None:
    frame = make_frame(50, seed=11)
    model = fit_model(frame.head(40), ModelParams())
    dists = model.predictive(frame.tail(3))
    assert [d.sigma for d in dists] == [model.sigma] * 3
    assert [d.mean for d in dists] == list(model.predict(frame.tail(3)))


def test_importance_and_validation_metrics_are_plain_and_consistent() -> None:
    frame = make_frame(60, seed=17, signal=2.0)
    model = fit_model(frame, ModelParams(n_features=4))
    names, gains = model.importance()
    assert sorted(names) == sorted(model.features)
    assert gains == sorted(gains, reverse=True) and gains[0] > 0
    assert names[0] == "gap"
    metrics = model.validation_metrics()
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert metrics["inner_rmse"] == model.diagnostics["sigma_oos"]
    assert metrics["inner_rmse_ratio"] < 1.0
    assert metrics["n_inner_oos"] == frame.height - frame.height // 2


# --------------------------------------------------------------------------- Pareto rule


def trial(number: int, rmse: float, accuracy: float) -> TrialSummary:
    return TrialSummary(
        number=number, params=ModelParams(seed=number), rmse=rmse, accuracy=accuracy
    )


def test_choice_prefers_accuracy_among_trials_that_beat_naive() -> None:
    pareto = [trial(0, 0.0100, 0.70), trial(1, 0.0095, 0.60), trial(2, 0.0090, 0.56)]
    chosen, beats = choose_trial(pareto, naive_rmse=0.0098, base_rate=0.55)
    # Trial 0 is more accurate but no better than naive in RMSE.
    assert (chosen.number, beats) == (1, True)


def test_choice_needs_accuracy_above_the_majority_rate() -> None:
    pareto = [trial(0, 0.0090, 0.56), trial(1, 0.0095, 0.59)]
    # A 40% up-rate makes "always down" score 60%: neither trial beats that.
    assert choose_trial(pareto, naive_rmse=0.0100, base_rate=0.40) == (pareto[0], False)
    assert choose_trial(pareto, naive_rmse=0.0100, base_rate=0.57) == (pareto[1], True)
    # Equal to the majority rate is not above it.
    assert choose_trial(pareto, naive_rmse=0.0100, base_rate=0.59) == (pareto[0], False)


def test_choice_when_nothing_beats_naive_takes_lowest_rmse() -> None:
    pareto = [trial(3, 0.0120, 0.62), trial(1, 0.0105, 0.55), trial(2, 0.0100, 0.50)]
    chosen, beats = choose_trial(pareto, naive_rmse=0.0100, base_rate=0.5)
    assert (chosen.number, beats) == (2, False)


def test_choice_ties_break_on_rmse_then_trial_number() -> None:
    pareto = [trial(5, 0.009, 0.60), trial(4, 0.008, 0.60), trial(2, 0.008, 0.60)]
    assert choose_trial(pareto, 0.010, 0.5) == (pareto[2], True)
    lost = [trial(7, 0.011, 0.52), trial(6, 0.011, 0.55), trial(3, 0.011, 0.55)]
    assert choose_trial(lost, 0.010, 0.5) == (lost[2], False)
    with pytest.raises(ValueError):
        choose_trial([], 0.01, 0.5)


# --------------------------------------------------------------------------- study


def test_study_is_reproducible() -> None:
    frame = make_frame(120, seed=12)
    cfg = WalkForwardConfig()
    first = run_study(frame, cfg, n_trials=8, seed=3)
    second = run_study(frame, cfg, n_trials=8, seed=3)
    assert first.to_dict() == second.to_dict()
    assert first.chosen.params.seed == 3


def test_default_study_finds_a_real_signal() -> None:
    # Its cost is a benchmark's figure (benchmarks/study_benchmark.py), not a test's.
    frame = make_frame(150, seed=13, signal=2.0)
    cfg = WalkForwardConfig()
    result = run_study(frame, cfg)
    assert result.n_complete_trials == 24
    assert result.beats_naive
    assert result.chosen.rmse < result.naive_rmse
    assert result.chosen in result.pareto

    dates = frame.get_column("date").to_list()
    window = result.chosen.params.train_window
    for w in result.windows:
        first = dates.index(w.test_dates[0])
        assert (w.train_start, w.train_end) == (dates[first - window], dates[first - 1])

    y_val = frame.get_column("target").to_numpy()[-cfg.n_windows * cfg.test_days :]
    assert result.naive_rmse == pytest.approx(math.sqrt(float(np.mean(y_val**2))))
    assert result.base_rate == pytest.approx(float(np.mean(y_val > 0)))
    assert len(result.windows) == cfg.n_windows
    assert result.windows[-1].test_dates[-1] == frame.get_column("date")[-1]
    pred = np.concatenate([w.predicted for w in result.windows])
    actual = np.concatenate([w.actual for w in result.windows])
    assert np.array_equal(actual, y_val)
    assert scoring.rmse(pred, actual) == pytest.approx(result.chosen.rmse)
    assert directional_accuracy(pred, actual) == pytest.approx(result.chosen.accuracy)

    payload = json.loads(json.dumps(result.to_dict()))
    assert StudyResult.from_dict(payload) == result
    assert payload["validation"]["predicted"] == list(pred)
    assert payload["validation"]["actual"] == list(actual)
    assert len(payload["validation"]["dates"]) == len(y_val)


def test_fixed_train_window_range_pins_the_daily_window() -> None:
    cfg = WalkForwardConfig()
    frame = make_frame(45 + cfg.n_windows * cfg.test_days, seed=14)
    result = run_study(frame, cfg, n_trials=2, train_window_range=(45, 45))
    assert {t.params.train_window for t in result.pareto} == {45}
    assert result.windows[0].train_start == frame.get_column("date")[0]
    with pytest.raises(InsufficientHistoryError, match="45 train"):
        run_study(frame.tail(frame.height - 1), cfg, n_trials=1, train_window_range=(45, 45))


def test_explicit_train_window_range_is_capped_by_rows_available(tmp_path: Path) -> None:
    """Uncapped, a proposal above the rows available would fail its trial and the study."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    cfg = WalkForwardConfig()
    before_first_test = cfg.train_days + 25
    frame = make_frame(before_first_test + cfg.n_windows * cfg.test_days, seed=24)
    run_study(
        frame, cfg, n_trials=6, storage=url, study_name="capped", train_window_range=(30, 500)
    )
    trials = optuna.load_study(study_name="capped", storage=url).trials
    windows = [int(t.user_attrs["model_params"]["train_window"]) for t in trials]
    assert len(windows) == 6
    assert max(windows) <= before_first_test


def test_default_train_window_range_follows_train_days_and_rows_available() -> None:
    cfg = WalkForwardConfig()
    test_rows = cfg.n_windows * cfg.test_days
    roomy = walkforward.MAX_TRAIN_WINDOW + test_rows + 50
    assert study_train_window_range(roomy, cfg) == (cfg.train_days, walkforward.MAX_TRAIN_WINDOW)
    assert study_train_window_range(cfg.rows_needed, cfg) == (cfg.train_days, cfg.train_days)
    # 35 rows before the first test window: the cap falls between grid points and rounds down.
    step = walkforward.TRAIN_WINDOW_STEP
    lo, hi = study_train_window_range(cfg.rows_needed + 3 * step + 5, cfg)
    assert (lo, hi) == (cfg.train_days, cfg.train_days + 3 * step)
    wide = WalkForwardConfig(train_days=40)
    assert study_train_window_range(roomy, wide)[0] == 40
    with pytest.raises(InsufficientHistoryError):
        study_train_window_range(cfg.rows_needed - 1, cfg)


def test_train_window_changes_the_validation_predictions() -> None:
    """Two trials that differ only in ``train_window`` are scored differently."""
    frame = make_frame(150, seed=21, signal=2.0)
    cfg = WalkForwardConfig()
    short = run_study(frame, cfg, n_trials=1, seed=5, train_window_range=(30, 30))
    long = run_study(frame, cfg, n_trials=1, seed=5, train_window_range=(80, 80))
    assert dataclasses.replace(short.params, train_window=80) == long.params
    assert [w.test_dates for w in short.windows] == [w.test_dates for w in long.windows]
    assert [w.actual for w in short.windows] == [w.actual for w in long.windows]
    assert [w.predicted for w in short.windows] != [w.predicted for w in long.windows]
    assert (short.chosen.rmse, short.chosen.accuracy) != (long.chosen.rmse, long.chosen.accuracy)

    params = ModelParams(n_features=3)
    a = evaluate_walk_forward(frame, cfg, dataclasses.replace(params, train_window=40))
    b = evaluate_walk_forward(frame, cfg, dataclasses.replace(params, train_window=90))
    assert [w.predicted for w in a] != [w.predicted for w in b]


def test_every_trial_trains_each_window_on_its_own_train_window(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    frame = make_frame(160, seed=22)
    cfg = WalkForwardConfig()
    seen: list[list[dt.date]] = []
    real_fit = walkforward.fit_model

    def spy_fit(train: pl.DataFrame, params: ModelParams) -> FittedModel:
        seen.append(train.get_column("date").to_list())
        return real_fit(train, params)

    monkeypatch.setattr(walkforward, "fit_model", spy_fit)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    n_trials = 6
    run_study(frame, cfg, n_trials=n_trials, storage=url, study_name="spy")
    trials = optuna.load_study(study_name="spy", storage=url).trials
    assert len(seen) == n_trials * cfg.n_windows

    dates = frame.get_column("date").to_list()
    first_tests = [int(test[0]) for _, test in walk_forward_windows(frame.height, cfg)]
    windows = [int(t.user_attrs["model_params"]["train_window"]) for t in trials]
    assert len(set(windows)) > 1, "the search never varied train_window"
    for k, window in enumerate(windows):
        for i, first in enumerate(first_tests):
            assert seen[k * cfg.n_windows + i] == dates[first - window : first]
            assert max(seen[k * cfg.n_windows + i]) < dates[first]


def test_shortest_history_runs_with_train_window_at_train_days() -> None:
    cfg = WalkForwardConfig()
    frame = make_frame(cfg.rows_needed, seed=23)
    result = run_study(frame, cfg, n_trials=4)
    assert {t.params.train_window for t in result.pareto} == {cfg.train_days}
    dates = frame.get_column("date").to_list()
    assert result.windows[0].train_start == dates[0]
    for w in result.windows:
        first = dates.index(w.test_dates[0])
        assert (w.train_start, w.train_end) == (dates[first - cfg.train_days], dates[first - 1])
    with pytest.raises(InsufficientHistoryError, match=f"needs {cfg.rows_needed} rows"):
        run_study(frame.tail(cfg.rows_needed - 1), cfg, n_trials=1)


def test_study_silences_optuna_trial_logging() -> None:
    optuna.logging.set_verbosity(optuna.logging.INFO)
    run_study(make_frame(70, seed=25), WalkForwardConfig(), n_trials=1)
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING


def test_storing_a_study_snapshot_prints_no_optuna_info(tmp_path: Path) -> None:
    """The replay stores the worker's studies before it runs any of its own: no INFO line."""
    from zdte_assets.model.study import compute_study_snapshot

    _, snapshot = compute_study_snapshot(make_frame(70, seed=25), WalkForwardConfig(), 1, 0, "w")
    optuna.logging.set_verbosity(optuna.logging.INFO)
    snapshot.save(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    stored = optuna.load_study(study_name="w", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(stored.trials) == 1 and stored.user_attrs["seed"] == 0


def test_shared_storage_is_created_once_and_refuses_other_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    frame = make_frame(70, seed=15)
    cfg = WalkForwardConfig()
    first = run_study(frame, cfg, n_trials=3, storage=url, study_name="week")
    again = run_study(frame, cfg, n_trials=3, storage=url, study_name="week")
    assert again.n_complete_trials == 3
    assert again.to_dict() == first.to_dict()
    more = run_study(frame, cfg, n_trials=4, storage=url, study_name="week")
    assert more.n_complete_trials == 4
    stored = optuna.load_study(study_name="week", storage=url)
    assert len(stored.trials) == 4
    with pytest.raises(ValueError, match="other data"):
        run_study(make_frame(70, seed=16), cfg, n_trials=3, storage=url, study_name="week")
    unnamed = run_study(frame, cfg, n_trials=2, storage=url)
    assert unnamed.study_name.startswith("zdte-")
    assert run_study(frame, cfg, n_trials=2, storage=url).study_name == unnamed.study_name


def test_stored_study_is_computed_once_reused_and_partial_ones_replaced(tmp_path: Path) -> None:
    from zdte_assets.model.study import run_study_stored

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    frame = make_frame(70, seed=15)
    cfg = WalkForwardConfig()
    fresh = run_study(frame, cfg, n_trials=3, seed=2, study_name="week")
    stored = run_study_stored(frame, cfg, 3, 2, url, "week")
    assert stored.to_dict() == fresh.to_dict()
    study = optuna.load_study(study_name="week", storage=url)
    assert len(study.trials) == 3 and study.user_attrs["seed"] == 2
    first_starts = [t.datetime_start for t in study.trials]
    # Same rows and settings: the stored trials are reused, not recomputed.
    again = run_study_stored(frame, cfg, 3, 2, url, "week")
    assert again.to_dict() == fresh.to_dict()
    assert [t.datetime_start for t in optuna.load_study(study_name="week", storage=url).trials] == (
        first_starts
    )
    # Other settings (seed) or other rows replace the study instead of mixing with it.
    other = run_study_stored(frame, cfg, 3, 5, url, "week")
    assert other.to_dict() == run_study(frame, cfg, n_trials=3, seed=5, study_name="week").to_dict()
    # A partial study (a killed run) is replaced by a complete, deterministic one.
    optuna.delete_study(study_name="week", storage=url)
    partial = optuna.create_study(
        study_name="week", storage=url, directions=["minimize", "maximize"]
    )
    partial.set_user_attr("seed", 2)
    partial.enqueue_trial({})
    replaced = run_study_stored(frame, cfg, 3, 2, url, "week")
    assert replaced.to_dict() == fresh.to_dict()
    assert len(optuna.load_study(study_name="week", storage=url).trials) == 3
