"""Drift statistics, triggers, the cooldown, the report and the false-alarm simulation."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats

from zdte_assets.core import calendar
from zdte_assets.core.records import DriftReport, ModelPointer
from zdte_assets.evaluation.metrics import base_rate_up, directional_hits
from zdte_assets.features.rows import feature_columns
from zdte_assets.monitoring import false_alarms
from zdte_assets.monitoring.config import MONITORING_CONFIG, DriftConfig
from zdte_assets.monitoring.cooldown import (
    apply_cooldown,
    cooldown_active,
    in_cooldown,
    sessions_between,
)
from zdte_assets.monitoring.false_alarms import (
    SIM_FEATURES,
    _burn,
    _drift_fired,
    _drift_stats,
    _performance_fired,
    _simulate_paths,
    _simulate_predictions,
    simulate_false_alarm_grid,
    simulate_false_alarm_rates,
)
from zdte_assets.monitoring.report import (
    build_drift_report,
    feature_drift,
    load_drift_report,
    performance,
    target_drift,
)
from zdte_assets.monitoring.statistics import (
    holm_adjust,
    ks_2samp,
    ks_pvalue_effective,
    ks_statistic_windows,
    lag1_autocorr,
    psi,
    wasserstein,
    wasserstein_scaled,
)
from zdte_assets.monitoring.triggers import TRIGGER_NAMES, Trigger, evaluate_triggers
from zdte_assets.storage.keys import asset_value_key
from zdte_assets.storage.store import LocalStore

DOC = Path(__file__).resolve().parent.parent / "docs" / "monitoring.md"


# --- statistics ------------------------------------------------------------------------------


def test_ks_equals_scipy() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=300), rng.standard_t(4, size=40)
    want = stats.ks_2samp(ref, cur)
    assert ks_2samp(ref, cur) == (want.statistic, want.pvalue)
    # NaNs are dropped rather than propagated.
    assert ks_2samp([*ref, math.nan], cur) == (want.statistic, want.pvalue)
    assert all(math.isnan(v) for v in ks_2samp([], cur))


def test_psi_identical_is_zero_and_shift_is_large() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=2000)
    assert psi(x, x) == 0.0
    assert psi(x, rng.normal(size=5000)) < 0.02  # same distribution, large samples
    assert psi(x, rng.normal(loc=2.0, size=2000)) > 1.0
    # Ten quantile bins of the reference hold a tenth each; all of a sample above the top edge
    # puts 1 - eps... in one bin: PSI = (1 - 0.1) ln(1 / 0.1) + 9 (eps - 0.1) ln(eps / 0.1).
    eps = 1e-4
    far = np.full(100, x.max() + 1.0)
    want = 0.9 * math.log(10.0) + 9 * (eps - 0.1) * math.log(eps / 0.1)
    assert psi(x, far, eps=eps) == pytest.approx(want, rel=1e-9)


def test_psi_on_twenty_days_is_mostly_noise() -> None:
    # Why PSI is not the default rule: same distribution, 20 observations, 10 bins.
    rng = np.random.default_rng(2)
    ref = rng.normal(size=252)
    values = [psi(ref, rng.normal(size=20)) for _ in range(200)]
    assert np.mean(np.array(values) > 0.25) > 0.5


def test_wasserstein_of_a_shift_is_the_shift() -> None:
    x = np.random.default_rng(3).normal(size=500)
    for c in (0.7, -0.25, 0.0):
        assert wasserstein(x, x + c) == pytest.approx(abs(c), abs=1e-12)
        assert wasserstein_scaled(x, x + c) == pytest.approx(abs(c) / x.std(ddof=1), abs=1e-12)
    assert wasserstein_scaled([1.0, 1.0], [1.0]) == 0.0
    assert wasserstein_scaled([1.0, 1.0], [2.0]) == math.inf


def test_wasserstein_scaled_is_scale_free() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=300), rng.normal(0.3, 1.2, size=50)
    assert wasserstein_scaled(a, b) == pytest.approx(wasserstein_scaled(100 * a, 100 * b))


def test_holm_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06.
    np.testing.assert_allclose(holm_adjust(p), [0.03, 0.06, 0.06, 0.02])
    out = holm_adjust([0.01, math.nan, 0.02])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.02])
    assert math.isnan(out[1])
    two_d = holm_adjust(np.array([p, p[::-1]]))
    np.testing.assert_allclose(two_d[1], holm_adjust(p[::-1]))
    assert holm_adjust([0.6, 0.9]).max() == 1.0


def test_lag1_autocorr() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(size=20000)
    ar = np.empty_like(z)
    ar[0] = z[0]
    for t in range(1, z.size):
        ar[t] = 0.8 * ar[t - 1] + z[t]
    assert lag1_autocorr(ar) == pytest.approx(0.8, abs=0.02)
    assert abs(lag1_autocorr(z)) < 0.03
    assert lag1_autocorr([1.0, 1.0, 1.0]) == 0.0


def test_effective_pvalue_equals_scipy_asymptotic_when_independent() -> None:
    rng = np.random.default_rng(6)
    ref, cur = rng.normal(size=400), rng.normal(0.4, size=60)
    stat, _ = ks_2samp(ref, cur)
    asymp = stats.ks_2samp(ref, cur, method="asymp").pvalue
    assert ks_pvalue_effective(stat, 400, 60, 0.0) == pytest.approx(asymp, rel=1e-12)
    assert ks_pvalue_effective(stat, 400, 60, 0.9) > asymp


# --- feature and target drift ---------------------------------------------------------------


def _frames(
    seed: int, shift: float, n_ref: int = 500, n_cur: int = 100
) -> tuple[pl.DataFrame, ...]:
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c", "d", "e"]
    ref = pl.DataFrame({n: rng.normal(size=n_ref) for n in names})
    cur = pl.DataFrame({n: rng.normal(size=n_cur) + (shift if n == "a" else 0.0) for n in names})
    return ref, cur


def test_feature_drift_detects_a_one_sd_shift() -> None:
    ref, cur = _frames(7, shift=1.0)
    fd = feature_drift(ref, cur)
    assert fd.columns == [
        "feature",
        "n_ref",
        "n_cur",
        "ks_stat",
        "ks_pvalue",
        "autocorr",
        "ks_pvalue_effective",
        "ks_pvalue_holm",
        "psi",
        "wasserstein",
        "wasserstein_scaled",
        "drifted",
    ]
    assert fd.filter(pl.col("drifted")).get_column("feature").to_list() == ["a"]
    row = fd.row(0, named=True)
    assert row["ks_stat"] == stats.ks_2samp(ref["a"], cur["a"]).statistic
    assert row["wasserstein_scaled"] > 0.7
    trig = {t.name: t for t in evaluate_triggers({"feature_drift": fd})}
    assert trig["data_drift"].fired
    assert "a" in trig["data_drift"].explanation


def test_feature_drift_mostly_quiet_without_change() -> None:
    fired = 0
    for seed in range(30):
        ref, cur = _frames(100 + seed, shift=0.0)
        fired += bool(feature_drift(ref, cur).get_column("drifted").any())
    # Holm at 1% family-wise: expect about 0.3 of 30.
    assert fired <= 2


def test_feature_drift_default_columns_skip_non_features() -> None:
    rng = np.random.default_rng(8)
    frame = pl.DataFrame(
        {
            "date": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 30), eager=True).head(30),
            "open": rng.normal(100, 1, size=30),
            "gap": rng.normal(size=30),
            "target": rng.normal(size=30),
        }
    )
    assert feature_drift(frame, frame).get_column("feature").to_list() == ["gap"]
    with pytest.raises(ValueError, match="missing"):
        feature_drift(frame, frame, ["nope"])


def test_autocorrelated_feature_guard() -> None:
    # A stationary AR(1) with phi = 0.97: a 20-day window is a small piece of a slow wave, so
    # the plain KS test calls it drift most of the time; effective sizes do not.
    rng = np.random.default_rng(9)
    n = 5000
    x = np.empty(n)
    x[0] = 0.0
    for t in range(1, n):
        x[t] = 0.97 * x[t - 1] + rng.normal()
    plain = guarded = 0
    for start in range(300, n - 20, 200):
        ref = pl.DataFrame({"x": x[start - 252 : start]})
        cur = pl.DataFrame({"x": x[start : start + 20]})
        plain += bool(feature_drift(ref, cur).item(0, "drifted"))
        guarded += bool(feature_drift(ref, cur, config=DriftConfig.guarded()).item(0, "drifted"))
    assert plain >= 5
    assert guarded <= 1


def test_target_drift() -> None:
    rng = np.random.default_rng(10)
    ref = rng.normal(0, 0.015, size=252)
    quiet_cur, loud_cur = rng.normal(0, 0.015, size=20), rng.normal(0, 0.045, size=20)
    quiet, loud = target_drift(ref, quiet_cur), target_drift(ref, loud_cur)
    assert not quiet["drifted"]
    assert loud["drifted"]
    assert loud["ks_pvalue"] == stats.ks_2samp(ref, loud_cur).pvalue
    assert loud["std_cur"] > 2 * loud["std_ref"]
    assert set(quiet) >= {"ks_stat", "ks_pvalue", "psi", "wasserstein", "wasserstein_scaled"}
    json.dumps(quiet)  # JSON-able as is


# --- performance and triggers ---------------------------------------------------------------

REF_ERRORS = [0.01, -0.01] * 126  # RMSE exactly 0.01


def _hits(n_hits: int, n: int = 20) -> list[float]:
    return [1.0] * n_hits + [0.0] * (n - n_hits)


def _by_name(perf: dict[str, Any], config: DriftConfig | None = None) -> dict[str, Trigger]:
    return {t.name: t for t in evaluate_triggers({"performance": perf}, config)}


def test_rmse_jump_fires() -> None:
    perf = performance([0.05, 0.013, -0.013, 0.013], REF_ERRORS, _hits(12), 0.5)
    assert perf["ma_rmse"] == pytest.approx(0.013)
    assert perf["ratio"] == pytest.approx(1.3)
    trig = _by_name(perf)["rmse_ratio"]
    assert trig.fired and trig.value == pytest.approx(1.3) and trig.threshold == 1.2
    calm = performance([0.011, -0.011, 0.011], REF_ERRORS, _hits(12), 0.5)
    assert not _by_name(calm)["rmse_ratio"].fired


def test_rmse_guard_requires_significance() -> None:
    perf = performance([0.013, -0.013, 0.013], REF_ERRORS, _hits(12), 0.5)
    assert perf["rmse_pvalue"] == pytest.approx(stats.f.sf(1.3**2, 3, 252))
    assert not _by_name(perf, DriftConfig.guarded())["rmse_ratio"].fired
    big = performance([0.03, -0.03, 0.03], REF_ERRORS, _hits(12), 0.5)
    assert _by_name(big, DriftConfig.guarded())["rmse_ratio"].fired


def test_rmse_needs_a_full_window() -> None:
    perf = performance([0.05, 0.05], REF_ERRORS, _hits(12), 0.5)
    trig = _by_name(perf)["rmse_ratio"]
    assert not trig.fired and "Not evaluated" in trig.explanation


def test_accuracy_fifty_percent_fires() -> None:
    perf = performance([0.01] * 3, REF_ERRORS, _hits(10), 0.5)
    assert perf["accuracy"] == 0.5
    trig = _by_name(perf)["accuracy_floor"]
    assert trig.fired and trig.value == 0.5 and trig.threshold == 0.55
    assert not _by_name(performance([0.01] * 3, REF_ERRORS, _hits(12), 0.5))["accuracy_floor"].fired


def test_accuracy_window_uses_last_sessions_and_calls_only() -> None:
    hits = [0.0] * 30 + [1.0] * 11 + [math.nan] * 2 + [0.0] * 7  # last 20: 11 of 18 calls
    perf = performance([0.01] * 3, REF_ERRORS, hits, 0.5)
    assert perf["n_calls"] == 18 and perf["n_hits"] == 11
    assert perf["accuracy"] == pytest.approx(11 / 18)
    assert not _by_name(perf)["accuracy_floor"].fired


def test_accuracy_not_evaluated_without_enough_calls() -> None:
    short = performance([0.01] * 3, REF_ERRORS, _hits(2, n=10), 0.5)
    assert not _by_name(short)["accuracy_floor"].fired
    few_calls = performance([0.01] * 3, REF_ERRORS, [0.0] * 5 + [math.nan] * 15, 0.5)
    trig = _by_name(few_calls)["accuracy_floor"]
    assert not trig.fired and "Not evaluated" in trig.explanation


def test_accuracy_guards() -> None:
    # 10/20 is below the floor but equals the benchmark of a 50% base rate: guarded says no.
    perf = performance([0.01] * 3, REF_ERRORS, _hits(10), 0.5)
    assert not _by_name(perf, DriftConfig(accuracy_below_base_rate=True))["accuracy_floor"].fired
    # With 60% up days, "always up" scores 60%: 10/20 is below it, but not significant.
    perf60 = performance([0.01] * 3, REF_ERRORS, _hits(10), 0.6)
    assert perf60["benchmark_accuracy"] == 0.6
    assert _by_name(perf60, DriftConfig(accuracy_below_base_rate=True))["accuracy_floor"].fired
    assert perf60["accuracy_pvalue"] == pytest.approx(stats.binom.cdf(10, 20, 0.55))
    assert not _by_name(perf60, DriftConfig.guarded())["accuracy_floor"].fired
    bad = performance([0.01] * 3, REF_ERRORS, _hits(4), 0.6)
    assert _by_name(bad, DriftConfig.guarded())["accuracy_floor"].fired


def test_triggers_order_and_missing_parts() -> None:
    triggers = evaluate_triggers({})
    assert [t.name for t in triggers] == list(TRIGGER_NAMES)
    assert not any(t.fired for t in triggers)
    assert all("Not evaluated" in t.explanation for t in triggers)
    with pytest.raises(ValueError, match="unknown report parts"):
        evaluate_triggers({"perf": {}})
    json.dumps([t.model_dump(mode="json") for t in triggers])


def test_triggers_recompute_flags_with_their_own_config() -> None:
    ref, cur = _frames(11, shift=0.0, n_cur=20)
    fd = feature_drift(ref, cur)  # KS rule: quiet
    assert not evaluate_triggers({"feature_drift": fd})[2].fired
    # The PSI rule on 20 observations flags nearly everything; the flags follow the config.
    psi_cfg = DriftConfig(data_method="psi")
    assert evaluate_triggers({"feature_drift": fd.to_dicts()}, psi_cfg)[2].fired


def test_target_trigger() -> None:
    rng = np.random.default_rng(12)
    ref = rng.normal(0, 0.015, size=252)
    td = target_drift(ref, rng.normal(0, 0.05, size=20))
    trig = evaluate_triggers({"target_drift": td})[3]
    assert trig.name == "target_drift" and trig.fired
    assert trig.value == td["ks_pvalue"] and trig.threshold == 0.01


# --- config and cooldown --------------------------------------------------------------------


def test_config_defaults_json_and_validation() -> None:
    cfg = DriftConfig()
    assert (cfg.rmse_window, cfg.rmse_ratio_threshold, cfg.accuracy_floor) == (3, 1.2, 0.55)
    assert DriftConfig.from_json(cfg.to_json()) == cfg
    guarded = DriftConfig.guarded()
    assert DriftConfig.from_dict(json.loads(guarded.to_json())) == guarded
    # Guards never move the original thresholds.
    assert guarded.rmse_ratio_threshold == cfg.rmse_ratio_threshold
    assert guarded.accuracy_floor == cfg.accuracy_floor
    with pytest.raises(ValueError, match="unknown"):
        DriftConfig.from_dict({"rmse_treshold": 1.5})
    for bad in ({"rmse_window": 0}, {"accuracy_floor": 1.5}, {"data_alpha": 0.0}):
        with pytest.raises(ValueError):
            DriftConfig(**bad)  # type: ignore[arg-type]


def test_cooldown() -> None:
    fired = [True] * 8
    assert apply_cooldown(fired, 5).tolist() == [True] + [False] * 5 + [True, False]
    assert apply_cooldown(fired, 0).tolist() == fired
    assert apply_cooldown([False, True, True, False, True], 2).tolist() == [
        False,
        True,
        False,
        False,
        True,
    ]
    assert not cooldown_active(None, 5)
    assert cooldown_active(5, 5)
    assert not cooldown_active(6, 5)


# --- simulation -----------------------------------------------------------------------------

SMALL: dict[str, Any] = {"n_days": 120, "n_sims": 30}


def test_simulation_rates_in_range_and_cooldown_reduces_firings() -> None:
    rates = simulate_false_alarm_rates(DriftConfig(), **SMALL, seed=1)
    assert set(rates) == {*TRIGGER_NAMES, "any", "data_drift_lag_features"}
    for r in rates.values():
        assert 0.0 <= r["fraction_of_days"] <= 1.0
        assert r["firings_per_252_days"] <= r["firings_per_252_days_no_cooldown"] + 1e-12
        assert r["firings_per_252_days"] <= 252 / 6 + 1  # at most one firing per 6 days
    # The raw rules fire often (NOTES): the cooldown must bite on them.
    assert rates["any"]["firings_per_252_days"] < rates["any"]["firings_per_252_days_no_cooldown"]
    assert rates["any"]["fraction_of_days"] >= max(
        rates[name]["fraction_of_days"] for name in TRIGGER_NAMES
    )


def test_simulation_is_deterministic() -> None:
    a = simulate_false_alarm_rates(DriftConfig(), **SMALL, seed=3, returns_model="garch_t")
    b = simulate_false_alarm_rates(DriftConfig(), **SMALL, seed=3, returns_model="garch_t")
    c = simulate_false_alarm_rates(DriftConfig(), **SMALL, seed=4, returns_model="garch_t")
    assert a == b
    assert a != c


def test_simulation_matches_closed_forms_for_normal_returns() -> None:
    rates = simulate_false_alarm_rates(
        DriftConfig(), n_days=252, n_sims=60, seed=5, returns_model="normal"
    )
    # 3-day MSE over a 252-day MSE of normal errors is F(3, 252): P(ratio > 1.2).
    assert rates["rmse_ratio"]["fraction_of_days"] == pytest.approx(
        stats.f.sf(1.2**2, 3, 252), abs=0.03
    )
    # Accuracy < 55% over 20 calls of a 55% model: at most 10 hits of Binomial(20, 0.55).
    assert rates["accuracy_floor"]["fraction_of_days"] == pytest.approx(
        stats.binom.cdf(10, 20, 0.55), abs=0.04
    )
    assert rates["target_drift"]["fraction_of_days"] < 0.03
    assert rates["data_drift_lag_features"]["fraction_of_days"] < 0.03


def test_guards_cut_false_alarms() -> None:
    raw = simulate_false_alarm_rates(DriftConfig(), **SMALL, seed=6)
    guarded = simulate_false_alarm_rates(DriftConfig.guarded(), **SMALL, seed=6)
    assert guarded["any"]["firings_per_252_days"] < raw["any"]["firings_per_252_days"] / 2
    for name in ("rmse_ratio", "accuracy_floor", "data_drift"):
        assert guarded[name]["fraction_of_days"] < raw[name]["fraction_of_days"]


def test_grid_equals_single_runs() -> None:
    configs = {"d": DriftConfig(), "g": DriftConfig.guarded(), "p": DriftConfig(data_method="psi")}
    rows = simulate_false_alarm_grid(configs, ("iid_t",), (0.55, 0.52), n_days=60, n_sims=8)
    for row in rows:
        single = simulate_false_alarm_rates(
            configs[row["config"]],
            n_days=60,
            n_sims=8,
            true_accuracy=row["true_accuracy"],
            returns_model=row["returns_model"],
        )
        assert row["rates"] == single


@pytest.mark.parametrize(
    "config",
    [DriftConfig(), DriftConfig.guarded(), DriftConfig(data_method="psi")],
    ids=["default", "guarded", "psi"],
)
def test_simulation_replays_through_the_public_functions(config: DriftConfig) -> None:
    """The vectorized verdicts equal those of the functions the sensor calls, day by day."""
    paths = _simulate_paths(
        burn=_burn(config),
        n_days=80,
        n_sims=3,
        seed=7,
        returns_model="garch_t",
        daily_sd=0.015,
        reference_days=252,
    )
    pred = _simulate_predictions(paths, 0.52)
    ds = _drift_stats(
        paths,
        config.recent_window,
        alpha_exact=config.data_alpha,
        alpha_eff=config.data_alpha,
        alpha_target=config.target_alpha,
        psi_bins=[config.psi_bins],
    )
    fast = {**_performance_fired(config, paths, pred), **_drift_fired(config, ds)}
    r, x = paths.returns, paths.features
    ref = slice(paths.ref_start, paths.ref_stop)
    errors, hits = r - pred, directional_hits(r, pred)
    n = config.recent_window

    # Every day of sim 0 and 1, plus every firing of the rarer rules in any sim.
    picks = {(s, j) for s in (0, 1) for j in range(0, 80, 4)}
    for name in TRIGGER_NAMES:
        picks |= {(int(s), int(j)) for s, j in np.argwhere(fast[name])[:6]}
    seen = dict.fromkeys(TRIGGER_NAMES, 0)
    for s, j in sorted(picks):
        t = int(paths.days[j])
        ref_frame = pl.DataFrame({name: x[s, ref, i] for i, name in enumerate(SIM_FEATURES)})
        cur_frame = pl.DataFrame(
            {name: x[s, t - n + 1 : t + 1, i] for i, name in enumerate(SIM_FEATURES)}
        )
        parts = {
            "performance": performance(
                errors[s, paths.ref_stop : t + 1],
                errors[s, ref],
                hits[s, paths.ref_stop : t + 1],
                base_rate_up(r[s, ref]),
                config,
            ),
            "feature_drift": feature_drift(ref_frame, cur_frame, config=config),
            "target_drift": target_drift(r[s, ref], r[s, t - n + 1 : t + 1], config),
        }
        for trig in evaluate_triggers(parts, config):
            assert trig.fired == bool(fast[trig.name][s, j]), (trig.name, s, j, trig)
            seen[trig.name] += trig.fired
        lag_frame = feature_drift(ref_frame, cur_frame, SIM_FEATURES[:5], config)
        lag_fired = evaluate_triggers({"feature_drift": lag_frame}, config)[2].fired
        assert lag_fired == bool(fast["data_drift_lag_features"][s, j])
    # The replay covered firings, not only quiet days.
    assert seen["rmse_ratio"] > 0 and seen["data_drift"] > 0


# --- the documented table -------------------------------------------------------------------


def test_doc_states_the_command_and_holds_the_current_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "python -m zdte_assets.monitoring.false_alarms --markdown" in text
    start = text.index(false_alarms.BEGIN_MARKER) + len(false_alarms.BEGIN_MARKER) + 1
    table = text[start : text.index(false_alarms.END_MARKER)]
    rows = false_alarms.compute()
    assert table == false_alarms.render_markdown(rows, 200, 252, 0)


def test_script_prints_markdown_and_replaces_blocks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert false_alarms.main(["--markdown", "--n-sims", "3", "--n-days", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Each cell:") and "| rmse_ratio | default |" in out
    doc = tmp_path / "doc.md"
    doc.write_text(
        f"intro\n{false_alarms.BEGIN_MARKER}\nSTALE-CONTENT\n{false_alarms.END_MARKER}\nend\n"
    )
    assert false_alarms.main(["--write", str(doc), "--n-sims", "3", "--n-days", "30"]) == 0
    new = doc.read_text()
    assert "STALE-CONTENT" not in new and new.startswith("intro\n") and new.endswith("end\n")
    assert out in new
    with pytest.raises(ValueError):
        false_alarms.replace_block("no markers", "x")


# --- the batch KS statistic, the cooldown in sessions, the report record ---------------------


def test_window_statistics_equal_scipy() -> None:
    rng = np.random.default_rng(21)
    m, n = 40, 7
    ref = rng.standard_t(4, size=(3, m))
    series = rng.standard_t(4, size=(3, 30)) * np.array([[1.0], [1.5], [0.5]])
    days = np.arange(n - 1, 30, dtype=np.int64)
    h = ks_statistic_windows(ref, series, days, n)
    lcm = math.lcm(m, n)
    for s in range(3):
        for j, t in enumerate(days.tolist()):
            want = stats.ks_2samp(ref[s], series[s, t - n + 1 : t + 1]).statistic
            assert h[s, j] == round(want * lcm)


def test_cooldown_counts_sessions_not_calendar_days() -> None:
    friday = dt.date(2024, 11, 8)
    monday = calendar.next_trading_day(friday)
    later = calendar.next_trading_day(friday, 3)
    assert sessions_between(friday, monday) == 1
    assert in_cooldown(monday, friday, 1) and not in_cooldown(monday, friday, 0)
    assert in_cooldown(later, friday, 3) and not in_cooldown(later, friday, 2)
    assert not in_cooldown(monday, None, 5)


def _report_inputs(seed: int) -> tuple[pl.DataFrame, dict[str, dict[str, Any]], ModelPointer]:
    rng = np.random.default_rng(seed)
    days = calendar.trading_days(dt.date(2023, 1, 3), dt.date(2024, 6, 28))
    cols = feature_columns()
    frame = pl.DataFrame(
        {"date": days, **{c: rng.standard_normal(len(days)) for c in cols}},
    )
    train_last = days[-41]
    outcomes = {
        d.isoformat(): {
            "date": d.isoformat(),
            "realized_return": float(rng.normal(0, 0.01)),
            "predicted_return": float(rng.normal(0, 0.001)),
        }
        for d in days[-40:]
    }
    model = ModelPointer(
        ticker="AAPL",
        day=days[-1],
        model_version="7",
        model_uri="models:/zdte-AAPL/7",
        mlflow_run_id="r",
        tuned_as_of=None,
        tuned_run_id="",
        beats_naive=False,
        params={},
        features=tuple(cols),
        sigma=0.01,
        shrinkage=1.0,
        train_first=days[0],
        train_last=train_last,
        reference_returns=tuple(rng.normal(0, 0.01, size=250).tolist()),
        reference_errors=tuple(rng.normal(0, 0.01, size=250).tolist()),
    )
    return frame, outcomes, model


def test_report_is_a_record_that_round_trips_through_json(tmp_path: Path) -> None:
    frame, outcomes, model = _report_inputs(31)
    day = dt.date.fromisoformat(max(outcomes))
    report = build_drift_report(day, frame, outcomes, model, MONITORING_CONFIG)
    assert isinstance(report, DriftReport)
    assert [t.name for t in report.triggers] == list(TRIGGER_NAMES)
    assert report.fired == tuple(t.name for t in report.triggers if t.fired)
    assert [f.feature for f in report.feature_drift] == feature_columns()
    assert report.config == MONITORING_CONFIG.to_dict()
    assert report.recent.outcomes == len(outcomes)
    # The stored form is strict JSON that reads back into an equal record.
    store = LocalStore(tmp_path)
    key = asset_value_key("AAPL", "drift_report", day.isoformat(), "json")
    store.write_bytes(key, report.model_dump_json().encode())
    text = (tmp_path / key).read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert load_drift_report(store, "AAPL", day) == report
    # No look-ahead: outcomes after the report's day change nothing.
    earlier = calendar.previous_trading_day(day)
    cut = {k: v for k, v in outcomes.items() if k <= earlier.isoformat()}
    assert build_drift_report(earlier, frame, outcomes, model, MONITORING_CONFIG) == (
        build_drift_report(earlier, frame, cut, model, MONITORING_CONFIG)
    )


def test_a_stored_report_with_a_renamed_field_is_refused(tmp_path: Path) -> None:
    frame, outcomes, model = _report_inputs(32)
    day = dt.date.fromisoformat(max(outcomes))
    doc = build_drift_report(day, frame, outcomes, model, MONITORING_CONFIG).model_dump(mode="json")
    doc["fired_triggers"] = doc.pop("fired")
    store = LocalStore(tmp_path)
    key = asset_value_key("AAPL", "drift_report", day.isoformat(), "json")
    store.write_bytes(key, json.dumps(doc).encode())
    with pytest.raises(ValueError, match="not a drift report") as err:
        load_drift_report(store, "AAPL", day)
    assert key in str(err.value)
