"""Re-optimization triggers: the four rules, their verdicts and why each fired or not.

A trigger that fires on unchanged data wastes a re-optimization and, worse, teaches people to
ignore it. The original rules ("3-day RMSE up 20% on its reference level", "directional
accuracy below 55%") are the defaults because they are the specified behaviour, but each comes
with optional guards (``DriftConfig.guarded()``), and ``false_alarms`` measures every variant on
data where nothing changes.

The rule functions (``*_fires``) are vectorized: the report applies them to one day's scalars,
the false-alarm simulation to arrays of every simulated day, so the measured rates are the
rates of the code that runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from zdte_assets.core.records import Trigger
from zdte_assets.monitoring.config import DriftConfig
from zdte_assets.monitoring.statistics import holm_adjust

__all__ = [
    "REPORT_PARTS",
    "TRIGGER_NAMES",
    "Trigger",
    "accuracy_fires",
    "any_fired",
    "data_fires",
    "drifted_flags",
    "evaluate_triggers",
    "rmse_fires",
    "target_fires",
]

TRIGGER_NAMES: tuple[str, ...] = ("rmse_ratio", "accuracy_floor", "data_drift", "target_drift")
#: Keys ``evaluate_triggers`` accepts in its ``report_parts``.
REPORT_PARTS: tuple[str, ...] = ("performance", "feature_drift", "target_drift")


# --- rules (vectorized) ----------------------------------------------------------------------


def drifted_flags(
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


def rmse_fires(ratio: Any, pvalue: Any, cfg: DriftConfig) -> NDArray[np.bool_]:
    fired = np.asarray(ratio, dtype=np.float64) > cfg.rmse_ratio_threshold
    if cfg.rmse_alpha is not None:
        fired = fired & (np.asarray(pvalue, dtype=np.float64) < cfg.rmse_alpha)
    return fired


def accuracy_fires(
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


def data_fires(n_drifted: Any, cfg: DriftConfig) -> NDArray[np.bool_]:
    return np.asarray(n_drifted) >= cfg.data_min_features


def target_fires(pvalue: Any, cfg: DriftConfig) -> NDArray[np.bool_]:
    return np.asarray(pvalue, dtype=np.float64) < cfg.target_alpha


# --- verdicts --------------------------------------------------------------------------------


def _verdict(name: str, fired: bool, value: float, threshold: float, explanation: str) -> Trigger:
    return Trigger(
        name=name, fired=fired, value=value, threshold=threshold, explanation=explanation
    )


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100.0 * x:.2f}%"


def _rmse_trigger(perf: Mapping[str, Any], cfg: DriftConfig) -> Trigger:
    ratio = float(perf["ratio"])
    thr = cfg.rmse_ratio_threshold
    w = cfg.rmse_window
    if math.isnan(ratio):
        return _verdict(
            "rmse_ratio",
            False,
            ratio,
            thr,
            f"Not evaluated: needs {w} live prediction errors and a reference level "
            f"(have {perf['n_recent_errors']} and {perf['n_reference']} reference errors).",
        )
    fired = bool(rmse_fires(ratio, perf["rmse_pvalue"], cfg))
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
    return _verdict("rmse_ratio", fired, ratio, thr, text + ("." if not fired else ": fired."))


def _accuracy_trigger(perf: Mapping[str, Any], cfg: DriftConfig) -> Trigger:
    acc = float(perf["accuracy"])
    floor = cfg.accuracy_floor
    aw = cfg.accuracy_window
    if not perf["accuracy_window_full"] or perf["n_calls"] < cfg.accuracy_min_calls:
        return _verdict(
            "accuracy_floor",
            False,
            acc,
            floor,
            f"Not evaluated: needs {aw} sessions with at least {cfg.accuracy_min_calls} "
            f"directional calls (have {perf['window_sessions']} sessions, "
            f"{perf['n_calls']} calls).",
        )
    fired = bool(
        accuracy_fires(
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
    return _verdict("accuracy_floor", fired, acc, floor, text + ("." if not fired else ": fired."))


def _data_trigger(frame: pl.DataFrame, cfg: DriftConfig) -> Trigger:
    k = cfg.data_min_features
    if frame.height == 0:
        return _verdict("data_drift", False, math.nan, float(k), "Not evaluated: no features.")
    _, flags = drifted_flags(
        frame.get_column("ks_pvalue").to_numpy().astype(np.float64),
        frame.get_column("ks_pvalue_effective").to_numpy().astype(np.float64),
        frame.get_column("psi").to_numpy().astype(np.float64),
        cfg,
    )
    names = [n for n, f in zip(frame.get_column("feature").to_list(), flags, strict=True) if f]
    n_drifted = len(names)
    fired = bool(data_fires(n_drifted, cfg))
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
    return _verdict("data_drift", fired, float(n_drifted), float(k), text)


def _target_trigger(td: Mapping[str, Any], cfg: DriftConfig) -> Trigger:
    p = float(td["ks_pvalue"])
    alpha = cfg.target_alpha
    if math.isnan(p):
        return _verdict("target_drift", False, p, alpha, "Not evaluated: no realized returns.")
    fired = bool(target_fires(p, cfg))
    text = (
        f"KS test of the last {td['n_cur']} realized returns against {td['n_ref']} reference "
        f"returns: p-value {p:.3g} ({'below' if fired else 'not below'} {alpha:g}); "
        f"standard deviation {_pct(td['std_cur'])} against {_pct(td['std_ref'])}"
        + (": fired." if fired else ".")
    )
    return _verdict("target_drift", fired, p, alpha, text)


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
        out.append(_verdict("rmse_ratio", False, math.nan, cfg.rmse_ratio_threshold, _NO_PERF))
        out.append(_verdict("accuracy_floor", False, math.nan, cfg.accuracy_floor, _NO_PERF))
    else:
        out.append(_rmse_trigger(perf, cfg))
        out.append(_accuracy_trigger(perf, cfg))
    fd = report_parts.get("feature_drift")
    if fd is None:
        out.append(
            _verdict(
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
            _verdict(
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
