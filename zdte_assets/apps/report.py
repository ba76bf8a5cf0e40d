"""The replay report: forecast metrics against naive baselines, trading results, plots.

Pure functions over the per-day table the replay collects (no Dagster): a reader can recompute
every figure in `report.json` from `predictions.parquet`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from zdte_assets.apps import plots
from zdte_assets.evaluation import metrics as evaluation
from zdte_assets.features.volatility import SessionForecast
from zdte_assets.storage import store as storage
from zdte_assets.trading import pricing
from zdte_assets.trading.pricing import DecisionConfig

#: Columns of predictions.parquet, one row per replayed session.
DAY_COLUMNS = {
    "date": pl.Date,
    "open": pl.Float64,
    "close": pl.Float64,
    "prev_close": pl.Float64,
    "realized_return": pl.Float64,
    "predicted_return": pl.Float64,
    "predicted_close": pl.Float64,
    "p_up": pl.Float64,
    "interval_low": pl.Float64,
    "interval_high": pl.Float64,
    "action": pl.String,
    "option": pl.String,
    "strike": pl.Float64,
    "premium": pl.Float64,
    "contracts": pl.Int64,
    "cost_per_share": pl.Float64,
    "cost_usd": pl.Float64,
    "expected_value_usd": pl.Float64,
    "pnl": pl.Float64,
    "pit": pl.Float64,
    "log_score": pl.Float64,
    "z": pl.Float64,
    "in_interval_50": pl.Boolean,
    "in_interval": pl.Boolean,
    "gate_open": pl.Boolean,
    "gate_n": pl.Int64,
    "scale": pl.Float64,
    "df": pl.Float64,
    "strike_increment": pl.Float64,
    "expiry_today": pl.Boolean,
    "gate_dm_pvalue": pl.Float64,
    "gate_pt_pvalue": pl.Float64,
    "reason": pl.String,
    "reason_code": pl.String,
    "model_version": pl.String,
    "beats_naive": pl.Boolean,
    "drift_fired": pl.String,
    "reoptimized": pl.Boolean,
}


def compute_metrics(days: pl.DataFrame) -> dict[str, Any]:
    """Model vs naive (return 0) vs previous close; direction vs base rate; DM and PT tests."""
    actual = days["realized_return"].to_numpy()
    pred = days["predicted_return"].to_numpy()
    model = evaluation.forecast_metrics(actual, pred)
    naive_err = actual - 0.0
    prev = days["prev_close"].to_numpy()
    opens = days["open"].to_numpy()
    prev_pred = np.log(prev / opens)
    prev_err = actual - prev_pred
    dm_stat, dm_p = evaluation.diebold_mariano(actual - pred, naive_err)
    pt_stat, pt_p = evaluation.pesaran_timmermann(actual, pred)
    naive_rmse = float(np.sqrt(np.mean(naive_err**2)))
    return {
        "model": {
            "rmse": model["rmse"],
            "mae": model["mae"],
            "directional_accuracy": model["directional_accuracy"],
            "directional_calls": model["n_calls"],
            "brier": evaluation.brier_score(days["p_up"].to_numpy(), actual),
        },
        "naive": {"rmse": naive_rmse, "mae": float(np.mean(np.abs(naive_err)))},
        "prev_close": {
            "rmse": float(np.sqrt(np.nanmean(prev_err**2))),
            "mae": float(np.nanmean(np.abs(prev_err))),
        },
        "base_rate_up": evaluation.base_rate_up(actual),
        "rmse_ratio": model["rmse"] / naive_rmse if naive_rmse > 0 else None,
        "dm_stat": dm_stat,
        "dm_pvalue": dm_p,
        "pt_stat": pt_stat,
        "pt_pvalue": pt_p,
        "calibration": calibration_metrics(days),
    }


#: Up-days before a session that its trailing base rate is computed from.
BASE_RATE_WINDOW = 250


def trailing_base_rate(up: np.ndarray, window: int = BASE_RATE_WINDOW) -> np.ndarray:
    """For each day, the share of up days among the `window` days before it (0.5 for the first):
    the probability forecast that knows nothing but the past frequency."""
    out = np.full(up.shape, 0.5)
    for i in range(1, up.size):
        out[i] = float(np.mean(up[max(0, i - window) : i]))
    return out


def calibration_metrics(days: pl.DataFrame) -> dict[str, Any]:
    """How honest the predictive distribution was: interval coverage, PIT, scores.

    A calibrated forecast covers 50% and 90% of days with its central intervals, has a flat PIT
    histogram (10 equal counts) and a mean squared standardized error of 1; the Brier score of
    ``p_up`` must beat the trailing base rate's to say anything about direction.
    """
    actual = days["realized_return"].to_numpy()
    up = (actual > 0.0).astype(np.float64)
    pit = days["pit"].drop_nulls().to_numpy()
    z = days["z"].drop_nulls().to_numpy()
    counts = np.histogram(pit, bins=10, range=(0.0, 1.0))[0] if pit.size else np.zeros(10)
    n = days.height
    return {
        "n": n,
        "coverage_50": float(days["in_interval_50"].mean()) if n else None,  # type: ignore[arg-type]
        "coverage_90": float(days["in_interval"].mean()) if n else None,  # type: ignore[arg-type]
        "pit_counts": [int(c) for c in counts],
        "z2_mean": float(np.mean(z**2)) if z.size else None,
        "brier": evaluation.brier_score(days["p_up"].to_numpy(), actual),
        "brier_base": evaluation.brier_score(trailing_base_rate(up), actual) if n else None,
        "log_score": float(days["log_score"].mean()) if n else None,  # type: ignore[arg-type]
    }


def straddle_control(days: pl.DataFrame, config: DecisionConfig | None = None) -> dict[str, Any]:
    """The control a trader would run: buy one at-the-money straddle (call and put at the strike
    nearest the open) on every day with a same-day expiry, priced and charged exactly as the
    decision prices options. Without a forecast it loses the volatility premium and the costs,
    which is the bar the forecast-driven trades must clear."""
    cfg = config or DecisionConfig()
    m = cfg.contract_multiplier
    pnls = []
    for row in days.filter(pl.col("expiry_today")).iter_rows(named=True):
        spot, close, inc = row["open"], row["close"], row["strike_increment"]
        strike = math.floor(spot / inc + 0.5) * inc
        market = pricing.market_forecast(SessionForecast(0.0, row["scale"], row["df"]), cfg)
        cost = 0.0
        for kind in ("call", "put"):
            price = market.expected_payoff(kind, strike, spot)
            cost += price + cfg.half_spread(price) + cfg.commission / m
        pnls.append((abs(close - strike) - cost) * m)
    arr = np.asarray(pnls)
    return {
        "days": int(arr.size),
        "pnl_total": float(arr.sum()),
        "hit_rate": float(np.mean(arr > 0)) if arr.size else None,
    }


def trading_summary(days: pl.DataFrame) -> dict[str, Any]:
    """Trades against their own promise: expected value at the open next to realized P&L; a hit
    is a trade whose payoff at the close exceeded the price paid (premium, spread, commission)."""
    trades = days.filter(pl.col("action") != "NO_TRADE")
    pnl = trades["pnl"].to_numpy()
    hit_rate = float(np.mean(pnl > 0)) if pnl.size else None
    return {
        "trades": trades.height,
        "calls": int((trades["action"] == "CALL").sum()),
        "puts": int((trades["action"] == "PUT").sum()),
        "no_trade_days": days.height - trades.height,
        "pnl_total": float(days["pnl"].sum()),
        "expected_value_total": float(trades["expected_value_usd"].sum()),
        "cost_total": float(trades["cost_usd"].sum()),
        "hit_rate": hit_rate,
        "hit_rate_vs_price_paid": hit_rate,
        "controls": {"atm_straddle_every_expiry": straddle_control(days)},
        "per_trade": [
            {
                "date": r["date"].isoformat(),
                "action": r["action"],
                "strike": r["strike"],
                "contracts": r["contracts"],
                "cost_usd": r["cost_usd"],
                "expected_value_usd": r["expected_value_usd"],
                "pnl_usd": r["pnl"],
            }
            for r in trades.iter_rows(named=True)
        ],
        "no_trade_reasons": dict(
            days.filter(pl.col("action") == "NO_TRADE")
            .group_by("reason_code")
            .len()
            .sort("reason_code")
            .iter_rows()
        ),
    }


def rolling_accuracy(days: pl.DataFrame, window: int = 20, min_calls: int = 5) -> pl.Series:
    """Hits over calls in a trailing window of days; null where fewer than `min_calls` calls
    (a day without a call is not a miss, and must not blank the whole window either)."""
    hits = evaluation.directional_hits(
        days["realized_return"].to_numpy(), days["predicted_return"].to_numpy()
    )
    calls = pl.Series(np.isfinite(hits).astype(np.float64))
    scored = pl.Series(np.nan_to_num(hits, nan=0.0))
    n = calls.rolling_sum(window_size=window, min_samples=1)
    acc = scored.rolling_sum(window_size=window, min_samples=1) / n
    return pl.select(pl.when(n >= min_calls).then(acc).otherwise(None)).to_series()


def write_plots(
    days: pl.DataFrame, out: Path, reopt_days: list[Any], pit_counts: list[int]
) -> list[str]:
    """The report's PNGs; `pit_counts` are those of `calibration_metrics`, computed once."""
    dates = days["date"].to_list()
    files = [
        plots.line_chart(
            dates,
            {"cumulative P&L (USD)": days["pnl"].cum_sum().to_list()},
            out / "cumulative_pnl.png",
            "USD",
            "Cumulative P&L of the recommended trades",
        ),
        plots.predicted_vs_actual(
            days["realized_return"].to_list(),
            days["predicted_return"].to_list(),
            out / "predicted_vs_realized.png",
            "Predicted vs realized open-to-close return",
        ),
    ]
    files.append(
        plots.line_chart(
            dates,
            {
                "rolling 20-day directional accuracy": rolling_accuracy(days).to_list(),
                "55% floor": [0.55] * len(dates),
            },
            out / "rolling_accuracy.png",
            "accuracy",
            "Directional accuracy (calls only; gaps: fewer than 5 calls in 20 days)",
        )
    )
    fired = days["drift_fired"].to_list()
    names = sorted({name for f in fired if f for name in f.split(",")})
    files.append(
        plots.event_timeline(
            dates,
            {name: [bool(f) and name in f.split(",") for f in fired] for name in names},
            out / "drift_timeline.png",
            "Drift triggers that fired (red lines: re-optimizations)",
            markers=reopt_days,
        )
    )
    files.append(
        plots.pit_histogram(
            pit_counts,
            out / "pit_histogram.png",
            "Calibration: PIT of the realized return",
        )
    )
    return [f.name for f in files]


def _trade_table(trades: list[dict[str, Any]]) -> list[str]:
    if not trades:
        return []
    lines = [
        "| date | trade | contracts | cost (USD) | expected value (USD) | P&L (USD) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for tr in trades:
        lines.append(
            f"| {tr['date']} | {tr['action']} {tr['strike']:g} | {tr['contracts']} | "
            f"{tr['cost_usd']:.2f} | {tr['expected_value_usd']:+.2f} | {tr['pnl_usd']:+.2f} |"
        )
    return [*lines, ""]


def markdown(report: dict[str, Any]) -> str:
    m, t, lc = report["metrics"], report["trading"], report["lifecycle"]
    c = m["calibration"]
    ctl = t["controls"]["atm_straddle_every_expiry"]

    def f(x: Any, fmt: str = ".4g") -> str:
        return "n/a" if x is None else format(x, fmt)

    lines = [
        f"# zdte replay: {report['ticker']} {report['start']} to {report['end']}",
        "",
        f"{report['trading_days']} trading days replayed through the Dagster definitions "
        f"(source: {report['source']}).",
        "",
        "## Forecast",
        "",
        "| forecast of the open-to-close log return | RMSE | MAE |",
        "|---|---:|---:|",
        f"| model | {f(m['model']['rmse'])} | {f(m['model']['mae'])} |",
        f"| naive (return 0, close = open) | {f(m['naive']['rmse'])} | {f(m['naive']['mae'])} |",
        f"| previous close | {f(m['prev_close']['rmse'])} | {f(m['prev_close']['mae'])} |",
        "",
        f"- RMSE ratio model / naive: **{f(m['rmse_ratio'])}**; Diebold-Mariano (HLN) p-value "
        f"against naive: {f(m['dm_pvalue'])}",
        f"- Directional accuracy {f(m['model']['directional_accuracy'], '.1%')} over "
        f"{m['model']['directional_calls']:.0f} calls; up-day base rate {f(m['base_rate_up'], '.1%')}; "
        f"Pesaran-Timmermann p-value {f(m['pt_pvalue'])}",
        f"- Brier score of P(close > open): {f(m['model']['brier'])} (0.25 = a coin)",
        "",
        "## Calibration of the predictive distribution",
        "",
        f"- Coverage of the central 50% interval: {f(c['coverage_50'], '.1%')}; of the 90% "
        f"interval: {f(c['coverage_90'], '.1%')}",
        f"- Mean squared standardized error: {f(c['z2_mean'])} (1 when the spread is right)",
        f"- PIT counts in ten bins (flat when calibrated): {c['pit_counts']}",
        f"- Brier score of P(close > open): {f(c['brier'])}; of the trailing base rate: "
        f"{f(c['brier_base'])}; mean log score {f(c['log_score'])}",
        "",
        "## Trading",
        "",
        f"- Trades: {t['trades']} ({t['calls']} calls, {t['puts']} puts); no-trade days: {t['no_trade_days']}",
        f"- P&L: {t['pnl_total']:.2f} USD against an expected value at the open of "
        f"{t['expected_value_total']:.2f} USD; hit rate against the price paid "
        f"{f(t['hit_rate_vs_price_paid'], '.1%')}",
        f"- Control, one at-the-money straddle on each of {ctl['days']} expiry days: "
        f"{ctl['pnl_total']:.2f} USD, hit rate {f(ctl['hit_rate'], '.1%')}",
        "- No-trade reasons: "
        + (", ".join(f"{k} ({v})" for k, v in t["no_trade_reasons"].items()) or "none"),
        "",
        *_trade_table(t["per_trade"]),
        "## Lifecycle",
        "",
        f"- Weekly optimizations: {lc['weekly_optimizations']}; re-optimizations triggered by drift: "
        f"{lc['reoptimizations_triggered']}; models trained: {lc['models_trained']}",
        f"- Wall time {report['timing']['wall_seconds']:.1f} s, CPU {report['timing']['compute_seconds']:.1f} s",
        "",
        "Plots: " + ", ".join(f"[{p}]({p})" for p in report["plots"]),
        "",
    ]
    return "\n".join(lines)


def clean(report: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf (e.g. a p-value with too few days) become null so report.json is strict JSON."""
    return dict(storage.json_safe(report))
