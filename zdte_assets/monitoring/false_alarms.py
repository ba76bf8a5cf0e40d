"""How often the re-optimization triggers fire when nothing changes, and the table of
docs/monitoring.md: ``python -m zdte_assets.monitoring.false_alarms``.

Thresholds are chosen from a known false-alarm rate rather than from intuition. The simulation
draws stationary returns, a model of fixed accuracy and features built like the real ones, then
applies every rule day by day through the functions the report uses: ``statistics`` for the
KS statistics (``ks_statistic_windows``, scipy's statistic for every window at once) and their
p-values (scipy's exact ``ks_2samp``, ``kstwo`` at effective sizes), ``triggers`` for the rules
and the Holm correction, ``cooldown`` for the cooldown. Longer than 600 lines because
the simulation and the table it feeds are one concern: the table is generated rather than
typed so it cannot drift away from the code (change a default in ``DriftConfig`` and the table,
and the test comparing it with the document, follow).

    python -m zdte_assets.monitoring.false_alarms --markdown            # print the Markdown table
    python -m zdte_assets.monitoring.false_alarms --write docs/monitoring.md   # refresh it in place
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from scipy import stats

from zdte_assets.evaluation.metrics import base_rate_up, directional_hits
from zdte_assets.monitoring.config import DriftConfig
from zdte_assets.monitoring.cooldown import cooldown_rows
from zdte_assets.monitoring.statistics import (
    PSI_EPS,
    bin_props,
    effective_en,
    ks_2samp,
    ks_statistic_windows,
    kstwo_sf,
    lag1_autocorr,
    psi_edges,
    psi_from_props,
    rms,
    window_at,
)
from zdte_assets.monitoring.triggers import (
    TRIGGER_NAMES,
    accuracy_fires,
    data_fires,
    drifted_flags,
    rmse_fires,
    target_fires,
)

ReturnsModel = Literal["iid_t", "garch_t", "normal"]

#: Features of the simulated stationary process: 5 serially independent lags, like the
#: ``ret_oc_lag*`` columns, and 3 moving-window ones, like ``rv_cc_5``, ``rv_cc_20``, ``mom_20``.
SIM_FEATURES: tuple[str, ...] = (
    "ret_lag1",
    "ret_lag2",
    "ret_lag3",
    "ret_lag4",
    "ret_lag5",
    "rv_5",
    "rv_20",
    "mom_20",
)
_SIM_N_LAG_FEATURES = 5
_SIM_PREHISTORY = 20
_IID_T_DF = 5
_GARCH_ALPHA, _GARCH_BETA, _GARCH_T_DF, _GARCH_BURN = 0.08, 0.90, 7, 500
#: Size of a simulated prediction relative to the daily standard deviation; real return
#: forecasts are a small fraction of the noise.
_PRED_SCALE = 0.1
_KS_EXACT_P: dict[tuple[int, int, int], float] = {}


@dataclass(frozen=True)
class _SimPaths:
    seed: int
    daily_sd: float
    returns: NDArray[np.float64]  # (S, T)
    features: NDArray[np.float64]  # (S, T, F)
    ref_start: int
    ref_stop: int
    days: NDArray[np.int64]  # monitored indices into T


def _standard_t(rng: np.random.Generator, df: int, size: tuple[int, int]) -> Any:
    return rng.standard_t(df, size=size) * math.sqrt((df - 2) / df)


def _simulate_returns(
    rng: np.random.Generator, model: ReturnsModel, n_sims: int, n_total: int, sd: float
) -> NDArray[np.float64]:
    if model == "normal":
        return sd * rng.standard_normal((n_sims, n_total))
    if model == "iid_t":
        draws: NDArray[np.float64] = sd * _standard_t(rng, _IID_T_DF, (n_sims, n_total))
        return draws
    if model == "garch_t":
        z = _standard_t(rng, _GARCH_T_DF, (n_sims, _GARCH_BURN + n_total))
        omega = sd * sd * (1.0 - _GARCH_ALPHA - _GARCH_BETA)
        var = np.full(n_sims, sd * sd)
        out = np.empty_like(z)
        for t in range(z.shape[1]):
            out[:, t] = np.sqrt(var) * z[:, t]
            var = omega + _GARCH_ALPHA * out[:, t] ** 2 + _GARCH_BETA * var
        return np.asarray(out[:, _GARCH_BURN:])
    raise ValueError(f"unknown returns model {model!r}")


def _sim_features(r: NDArray[np.float64]) -> NDArray[np.float64]:
    """Causal features: row t uses returns up to t-1 only, like the real feature frame."""
    n_sims, n_total = r.shape
    x = np.full((n_sims, n_total, len(SIM_FEATURES)), np.nan)
    pre = _SIM_PREHISTORY
    for k in range(1, _SIM_N_LAG_FEATURES + 1):
        x[:, pre:, k - 1] = r[:, pre - k : n_total - k]
    past5 = sliding_window_view(r, 5, axis=1)[:, pre - 5 : n_total - 5]
    past20 = sliding_window_view(r, 20, axis=1)[:, pre - 20 : n_total - 20]
    x[:, pre:, 5] = np.sqrt(np.mean(past5**2, axis=-1))
    x[:, pre:, 6] = np.sqrt(np.mean(past20**2, axis=-1))
    x[:, pre:, 7] = past20.sum(axis=-1)
    return x


def _burn(cfg: DriftConfig) -> int:
    return max(cfg.rmse_window, cfg.accuracy_window, cfg.recent_window) - 1


def _simulate_paths(
    *,
    burn: int,
    n_days: int,
    n_sims: int,
    seed: int,
    returns_model: ReturnsModel,
    daily_sd: float,
    reference_days: int,
) -> _SimPaths:
    """Stationary returns and causal features; nothing ever changes.

    Timeline: prehistory for the features, then ``reference_days`` of reference (the training
    period: reference features, returns and out-of-sample errors), then deployment. Monitoring
    starts ``burn`` days later, once every window is full of post-deployment data, so each
    monitored day is in steady state. The model's calls come from a separate seed stream
    (``_simulate_predictions``), so scenarios that differ only in accuracy share the returns.
    """
    n_total = _SIM_PREHISTORY + reference_days + burn + n_days
    seq_r = np.random.SeedSequence(seed).spawn(2)[0]
    r = _simulate_returns(np.random.default_rng(seq_r), returns_model, n_sims, n_total, daily_sd)
    ref_start = _SIM_PREHISTORY
    ref_stop = ref_start + reference_days
    return _SimPaths(
        seed=seed,
        daily_sd=daily_sd,
        returns=r,
        features=_sim_features(r),
        ref_start=ref_start,
        ref_stop=ref_stop,
        days=np.arange(ref_stop + burn, n_total, dtype=np.int64),
    )


def _simulate_predictions(paths: _SimPaths, true_accuracy: float) -> NDArray[np.float64]:
    """A model whose call is right with probability ``true_accuracy``, independently each day.

    Its magnitude is a small fraction of the daily sd, like real return forecasts, so the
    errors are stationary and close to the returns themselves.
    """
    rng = np.random.default_rng(np.random.SeedSequence(paths.seed).spawn(2)[1])
    r = paths.returns
    correct = rng.random(r.shape) < true_accuracy
    direction = np.where(correct, np.sign(r), -np.sign(r))
    magnitude = _PRED_SCALE * paths.daily_sd * np.abs(rng.standard_normal(r.shape))
    return np.asarray(direction * magnitude)


def _pvalues_by_h(
    h: NDArray[np.int64], pvalue_of: Callable[[int, int], float], alpha: float
) -> NDArray[np.float64]:
    """p-values for integer KS statistics ``h``, one evaluation per distinct value.

    Evaluated from the largest statistic down and stopped at the first p-value >= ``alpha``:
    a p-value decreases with the statistic, so every smaller statistic also has p >= alpha,
    and those are returned as 1.0. The rules only ever ask "p (Holm-adjusted, which can only
    grow) < alpha", so this changes no verdict and saves most of scipy's expensive calls.
    ``pvalue_of(h, flat_index)`` gets the flat index of one occurrence of ``h``.
    """
    flat = h.ravel()
    uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    values = np.ones(uniq.size)
    for j in range(uniq.size - 1, -1, -1):
        values[j] = pvalue_of(int(uniq[j]), int(first[j]))
        if values[j] >= alpha:
            break
    return values[inverse.ravel()].reshape(h.shape)


def _exact_pvalues(
    h: NDArray[np.int64],
    ref: NDArray[np.float64],
    series: NDArray[np.float64],
    days: NDArray[np.int64],
    n: int,
    alpha: float,
) -> NDArray[np.float64]:
    """scipy's exact KS p-values for the statistics ``h`` from ``ks_statistic_windows``.

    scipy's exact p-value depends only on (m, n, round(D * lcm)), so one scipy call on a pair
    of samples that produced each distinct value gives every p-value exactly.
    """
    m = ref.shape[1]
    lcm = math.lcm(m, n)
    n_days = days.size

    def pvalue_of(hv: int, flat_index: int) -> float:
        key = (m, n, hv)
        if key not in _KS_EXACT_P:
            s, d = divmod(flat_index, n_days)
            t = int(days[d])
            stat, pvalue = ks_2samp(ref[s], series[s, t - n + 1 : t + 1])
            if round(stat * lcm) != hv:
                raise RuntimeError("fast KS statistic disagrees with scipy; data has ties?")
            _KS_EXACT_P[key] = pvalue
        return _KS_EXACT_P[key]

    return _pvalues_by_h(h, pvalue_of, alpha)


def _effective_pvalues(
    h: NDArray[np.int64], lcm: int, en: NDArray[np.int64], alpha: float
) -> NDArray[np.float64]:
    """``kstwo_sf(h / lcm, en[s])`` for statistics ``h`` (S, D) and sizes ``en`` (S,)."""
    out = np.ones(h.shape)
    for e in np.unique(en).tolist():
        rows = en == e

        def pvalue_of(hv: int, _flat_index: int, e: int = e) -> float:
            return kstwo_sf(hv / lcm, e)

        out[rows] = _pvalues_by_h(h[rows], pvalue_of, alpha)
    return out


def _psi_windows(
    ref: NDArray[np.float64],
    series: NDArray[np.float64],
    days: NDArray[np.int64],
    n: int,
    bins: int,
) -> NDArray[np.float64]:
    """``psi`` of each reference (S, m) against the windows (t - n, t] of ``series`` (S, T)."""
    n_sims, m = ref.shape
    edges = np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1], axis=1).T  # (S, bins-1)
    out = np.empty((n_sims, days.size))
    regular = np.all(np.diff(edges, axis=1) > 0, axis=1)
    for s in np.flatnonzero(~regular).tolist():  # tied reference: merged edges, row by row
        e = psi_edges(ref[s], bins)
        p_ref = bin_props(ref[s], e)
        for j, t in enumerate(days.tolist()):
            out[s, j] = psi_from_props(p_ref, bin_props(series[s, t - n + 1 : t + 1], e), PSI_EPS)
    if regular.any():
        e = edges[regular][:, None, :]
        ref_idx = (e <= ref[regular][:, :, None]).sum(axis=-1)
        ser_idx = (e <= series[regular][:, :, None]).sum(axis=-1)
        codes = np.arange(bins)
        p_ref = (ref_idx[..., None] == codes).sum(axis=1) / m  # (S', bins)
        # Window counts as differences of running counts: windows overlap almost entirely.
        running = np.cumsum(ser_idx[..., None] == codes, axis=1, dtype=np.int64)  # (S', T, bins)
        running = np.concatenate([np.zeros_like(running[:, :1]), running], axis=1)
        p_cur = (running[:, days + 1] - running[:, days + 1 - n]) / n  # (S', D, bins)
        out[regular] = psi_from_props(p_ref[:, None, :], p_cur, PSI_EPS)
    return out


@dataclass(frozen=True)
class _DriftStats:
    p_exact: NDArray[np.float64]  # (S, D, F) scipy KS p-values
    p_eff: NDArray[np.float64]  # (S, D, F) effective-size KS p-values
    psi: dict[int, NDArray[np.float64]]  # bins -> (S, D, F)
    p_target: NDArray[np.float64]  # (S, D)


def _drift_stats(
    paths: _SimPaths,
    recent_window: int,
    *,
    alpha_exact: float,
    alpha_eff: float,
    alpha_target: float,
    psi_bins: Sequence[int],
) -> _DriftStats:
    """Data and target drift statistics of every monitored day, computed as the sensor would.

    Only p-values below the given levels are computed to full precision (``_pvalues_by_h``);
    pass the largest level any rule will compare with.
    """
    x, r, days = paths.features, paths.returns, paths.days
    ref = slice(paths.ref_start, paths.ref_stop)
    n_sims, m, n = x.shape[0], paths.ref_stop - paths.ref_start, recent_window
    lcm = math.lcm(m, n)
    n_feat = x.shape[2]
    p_exact = np.empty((n_sims, days.size, n_feat))
    p_eff = np.empty_like(p_exact)
    psi_out = {b: np.empty_like(p_exact) for b in sorted(set(psi_bins))}
    for f in range(n_feat):
        ref_f = np.ascontiguousarray(x[:, ref, f])
        series = np.ascontiguousarray(x[:, :, f])
        h = ks_statistic_windows(ref_f, series, days, n)
        p_exact[:, :, f] = _exact_pvalues(h, ref_f, series, days, n, alpha_exact)
        en = np.array([effective_en(m, n, lag1_autocorr(ref_f[s])) for s in range(n_sims)])
        p_eff[:, :, f] = _effective_pvalues(h, lcm, en, alpha_eff)
        for bins, out in psi_out.items():
            out[:, :, f] = _psi_windows(ref_f, series, days, n, bins)
    ref_r = np.ascontiguousarray(r[:, ref])
    h_target = ks_statistic_windows(ref_r, r, days, n)
    p_target = _exact_pvalues(h_target, ref_r, r, days, n, alpha_target)
    return _DriftStats(p_exact=p_exact, p_eff=p_eff, psi=psi_out, p_target=p_target)


def _drift_fired(cfg: DriftConfig, ds: _DriftStats) -> dict[str, NDArray[np.bool_]]:
    nan_psi = np.full(ds.p_exact.shape, np.nan)
    psi_v = ds.psi.get(cfg.psi_bins, nan_psi) if cfg.data_method == "psi" else nan_psi
    _, flags = drifted_flags(ds.p_exact, ds.p_eff, psi_v, cfg)
    k = _SIM_N_LAG_FEATURES
    _, flags_lags = drifted_flags(ds.p_exact[..., :k], ds.p_eff[..., :k], psi_v[..., :k], cfg)
    return {
        "data_drift": data_fires(flags.sum(axis=-1), cfg),
        "target_drift": target_fires(ds.p_target, cfg),
        "data_drift_lag_features": data_fires(flags_lags.sum(axis=-1), cfg),
    }


def _performance_fired(
    cfg: DriftConfig, paths: _SimPaths, pred: NDArray[np.float64]
) -> dict[str, NDArray[np.bool_]]:
    """The two performance rules on every monitored day, with ``performance``'s arithmetic."""
    r, days = paths.returns, paths.days
    ref = slice(paths.ref_start, paths.ref_stop)
    n_sims, m = r.shape[0], paths.ref_stop - paths.ref_start
    e = r - pred
    ref_rmse = np.array([float(rms(e[s, ref])) for s in range(n_sims)])
    w = cfg.rmse_window
    ratio = rms(window_at(e, days, w)) / ref_rmse[:, None]
    rmse_p = stats.f.sf(ratio * ratio, w, m)

    aw = cfg.accuracy_window
    hits = window_at(directional_hits(r, pred), days, aw)
    n_calls = np.isfinite(hits).sum(axis=-1)
    n_hits = np.nansum(hits, axis=-1)
    acc = np.divide(n_hits, n_calls, out=np.full(n_hits.shape, np.nan), where=n_calls > 0)
    acc_p = stats.binom.cdf(n_hits, n_calls, cfg.accuracy_floor)
    base = np.array([base_rate_up(r[s, ref]) for s in range(n_sims)])
    bench = np.maximum(base, 1.0 - base)[:, None]
    return {
        "rmse_ratio": rmse_fires(ratio, rmse_p, cfg),
        "accuracy_floor": accuracy_fires(acc, n_calls, True, acc_p, bench, cfg),
    }


def _rates(
    fired: Mapping[str, NDArray[np.bool_]], cooldown_days: int
) -> dict[str, dict[str, float]]:
    ordered = {name: fired[name] for name in TRIGGER_NAMES}
    ordered["any"] = np.logical_or.reduce([fired[name] for name in TRIGGER_NAMES])
    ordered["data_drift_lag_features"] = fired["data_drift_lag_features"]
    out: dict[str, dict[str, float]] = {}
    for name, f in ordered.items():
        frac = float(f.mean())
        kept = int(cooldown_rows(f, cooldown_days).sum())
        out[name] = {
            "fraction_of_days": frac,
            "firings_per_252_days_no_cooldown": frac * 252.0,
            "firings_per_252_days": kept / f.size * 252.0,
        }
    return out


def simulate_false_alarm_grid(
    configs: Mapping[str, DriftConfig],
    returns_models: Sequence[ReturnsModel] = ("iid_t", "garch_t"),
    accuracies: Sequence[float] = (0.55, 0.52),
    n_days: int = 252,
    n_sims: int = 200,
    seed: int = 0,
    *,
    daily_sd: float = 0.015,
    reference_days: int = 252,
) -> list[dict[str, Any]]:
    """``simulate_false_alarm_rates`` for every (returns model, accuracy, config) combination.

    Same numbers as the one-at-a-time calls with the same seed, but each path set and its
    drift statistics are computed once per returns model and shared by the accuracies and
    configs (which is what keeps the documentation table fast). Rows are dicts with
    ``returns_model``, ``true_accuracy``, ``config`` (the key in ``configs``) and ``rates``.
    """
    if n_days < 1 or n_sims < 1:
        raise ValueError("n_days and n_sims must be >= 1")
    if reference_days < 3:
        raise ValueError("reference_days must be >= 3")
    for acc in accuracies:
        if not 0.0 < acc < 1.0:
            raise ValueError("true accuracies must be in (0, 1)")
    groups: dict[tuple[int, int], dict[str, DriftConfig]] = {}
    for name, cfg in configs.items():
        groups.setdefault((_burn(cfg), cfg.recent_window), {})[name] = cfg
    results: dict[tuple[str, float, str], dict[str, dict[str, float]]] = {}
    for model in returns_models:
        for (burn, recent), group in groups.items():
            paths = _simulate_paths(
                burn=burn,
                n_days=n_days,
                n_sims=n_sims,
                seed=seed,
                returns_model=model,
                daily_sd=daily_sd,
                reference_days=reference_days,
            )
            cfgs = list(group.values())
            ks_cfgs = [c for c in cfgs if c.data_method == "ks"]
            ds = _drift_stats(
                paths,
                recent,
                alpha_exact=max(
                    [c.data_alpha for c in ks_cfgs if not c.data_autocorr_adjust], default=0.0
                ),
                alpha_eff=max(
                    [c.data_alpha for c in ks_cfgs if c.data_autocorr_adjust], default=0.0
                ),
                alpha_target=max(c.target_alpha for c in cfgs),
                psi_bins=[c.psi_bins for c in cfgs if c.data_method == "psi"],
            )
            drift = {name: _drift_fired(cfg, ds) for name, cfg in group.items()}
            for acc in accuracies:
                pred = _simulate_predictions(paths, acc)
                for name, cfg in group.items():
                    fired = {**_performance_fired(cfg, paths, pred), **drift[name]}
                    results[(model, acc, name)] = _rates(fired, cfg.cooldown_days)
    return [
        {
            "returns_model": model,
            "true_accuracy": acc,
            "config": name,
            "rates": results[(model, acc, name)],
        }
        for model in returns_models
        for acc in accuracies
        for name in configs
    ]


def simulate_false_alarm_rates(
    config: DriftConfig | None = None,
    n_days: int = 252,
    n_sims: int = 200,
    seed: int = 0,
    *,
    true_accuracy: float = 0.55,
    returns_model: ReturnsModel = "iid_t",
    daily_sd: float = 0.015,
    reference_days: int = 252,
) -> dict[str, dict[str, float]]:
    """How often each trigger fires when nothing changes, monitored day by day.

    Returns (sd ``daily_sd``) are i.i.d. Student-t(5) (``"iid_t"``), GARCH(1,1) with
    Student-t(7) shocks and the same unconditional sd (``"garch_t"``: stationary, but with
    the volatility clustering of real returns) or normal (``"normal"``, for checks against
    closed forms). The model's calls are right with probability ``true_accuracy``, its errors
    are stationary, and the features are the lags and moving-window statistics of the same
    returns (``SIM_FEATURES``). Since the data never change, every firing is a false alarm,
    except that a model whose true accuracy is below the floor is, by design, "failing" the
    accuracy rule.

    For each name in ``TRIGGER_NAMES`` plus ``"any"`` (the union, i.e. re-optimization
    requests) and ``"data_drift_lag_features"`` (the data rule on the 5 serially independent
    features only): ``fraction_of_days`` fired, ``firings_per_252_days_no_cooldown``
    (= fraction x 252) and ``firings_per_252_days`` after ``config.cooldown_days`` of
    cooldown applied to that row alone. Deterministic given ``seed``.
    """
    cfg = config or DriftConfig()
    rows = simulate_false_alarm_grid(
        {"config": cfg},
        (returns_model,),
        (true_accuracy,),
        n_days,
        n_sims,
        seed,
        daily_sd=daily_sd,
        reference_days=reference_days,
    )
    rates: dict[str, dict[str, float]] = rows[0]["rates"]
    return rates


# --- the documented table ----------------------------------------------------------------

BEGIN_MARKER = "<!-- false-alarm-table:begin -->"
END_MARKER = "<!-- false-alarm-table:end -->"

CONFIGS: dict[str, DriftConfig] = {
    "default": DriftConfig(),
    "guarded": DriftConfig.guarded(),
    "psi": DriftConfig(data_method="psi"),
}
RETURNS_MODELS: tuple[ReturnsModel, ...] = ("iid_t", "garch_t")
ACCURACIES: tuple[float, ...] = (0.55, 0.52)
_MODEL_LABEL = {"iid_t": "i.i.d. t(5)", "garch_t": "GARCH t(7)", "normal": "normal"}
#: (row label, trigger key, configs shown). The PSI variant only changes the data rule.
_ROWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("rmse_ratio", "rmse_ratio", ("default", "guarded")),
    ("accuracy_floor", "accuracy_floor", ("default", "guarded")),
    ("data_drift", "data_drift", ("default", "guarded", "psi")),
    ("data_drift, 5 lag features only", "data_drift_lag_features", ("default", "guarded", "psi")),
    ("target_drift", "target_drift", ("default", "guarded")),
    ("any (re-optimization requests)", "any", ("default", "guarded", "psi")),
)


def compute(n_sims: int = 200, n_days: int = 252, seed: int = 0) -> list[dict[str, Any]]:
    """Every (returns model, accuracy, config) cell of the table."""
    return simulate_false_alarm_grid(
        CONFIGS, RETURNS_MODELS, ACCURACIES, n_days=n_days, n_sims=n_sims, seed=seed
    )


def _columns() -> list[tuple[str, float]]:
    return [(m, a) for m in RETURNS_MODELS for a in ACCURACIES]


def table_cells(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and body: each cell is "% of days fired / firings per 252 days with cooldown"."""
    by_key = {(r["returns_model"], r["true_accuracy"], r["config"]): r["rates"] for r in rows}
    header = ["trigger", "config"] + [f"{_MODEL_LABEL[m]}, accuracy {a:.0%}" for m, a in _columns()]
    body: list[list[str]] = []
    for label, key, config_names in _ROWS:
        for name in config_names:
            cells = [label, name]
            for m, a in _columns():
                rate = by_key[(m, a, name)][key]
                cells.append(
                    f"{100 * rate['fraction_of_days']:.1f}% / {rate['firings_per_252_days']:.1f}"
                )
            body.append(cells)
    return header, body


def render_markdown(rows: Sequence[dict[str, Any]], n_sims: int, n_days: int, seed: int) -> str:
    header, body = table_cells(rows)
    cfg = CONFIGS["default"]
    lines = [
        f"Each cell: share of monitored days on which the rule fires / firings per 252 trading "
        f"days after a {cfg.cooldown_days}-day cooldown. {n_sims} simulated paths x "
        f"{n_days} monitored days, seed {seed}, no change anywhere in the data.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def render_text(rows: Sequence[dict[str, Any]]) -> str:
    header, body = table_cells(rows)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *body]) + "\n"


def replace_block(text: str, table: str) -> str:
    """``text`` with the part between the table markers replaced by ``table``."""
    start = text.find(BEGIN_MARKER)
    end = text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"markers {BEGIN_MARKER!r} ... {END_MARKER!r} not found")
    return text[: start + len(BEGIN_MARKER)] + "\n" + table + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zdte_assets.monitoring.false_alarms",
        description="False-alarm rates of the re-optimization triggers on unchanged data.",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="print a Markdown table")
    out.add_argument("--json", action="store_true", help="print every rate as JSON")
    out.add_argument("--write", metavar="PATH", help="replace the table block in PATH")
    parser.add_argument("--n-sims", type=int, default=200)
    parser.add_argument("--n-days", type=int, default=252)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rows = compute(n_sims=args.n_sims, n_days=args.n_days, seed=args.seed)
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif args.markdown:
        sys.stdout.write(render_markdown(rows, args.n_sims, args.n_days, args.seed))
    elif args.write:
        path = Path(args.write)
        table = render_markdown(rows, args.n_sims, args.n_days, args.seed)
        path.write_text(replace_block(path.read_text(encoding="utf-8"), table), encoding="utf-8")
        sys.stdout.write(f"updated {path}\n")
    else:
        sys.stdout.write(render_text(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
