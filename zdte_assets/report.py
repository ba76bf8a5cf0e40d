"""The replay report: forecast metrics against naive baselines, trading results, plots.

Pure functions over the per-day table the replay collects (no Dagster): a reader can recompute
every figure in `report.json` from `predictions.parquet`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from zdte_assets import evaluation, plots, storage

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
    "pnl": pl.Float64,
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
    }


def trading_summary(days: pl.DataFrame) -> dict[str, Any]:
    trades = days.filter(pl.col("action") != "NO_TRADE")
    pnl = trades["pnl"].to_numpy()
    return {
        "trades": trades.height,
        "calls": int((trades["action"] == "CALL").sum()),
        "puts": int((trades["action"] == "PUT").sum()),
        "no_trade_days": days.height - trades.height,
        "pnl_total": float(days["pnl"].sum()),
        "hit_rate": float(np.mean(pnl > 0)) if pnl.size else None,
        "no_trade_reasons": dict(
            days.filter(pl.col("action") == "NO_TRADE")
            .group_by("reason_code")
            .len()
            .sort("reason_code")
            .iter_rows()
        ),
    }


def write_plots(days: pl.DataFrame, out: Path, reopt_days: list[Any]) -> list[str]:
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
    hits = evaluation.directional_hits(
        days["realized_return"].to_numpy(), days["predicted_return"].to_numpy()
    )
    rolling = pl.Series(hits).rolling_mean(window_size=20, min_samples=5).to_list()
    files.append(
        plots.line_chart(
            dates,
            {"rolling 20-day directional accuracy": rolling, "55% floor": [0.55] * len(dates)},
            out / "rolling_accuracy.png",
            "accuracy",
            "Directional accuracy (calls only)",
        )
    )
    fired = [1.0 if f else 0.0 for f in days["drift_fired"].to_list()]
    files.append(
        plots.line_chart(
            dates,
            {"drift trigger fired": fired},
            out / "drift_timeline.png",
            "fired",
            "Drift triggers (lines: re-optimizations)",
            markers=reopt_days,
        )
    )
    return [f.name for f in files]


def markdown(report: dict[str, Any]) -> str:
    m, t, lc = report["metrics"], report["trading"], report["lifecycle"]

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
        f"{m['model']['directional_calls']} calls; up-day base rate {f(m['base_rate_up'], '.1%')}; "
        f"Pesaran-Timmermann p-value {f(m['pt_pvalue'])}",
        f"- Brier score of P(close > open): {f(m['model']['brier'])} (0.25 = a coin)",
        "",
        "## Trading",
        "",
        f"- Trades: {t['trades']} ({t['calls']} calls, {t['puts']} puts); no-trade days: {t['no_trade_days']}",
        f"- P&L: {t['pnl_total']:.2f} USD; hit rate {f(t['hit_rate'], '.1%')}",
        "- No-trade reasons: "
        + (", ".join(f"{k} ({v})" for k, v in t["no_trade_reasons"].items()) or "none"),
        "",
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
