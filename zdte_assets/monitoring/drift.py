"""Drift statistics, re-optimization triggers, and how often those triggers fire on noise.

A trigger that fires on unchanged data wastes a re-optimization and, worse, teaches people to
ignore it. The original rules ("3-day RMSE up 20% on its reference level", "directional
accuracy below 55%") are kept as the defaults because they are the specified behaviour, but
each comes with optional guards, and ``simulate_false_alarm_rates`` measures every variant on
data where nothing changes, so thresholds are chosen from a known false-alarm rate rather than
from intuition (``python -m zdte_assets.monitoring.false_alarms --markdown`` prints the table).

Statistics, all comparing a recent window with a reference sample (typically the model's
training period):

* Kolmogorov-Smirnov (scipy): distribution-free and comes with a p-value, so the rule has a
  stated error rate; it assumes independent observations.
* PSI with quantile bins of the reference: the industry habit, reported for comparison, but on
  a 20-day window its sampling noise alone usually exceeds the customary 0.25.
* Wasserstein-1 (scipy), also divided by the reference's standard deviation so one threshold
  means the same thing for every feature and ticker.

The monitoring sensor and the simulation share the rule functions (``_*_fires``), the Holm
correction and the cooldown, so the measured rates are the rates of the code that runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from zdte_assets.evaluation.metrics import base_rate_up, directional_hits

TRIGGER_NAMES: tuple[str, ...] = ("rmse_ratio", "accuracy_floor", "data_drift", "target_drift")
#: Keys ``evaluate_triggers`` accepts in its ``report_parts``.
REPORT_PARTS: tuple[str, ...] = ("performance", "feature_drift", "target_drift")
#: Columns of a feature frame that are not features.
NON_FEATURE_COLUMNS: frozenset[str] = frozenset({"date", "open", "session_vol", "target"})
#: Floor for a bin proportion in PSI, so an empty bin gives a large but finite term.
PSI_EPS = 1e-4

DataMethod = Literal["ks", "psi"]
ReturnsModel = Literal["iid_t", "garch_t", "normal"]


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def _clean(x: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def ks_2samp(ref: ArrayLike, cur: ArrayLike) -> tuple[float, float]:
    """Two-sample KS statistic and p-value from scipy (exact for samples up to 10,000).

    NaNs are dropped; an empty side gives ``(nan, nan)`` because no test is possible.
    """
    r, c = _clean(ref), _clean(cur)
    if r.size == 0 or c.size == 0:
        return math.nan, math.nan
    res = stats.ks_2samp(r, c)
    return float(res.statistic), float(res.pvalue)


def lag1_autocorr(x: ArrayLike) -> float:
    """Lag-1 autocorrelation of a time-ordered series (NaNs dropped), 0 when undefined.

    Rolling-window features (20-day volatility, momentum) have autocorrelations near 1, which
    makes consecutive days nearly copies of each other; this number measures how much.
    """
    a = _clean(x)
    if a.size < 3:
        return 0.0
    dc = a - a.mean()
    denom = float(np.dot(dc, dc))
    if denom == 0.0:
        return 0.0
    return float(np.dot(dc[1:], dc[:-1]) / denom)


def _effective_en(n_ref: int, n_cur: int, rho: float) -> int:
    """Smirnov's ``m n / (m + n)`` after shrinking both sizes to AR(1) effective sizes."""
    r = min(max(rho, 0.0), 0.999) if math.isfinite(rho) else 0.0
    factor = (1.0 - r) / (1.0 + r)
    m, n = n_ref * factor, n_cur * factor
    return max(1, int(np.round(m * n / (m + n))))


@lru_cache(maxsize=1 << 16)
def _kstwo_sf(d: float, n: int) -> float:
    return float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))


def ks_pvalue_effective(stat: float, n_ref: int, n_cur: int, rho: float) -> float:
    """KS p-value for autocorrelated samples, from AR(1) effective sample sizes.

    The KS p-value assumes independent days; for a feature with lag-1 autocorrelation ``rho``
    a window of ``n`` days carries about ``n (1 - rho) / (1 + rho)`` independent observations,
    so the plain p-value is far too small and the test "detects" drift on a stationary series.
    This applies scipy's asymptotic two-sided distribution (``kstwo`` at the rounded
    ``m n / (m + n)``) to the effective sizes. For moving-window features, whose
    autocorrelation decays more slowly than AR(1) at short lags and faster later, it is
    conservative.
    """
    if n_ref < 1 or n_cur < 1 or not math.isfinite(stat):
        return math.nan
    return _kstwo_sf(float(stat), _effective_en(n_ref, n_cur, rho))


def _psi_edges(ref: NDArray[np.float64], bins: int) -> NDArray[np.float64]:
    """Interior bin edges at the reference's quantiles (duplicates merged for tied data)."""
    qs = np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(qs)


def _bin_props(x: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.float64]:
    idx = np.searchsorted(edges, x, side="right")
    return np.bincount(idx, minlength=edges.size + 1) / x.size


def _psi_from_props(p_ref: NDArray[np.float64], p_cur: NDArray[np.float64], eps: float) -> Any:
    r = np.maximum(p_ref, eps)
    c = np.maximum(p_cur, eps)
    return np.sum((c - r) * np.log(c / r), axis=-1)


def psi(ref: ArrayLike, cur: ArrayLike, bins: int = 10, eps: float = PSI_EPS) -> float:
    """Population stability index with ``bins`` quantile bins of the reference.

    Bin proportions are floored at ``eps`` so an empty bin adds a large finite term instead of
    infinity. Identical samples give exactly 0. Beware of small windows: with 10 bins and 20
    observations, sampling noise alone usually exceeds the customary 0.25 "shift" threshold.
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    r, c = _clean(ref), _clean(cur)
    if r.size == 0 or c.size == 0:
        return math.nan
    edges = _psi_edges(r, bins)
    return float(_psi_from_props(_bin_props(r, edges), _bin_props(c, edges), eps))


def wasserstein(ref: ArrayLike, cur: ArrayLike) -> float:
    """Wasserstein-1 distance from scipy, in the units of the data (NaN if a side is empty)."""
    r, c = _clean(ref), _clean(cur)
    if r.size == 0 or c.size == 0:
        return math.nan
    return float(stats.wasserstein_distance(r, c))


def wasserstein_scaled(ref: ArrayLike, cur: ArrayLike) -> float:
    """Wasserstein-1 divided by the reference's standard deviation.

    A raw distance of 0.01 is huge for a daily return and nothing for an RSI, so only the
    scaled value lets one threshold serve every feature and ticker. A constant reference gives
    0 when the current sample equals it and infinity otherwise.
    """
    r, c = _clean(ref), _clean(cur)
    if r.size < 2 or c.size == 0:
        return math.nan
    w = float(stats.wasserstein_distance(r, c))
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        return 0.0 if w == 0.0 else math.inf
    return w / sd


def holm_adjust(pvalues: ArrayLike) -> NDArray[np.float64]:
    """Holm step-down adjusted p-values along the last axis.

    Testing 25 features at 1% each would flag one about every fourth day by chance alone; the
    Holm adjustment keeps the chance of any false flag at the stated level without assuming
    the features are independent. For a 1-D input, NaN entries stay NaN and are not counted
    in the family; N-D inputs must be finite.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim == 1:
        out = np.full(p.shape, np.nan)
        ok = np.isfinite(p)
        if ok.any():
            out[ok] = _holm_last_axis(p[ok])
        return out
    if not np.all(np.isfinite(p)):
        raise ValueError("holm_adjust needs finite p-values for inputs with more than 1 axis")
    return _holm_last_axis(p)


def _holm_last_axis(p: NDArray[np.float64]) -> NDArray[np.float64]:
    k = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, axis=-1)
    adj = np.minimum(np.maximum.accumulate(ps * (k - np.arange(k)), axis=-1), 1.0)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return out


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftConfig:
    """Trigger thresholds and guards; JSON-able so a run can record exactly what it applied.

    Defaults keep the original design: 3-day RMSE more than 1.2x its reference level, and
    directional accuracy below 55%. The guard fields default to "off" (None/False) and are
    switched on together by ``DriftConfig.guarded()``.

    ``accuracy_window`` is 20 sessions (one trading month) rather than 10: the standard error
    of a hit rate is ``sqrt(0.55 * 0.45 / n)``, 16 points at n = 10 and 11 at n = 20, so a
    10-day window cannot tell a 55% model from a 40% one at all, and 20 days, while still
    noisy, is the longest window that still reacts within a month. It also matches
    ``recent_window``, so every rule looks at the same month.

    ``data_alpha`` and ``target_alpha`` are 1% rather than 5% because the tests run every
    trading day: at 5% a perfectly stable feature set would be flagged about a dozen days a
    year by construction. ``data_alpha`` is a family-wise level (Holm over all features).
    """

    rmse_window: int = 3
    rmse_ratio_threshold: float = 1.2
    #: Guard: also require a one-sided F-test p-value (recent vs reference MSE) below this.
    rmse_alpha: float | None = None
    accuracy_window: int = 20
    accuracy_floor: float = 0.55
    #: Fewer calls than this (non-zero predictions) in the window: no accuracy verdict.
    accuracy_min_calls: int = 10
    #: Guard: also require accuracy below the better of "always up" and "always down".
    accuracy_below_base_rate: bool = False
    #: Guard: also require an exact binomial p-value for "true accuracy >= floor" below this.
    accuracy_alpha: float | None = None
    #: "ks": Holm-corrected KS p-value < data_alpha per feature; "psi": PSI > psi_threshold.
    data_method: DataMethod = "ks"
    data_alpha: float = 0.01
    #: Guard: use KS p-values at AR(1) effective sample sizes (see ks_pvalue_effective).
    data_autocorr_adjust: bool = False
    #: Data drift fires when at least this many features are flagged.
    data_min_features: int = 1
    psi_threshold: float = 0.25
    psi_bins: int = 10
    target_alpha: float = 0.01
    #: Days of recent features / realized returns compared with the reference.
    recent_window: int = 20
    #: After a firing, this many following trading days cannot fire again.
    cooldown_days: int = 5

    def __post_init__(self) -> None:
        for name in ("rmse_window", "accuracy_window", "recent_window", "accuracy_min_calls"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.data_min_features < 1:
            raise ValueError(f"data_min_features must be >= 1, got {self.data_min_features}")
        if self.cooldown_days < 0:
            raise ValueError(f"cooldown_days must be >= 0, got {self.cooldown_days}")
        if self.psi_bins < 2:
            raise ValueError(f"psi_bins must be >= 2, got {self.psi_bins}")
        if not self.rmse_ratio_threshold > 0:
            raise ValueError("rmse_ratio_threshold must be > 0")
        if not 0.0 < self.accuracy_floor < 1.0:
            raise ValueError("accuracy_floor must be in (0, 1)")
        for name in ("rmse_alpha", "accuracy_alpha", "data_alpha", "target_alpha"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if self.data_method not in ("ks", "psi"):
            raise ValueError(f"data_method must be 'ks' or 'psi', got {self.data_method!r}")

    @classmethod
    def guarded(cls, **overrides: Any) -> DriftConfig:
        """Same thresholds with every guard on; the measured table shows what they buy."""
        values: dict[str, Any] = {
            "rmse_alpha": 0.01,
            "accuracy_below_base_rate": True,
            "accuracy_alpha": 0.05,
            "data_autocorr_adjust": True,
        }
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftConfig:
        """Refuses unknown keys, so a misspelt threshold fails instead of silently defaulting."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DriftConfig keys: {unknown}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> DriftConfig:
        return cls.from_dict(json.loads(text))


# --------------------------------------------------------------------------------------------
# Report parts
# --------------------------------------------------------------------------------------------


def default_feature_columns(frame: pl.DataFrame) -> list[str]:
    """Numeric columns of a feature frame other than ``date``, ``open`` and ``target``."""
    return [
        name
        for name, dtype in frame.schema.items()
        if name not in NON_FEATURE_COLUMNS and dtype.is_numeric()
    ]


def _drifted_flags(
    ks_pvalue: NDArray[np.float64],
    ks_pvalue_effective: NDArray[np.float64],
    psi_values: NDArray[np.float64],
    cfg: DriftConfig,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Holm-adjusted p-values of the p-values the rule uses, and the per-feature flags."""
    used = ks_pvalue_effective if cfg.data_autocorr_adjust else ks_pvalue
    adjusted = holm_adjust(used)
    by_ks = cfg.data_method == "ks"
    flags = adjusted < cfg.data_alpha if by_ks else psi_values > cfg.psi_threshold
    return adjusted, np.asarray(flags, dtype=bool)


_FEATURE_DRIFT_SCHEMA: dict[str, Any] = {
    "feature": pl.String,
    "n_ref": pl.Int64,
    "n_cur": pl.Int64,
    "ks_stat": pl.Float64,
    "ks_pvalue": pl.Float64,
    "autocorr": pl.Float64,
    "ks_pvalue_effective": pl.Float64,
    "ks_pvalue_holm": pl.Float64,
    "psi": pl.Float64,
    "wasserstein": pl.Float64,
    "wasserstein_scaled": pl.Float64,
    "drifted": pl.Boolean,
}


def feature_drift(
    ref: pl.DataFrame,
    cur: pl.DataFrame,
    columns: Sequence[str] | None = None,
    config: DriftConfig | None = None,
) -> pl.DataFrame:
    """One row per feature comparing the recent window with the reference.

    Columns: ``feature, n_ref, n_cur, ks_stat, ks_pvalue, autocorr, ks_pvalue_effective,
    ks_pvalue_holm, psi, wasserstein, wasserstein_scaled, drifted``. ``autocorr`` is the lag-1
    autocorrelation of the reference, which must therefore be in time order (as feature frames
    are). ``ks_pvalue_holm`` is the Holm adjustment of the p-value the rule uses (the
    effective-size one when ``data_autocorr_adjust`` is on) over all features, and
    ``drifted`` applies the configured per-feature rule. ``columns`` defaults to every numeric
    column except ``date``, ``open`` and ``target``.
    """
    cfg = config or DriftConfig()
    cols = list(columns) if columns is not None else default_feature_columns(ref)
    missing = [c for c in cols if c not in ref.columns or c not in cur.columns]
    if missing:
        raise ValueError(f"feature columns missing from ref or cur: {missing}")
    rows: dict[str, list[Any]] = {name: [] for name in _FEATURE_DRIFT_SCHEMA}
    for col in cols:
        r_raw = ref.get_column(col).cast(pl.Float64).to_numpy()
        r, c = _clean(r_raw), _clean(cur.get_column(col).cast(pl.Float64).to_numpy())
        stat, pvalue = ks_2samp(r, c)
        rho = lag1_autocorr(r_raw)
        rows["feature"].append(col)
        rows["n_ref"].append(int(r.size))
        rows["n_cur"].append(int(c.size))
        rows["ks_stat"].append(stat)
        rows["ks_pvalue"].append(pvalue)
        rows["autocorr"].append(rho)
        rows["ks_pvalue_effective"].append(ks_pvalue_effective(stat, r.size, c.size, rho))
        rows["psi"].append(psi(r, c, cfg.psi_bins))
        rows["wasserstein"].append(wasserstein(r, c))
        rows["wasserstein_scaled"].append(wasserstein_scaled(r, c))
    adjusted, flags = _drifted_flags(
        np.asarray(rows["ks_pvalue"], dtype=np.float64),
        np.asarray(rows["ks_pvalue_effective"], dtype=np.float64),
        np.asarray(rows["psi"], dtype=np.float64),
        cfg,
    )
    rows["ks_pvalue_holm"] = adjusted.tolist()
    rows["drifted"] = flags.tolist()
    return pl.DataFrame(rows, schema=_FEATURE_DRIFT_SCHEMA)


def target_drift(
    ref_returns: ArrayLike, cur_returns: ArrayLike, config: DriftConfig | None = None
) -> dict[str, Any]:
    """Realized returns of the recent window against the reference period.

    A change in the target's distribution (a volatility regime, a trend) can degrade a model
    before its errors show it over a few days. ``drifted`` is the configured rule: the KS
    p-value below ``target_alpha``. Daily returns are close to serially independent, so the
    plain KS p-value is used (volatility clustering still makes it fire more than alpha; the
    measured table quantifies by how much).
    """
    cfg = config or DriftConfig()
    r, c = _clean(ref_returns), _clean(cur_returns)
    stat, pvalue = ks_2samp(r, c)
    return {
        "n_ref": int(r.size),
        "n_cur": int(c.size),
        "ks_stat": stat,
        "ks_pvalue": pvalue,
        "psi": psi(r, c, cfg.psi_bins) if r.size and c.size else math.nan,
        "wasserstein": wasserstein(r, c),
        "wasserstein_scaled": wasserstein_scaled(r, c),
        "mean_ref": float(r.mean()) if r.size else math.nan,
        "mean_cur": float(c.mean()) if c.size else math.nan,
        "std_ref": float(r.std(ddof=1)) if r.size > 1 else math.nan,
        "std_cur": float(c.std(ddof=1)) if c.size > 1 else math.nan,
        "drifted": bool(_target_fires(pvalue, cfg)),
    }


def _rms(x: NDArray[np.float64]) -> Any:
    return np.sqrt(np.mean(x * x, axis=-1))


def performance(
    errors_recent: ArrayLike,
    errors_reference: ArrayLike,
    hits_recent: ArrayLike,
    base_rate: float,
    config: DriftConfig | None = None,
) -> dict[str, Any]:
    """The numbers the two performance rules decide on.

    * ``errors_recent``: live prediction errors (actual - predicted), oldest first; NaNs (no
      prediction that day) are dropped and the last ``rmse_window`` remain. ``ma_rmse`` is
      their root mean square -- "the 3-day moving RMSE" -- and is NaN until that many exist.
    * ``errors_reference``: errors defining the reference level, normally the model's
      out-of-sample (walk-forward) errors from training, so the level is what the model was
      selected on rather than a level that drifts along with the degradation.
    * ``hits_recent``: ``evaluation.directional_hits`` per session, oldest first (1 hit, 0 miss,
      NaN no call); the last ``accuracy_window`` sessions form the window, and the accuracy is
      over calls in it. A verdict needs a full window and ``accuracy_min_calls`` calls.
    * ``base_rate``: share of up days in the reference period; the benchmark accuracy is
      ``max(base_rate, 1 - base_rate)``, what "always up" or "always down" would have scored.

    ``rmse_pvalue`` is the one-sided F-test of equal MSE (``ratio**2 ~ F(window, n_ref)`` for
    independent normal errors) and ``accuracy_pvalue`` the exact binomial probability of at
    most the observed hits if the true accuracy were the floor; both are only consulted by the
    guarded rules.
    """
    cfg = config or DriftConfig()
    w = cfg.rmse_window
    e_rec = _clean(errors_recent)
    e_ref = _clean(errors_reference)
    ma_rmse = float(_rms(e_rec[-w:])) if e_rec.size >= w else math.nan
    ref_rmse = float(_rms(e_ref)) if e_ref.size else math.nan
    if math.isnan(ma_rmse) or math.isnan(ref_rmse):
        ratio = math.nan
    elif ref_rmse == 0.0:
        ratio = math.inf if ma_rmse > 0.0 else math.nan
    else:
        ratio = ma_rmse / ref_rmse
    rmse_pvalue = (
        float(stats.f.sf(ratio * ratio, w, e_ref.size))
        if math.isfinite(ratio)
        else (0.0 if ratio == math.inf else math.nan)
    )

    aw = cfg.accuracy_window
    hits_all = np.asarray(hits_recent, dtype=np.float64).ravel()
    window = hits_all[-aw:]
    n_calls = int(np.isfinite(window).sum())
    n_hits = float(np.nansum(window))
    accuracy = n_hits / n_calls if n_calls else math.nan
    accuracy_pvalue = (
        float(stats.binom.cdf(n_hits, n_calls, cfg.accuracy_floor)) if n_calls else math.nan
    )
    b = float(base_rate)
    benchmark = max(b, 1.0 - b) if math.isfinite(b) else math.nan
    return {
        "rmse_window": w,
        "n_recent_errors": int(min(e_rec.size, w)),
        "ma_rmse": ma_rmse,
        "reference_rmse": ref_rmse,
        "n_reference": int(e_ref.size),
        "ratio": ratio,
        "rmse_pvalue": rmse_pvalue,
        "accuracy_window": aw,
        "window_sessions": int(window.size),
        "accuracy_window_full": bool(window.size >= aw),
        "n_calls": n_calls,
        "n_hits": int(n_hits),
        "accuracy": accuracy,
        "accuracy_pvalue": accuracy_pvalue,
        "base_rate": b,
        "benchmark_accuracy": benchmark,
        "floor": cfg.accuracy_floor,
    }


# --------------------------------------------------------------------------------------------
# Rules (vectorized: the sensor calls them on scalars, the simulation on arrays)
# --------------------------------------------------------------------------------------------


def _rmse_fires(ratio: Any, pvalue: Any, cfg: DriftConfig) -> NDArray[np.bool_]:
    fired = np.asarray(ratio, dtype=np.float64) > cfg.rmse_ratio_threshold
    if cfg.rmse_alpha is not None:
        fired = fired & (np.asarray(pvalue, dtype=np.float64) < cfg.rmse_alpha)
    return fired


def _accuracy_fires(
    accuracy: Any,
    n_calls: Any,
    window_full: Any,
    pvalue: Any,
    benchmark: Any,
    cfg: DriftConfig,
) -> NDArray[np.bool_]:
    acc = np.asarray(accuracy, dtype=np.float64)
    fired = (
        np.asarray(window_full, dtype=bool)
        & (np.asarray(n_calls) >= cfg.accuracy_min_calls)
        & (acc < cfg.accuracy_floor)
    )
    if cfg.accuracy_below_base_rate:
        fired = fired & (acc < np.asarray(benchmark, dtype=np.float64))
    if cfg.accuracy_alpha is not None:
        fired = fired & (np.asarray(pvalue, dtype=np.float64) < cfg.accuracy_alpha)
    return fired


def _data_fires(n_drifted: Any, cfg: DriftConfig) -> NDArray[np.bool_]:
    return np.asarray(n_drifted) >= cfg.data_min_features


def _target_fires(pvalue: Any, cfg: DriftConfig) -> NDArray[np.bool_]:
    return np.asarray(pvalue, dtype=np.float64) < cfg.target_alpha


# --------------------------------------------------------------------------------------------
# Triggers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """One rule's verdict, with the number it compared and why, for logs and the UI."""

    name: str
    fired: bool
    value: float
    threshold: float
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100.0 * x:.2f}%"


def _rmse_trigger(perf: Mapping[str, Any], cfg: DriftConfig) -> Trigger:
    ratio = float(perf["ratio"])
    thr = cfg.rmse_ratio_threshold
    w = cfg.rmse_window
    if math.isnan(ratio):
        return Trigger(
            "rmse_ratio",
            False,
            ratio,
            thr,
            f"Not evaluated: needs {w} live prediction errors and a reference level "
            f"(have {perf['n_recent_errors']} and {perf['n_reference']} reference errors).",
        )
    fired = bool(_rmse_fires(ratio, perf["rmse_pvalue"], cfg))
    text = (
        f"RMSE of the last {w} predictions is {_pct(perf['ma_rmse'])} against a reference of "
        f"{_pct(perf['reference_rmse'])}, a ratio of {ratio:.2f} "
        f"({'above' if ratio > thr else 'not above'} the threshold {thr:g})"
    )
    if cfg.rmse_alpha is not None:
        text += (
            f"; F-test p-value {perf['rmse_pvalue']:.3g} "
            f"({'below' if perf['rmse_pvalue'] < cfg.rmse_alpha else 'not below'} "
            f"{cfg.rmse_alpha:g})"
        )
    return Trigger("rmse_ratio", fired, ratio, thr, text + ("." if not fired else ": fired."))


def _accuracy_trigger(perf: Mapping[str, Any], cfg: DriftConfig) -> Trigger:
    acc = float(perf["accuracy"])
    floor = cfg.accuracy_floor
    aw = cfg.accuracy_window
    if not perf["accuracy_window_full"] or perf["n_calls"] < cfg.accuracy_min_calls:
        return Trigger(
            "accuracy_floor",
            False,
            acc,
            floor,
            f"Not evaluated: needs {aw} sessions with at least {cfg.accuracy_min_calls} "
            f"directional calls (have {perf['window_sessions']} sessions, "
            f"{perf['n_calls']} calls).",
        )
    fired = bool(
        _accuracy_fires(
            acc,
            perf["n_calls"],
            perf["accuracy_window_full"],
            perf["accuracy_pvalue"],
            perf["benchmark_accuracy"],
            cfg,
        )
    )
    text = (
        f"Directional accuracy over the last {aw} sessions is {_pct(acc)} "
        f"({perf['n_hits']} of {perf['n_calls']} calls), "
        f"{'below' if acc < floor else 'not below'} the floor {_pct(floor)}"
    )
    if cfg.accuracy_below_base_rate:
        bench = float(perf["benchmark_accuracy"])
        text += (
            f"; {'below' if acc < bench else 'not below'} the "
            f"{_pct(bench)} that always calling the reference period's majority direction scores"
        )
    if cfg.accuracy_alpha is not None:
        p = float(perf["accuracy_pvalue"])
        text += (
            f"; binomial p-value {p:.3g} for a true accuracy at the floor "
            f"({'below' if p < cfg.accuracy_alpha else 'not below'} {cfg.accuracy_alpha:g})"
        )
    return Trigger("accuracy_floor", fired, acc, floor, text + ("." if not fired else ": fired."))


def _data_trigger(frame: pl.DataFrame, cfg: DriftConfig) -> Trigger:
    k = cfg.data_min_features
    if frame.height == 0:
        return Trigger("data_drift", False, math.nan, float(k), "Not evaluated: no features.")
    _, flags = _drifted_flags(
        frame.get_column("ks_pvalue").to_numpy().astype(np.float64),
        frame.get_column("ks_pvalue_effective").to_numpy().astype(np.float64),
        frame.get_column("psi").to_numpy().astype(np.float64),
        cfg,
    )
    names = [n for n, f in zip(frame.get_column("feature").to_list(), flags, strict=True) if f]
    n_drifted = len(names)
    fired = bool(_data_fires(n_drifted, cfg))
    if cfg.data_method == "ks":
        rule = (
            f"KS p-value{' at effective sample sizes' if cfg.data_autocorr_adjust else ''} "
            f"below {cfg.data_alpha:g} after a Holm correction over {frame.height} features"
        )
    else:
        rule = f"PSI above {cfg.psi_threshold:g}"
    listed = ", ".join(names[:10]) + (", ..." if n_drifted > 10 else "")
    text = (
        f"{n_drifted} of {frame.height} features drifted ({rule})"
        + (f": {listed}" if names else "")
        + f"; the rule needs at least {k}"
        + (": fired." if fired else ".")
    )
    return Trigger("data_drift", fired, float(n_drifted), float(k), text)


def _target_trigger(td: Mapping[str, Any], cfg: DriftConfig) -> Trigger:
    p = float(td["ks_pvalue"])
    alpha = cfg.target_alpha
    if math.isnan(p):
        return Trigger("target_drift", False, p, alpha, "Not evaluated: no realized returns.")
    fired = bool(_target_fires(p, cfg))
    text = (
        f"KS test of the last {td['n_cur']} realized returns against {td['n_ref']} reference "
        f"returns: p-value {p:.3g} ({'below' if fired else 'not below'} {alpha:g}); "
        f"standard deviation {_pct(td['std_cur'])} against {_pct(td['std_ref'])}"
        + (": fired." if fired else ".")
    )
    return Trigger("target_drift", fired, p, alpha, text)


def evaluate_triggers(
    report_parts: Mapping[str, Any], config: DriftConfig | None = None
) -> list[Trigger]:
    """All four triggers, in ``TRIGGER_NAMES`` order, from the parts of a monitoring report.

    ``report_parts`` may hold ``"performance"`` (from ``performance``), ``"feature_drift"``
    (the frame from ``feature_drift``, or its rows as dicts) and ``"target_drift"`` (from
    ``target_drift``). A missing part yields a not-fired trigger that says so, so a partial
    report never raises a false alarm. Per-feature flags are recomputed with ``config``, which
    is therefore the single source of truth even if the frame was built with another one.
    """
    cfg = config or DriftConfig()
    unknown = sorted(set(report_parts) - set(REPORT_PARTS))
    if unknown:
        raise ValueError(f"unknown report parts {unknown}; expected some of {REPORT_PARTS}")
    out: list[Trigger] = []
    perf = report_parts.get("performance")
    if perf is None:
        out.append(Trigger("rmse_ratio", False, math.nan, cfg.rmse_ratio_threshold, _NO_PERF))
        out.append(Trigger("accuracy_floor", False, math.nan, cfg.accuracy_floor, _NO_PERF))
    else:
        out.append(_rmse_trigger(perf, cfg))
        out.append(_accuracy_trigger(perf, cfg))
    fd = report_parts.get("feature_drift")
    if fd is None:
        out.append(
            Trigger(
                "data_drift",
                False,
                math.nan,
                float(cfg.data_min_features),
                "Not evaluated: no feature drift in the report.",
            )
        )
    else:
        frame = fd if isinstance(fd, pl.DataFrame) else pl.DataFrame(list(fd))
        out.append(_data_trigger(frame, cfg))
    td = report_parts.get("target_drift")
    if td is None:
        out.append(
            Trigger(
                "target_drift",
                False,
                math.nan,
                cfg.target_alpha,
                "Not evaluated: no target drift in the report.",
            )
        )
    else:
        out.append(_target_trigger(td, cfg))
    return out


_NO_PERF = "Not evaluated: no performance figures in the report."


def any_fired(triggers: Sequence[Trigger]) -> bool:
    return any(t.fired for t in triggers)


def cooldown_active(days_since_last_firing: int | None, cooldown_days: int) -> bool:
    """Whether a firing now would be suppressed.

    ``days_since_last_firing`` counts trading days (1 = the previous session); None means
    never fired. The same rule as ``apply_cooldown``: a firing on day t blocks t+1 .. t+c.
    """
    return days_since_last_firing is not None and days_since_last_firing <= cooldown_days


def _cooldown_rows(fired: NDArray[np.bool_], cooldown_days: int) -> NDArray[np.bool_]:
    f = np.asarray(fired, dtype=bool)
    out = np.zeros(f.shape, dtype=bool)
    last = np.full(f.shape[0], -(10**9), dtype=np.int64)
    for j in range(f.shape[1]):
        ok = f[:, j] & (j - last > cooldown_days)
        out[:, j] = ok
        last = np.where(ok, j, last)
    return out


def apply_cooldown(fired: ArrayLike, cooldown_days: int) -> NDArray[np.bool_]:
    """Firings that survive a cooldown, for a day-by-day sequence of raw verdicts.

    A re-optimization takes time to show in the errors, and the rules look back over windows
    that still contain the bad days, so without a cooldown one episode fires day after day.
    """
    f = np.asarray(fired, dtype=bool).ravel()
    if cooldown_days < 0:
        raise ValueError("cooldown_days must be >= 0")
    return _cooldown_rows(f[None, :], cooldown_days)[0]


# --------------------------------------------------------------------------------------------
# False-alarm simulation
# --------------------------------------------------------------------------------------------

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
        return sd * _standard_t(rng, _IID_T_DF, (n_sims, n_total))
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


def _window_at(x: NDArray[Any], days: NDArray[np.int64], w: int) -> NDArray[Any]:
    """(S, D, w) copies of the windows (t - w, t] of x (S, T) for each monitored day t."""
    return np.ascontiguousarray(sliding_window_view(x, w, axis=1)[:, days - w + 1, :])


def _ks_h(
    ref: NDArray[np.float64], series: NDArray[np.float64], days: NDArray[np.int64], n: int
) -> NDArray[np.int64]:
    """KS statistics times lcm(m, n), as exact integers, of each reference (S, m) against the
    windows (t - n, t] of ``series`` (S, T) for every monitored day t.

    Between two consecutive window points the window's ECDF is flat and the reference's is
    monotone, so the supremum is reached at a window point, either at it or just before it;
    both sides are evaluated, which reproduces scipy's statistic for continuous data. The
    reference counts are computed once per series value and gathered per window, since
    windows overlap; sorting the counts sorts the points, counts being monotone in the value.
    """
    n_sims, m = ref.shape
    lcm = math.lcm(m, n)
    ref_sorted = np.sort(ref, axis=1)
    right = np.stack(
        [np.searchsorted(ref_sorted[s], series[s], side="right") for s in range(n_sims)]
    ).astype(np.int64)
    left = np.stack(
        [np.searchsorted(ref_sorted[s], series[s], side="left") for s in range(n_sims)]
    ).astype(np.int64)
    right_w = np.sort(_window_at(right, days, n), axis=-1)
    left_w = np.sort(_window_at(left, days, n), axis=-1)
    i = np.arange(1, n + 1, dtype=np.int64)
    a, b = lcm // m, lcm // n
    d = np.maximum(np.abs(right_w * a - i * b), np.abs(left_w * a - (i - 1) * b))
    return np.asarray(d.max(axis=-1))


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
    """scipy's exact KS p-values for the statistics ``h`` from ``_ks_h``.

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
    """``_kstwo_sf(h / lcm, en[s])`` for statistics ``h`` (S, D) and sizes ``en`` (S,)."""
    out = np.ones(h.shape)
    for e in np.unique(en).tolist():
        rows = en == e

        def pvalue_of(hv: int, _flat_index: int, e: int = e) -> float:
            return _kstwo_sf(hv / lcm, e)

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
        e = _psi_edges(ref[s], bins)
        p_ref = _bin_props(ref[s], e)
        for j, t in enumerate(days.tolist()):
            out[s, j] = _psi_from_props(p_ref, _bin_props(series[s, t - n + 1 : t + 1], e), PSI_EPS)
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
        out[regular] = _psi_from_props(p_ref[:, None, :], p_cur, PSI_EPS)
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
        h = _ks_h(ref_f, series, days, n)
        p_exact[:, :, f] = _exact_pvalues(h, ref_f, series, days, n, alpha_exact)
        en = np.array([_effective_en(m, n, lag1_autocorr(ref_f[s])) for s in range(n_sims)])
        p_eff[:, :, f] = _effective_pvalues(h, lcm, en, alpha_eff)
        for bins, out in psi_out.items():
            out[:, :, f] = _psi_windows(ref_f, series, days, n, bins)
    ref_r = np.ascontiguousarray(r[:, ref])
    h_target = _ks_h(ref_r, r, days, n)
    p_target = _exact_pvalues(h_target, ref_r, r, days, n, alpha_target)
    return _DriftStats(p_exact=p_exact, p_eff=p_eff, psi=psi_out, p_target=p_target)


def _drift_fired(cfg: DriftConfig, ds: _DriftStats) -> dict[str, NDArray[np.bool_]]:
    nan_psi = np.full(ds.p_exact.shape, np.nan)
    psi_v = ds.psi.get(cfg.psi_bins, nan_psi) if cfg.data_method == "psi" else nan_psi
    _, flags = _drifted_flags(ds.p_exact, ds.p_eff, psi_v, cfg)
    k = _SIM_N_LAG_FEATURES
    _, flags_lags = _drifted_flags(ds.p_exact[..., :k], ds.p_eff[..., :k], psi_v[..., :k], cfg)
    return {
        "data_drift": _data_fires(flags.sum(axis=-1), cfg),
        "target_drift": _target_fires(ds.p_target, cfg),
        "data_drift_lag_features": _data_fires(flags_lags.sum(axis=-1), cfg),
    }


def _performance_fired(
    cfg: DriftConfig, paths: _SimPaths, pred: NDArray[np.float64]
) -> dict[str, NDArray[np.bool_]]:
    """The two performance rules on every monitored day, with ``performance``'s arithmetic."""
    r, days = paths.returns, paths.days
    ref = slice(paths.ref_start, paths.ref_stop)
    n_sims, m = r.shape[0], paths.ref_stop - paths.ref_start
    e = r - pred
    ref_rmse = np.array([float(_rms(e[s, ref])) for s in range(n_sims)])
    w = cfg.rmse_window
    ratio = _rms(_window_at(e, days, w)) / ref_rmse[:, None]
    rmse_p = stats.f.sf(ratio * ratio, w, m)

    aw = cfg.accuracy_window
    hits = _window_at(directional_hits(r, pred), days, aw)
    n_calls = np.isfinite(hits).sum(axis=-1)
    n_hits = np.nansum(hits, axis=-1)
    acc = np.divide(n_hits, n_calls, out=np.full(n_hits.shape, np.nan), where=n_calls > 0)
    acc_p = stats.binom.cdf(n_hits, n_calls, cfg.accuracy_floor)
    base = np.array([base_rate_up(r[s, ref]) for s in range(n_sims)])
    bench = np.maximum(base, 1.0 - base)[:, None]
    return {
        "rmse_ratio": _rmse_fires(ratio, rmse_p, cfg),
        "accuracy_floor": _accuracy_fires(acc, n_calls, True, acc_p, bench, cfg),
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
        kept = int(_cooldown_rows(f, cooldown_days).sum())
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
