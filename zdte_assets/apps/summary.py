"""What a replay prints when it ends: its figures, where the time went, the last stored rows.

Kept apart from the command line's parsing so `zdte demo` and `zdte replay` share one summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zdte_assets.core import calendar


def print_last_days(storage_url: Path, ticker: str, last: Any) -> None:
    """The last sessions' bars and feature rows as stored, so a newcomer sees real data."""
    import polars as pl

    from zdte_assets.storage import store as storage
    from zdte_assets.storage.keys import asset_value_key

    store = storage.store_from_url(str(storage_url))
    days = [calendar.previous_trading_day(last, n) for n in range(2, 0, -1)] + [last]

    def frames(asset: str) -> pl.DataFrame:
        keys = (asset_value_key(ticker, asset, d.isoformat(), "parquet") for d in days)
        return pl.concat(storage.read_parquet(store, k) for k in keys)

    bars, feats = frames("daily_bar"), frames("features")
    with pl.Config(
        tbl_cols=9, float_precision=4, tbl_width_chars=120, tbl_hide_dataframe_shape=True
    ):
        print(f"last bars and feature rows ({store.url(ticker)}/):")
        print(bars.drop("adj_close", strict=False))
        print(feats.select(feats.columns[:8]))


def fmt(x: Any, spec: str = ".4g") -> str:
    """`x` formatted, or "n/a" for a figure that could not be computed."""
    return "n/a" if x is None else format(x, spec)


def where_the_time_went(timing: dict[str, Any]) -> str:
    """One line per part of the replay's wall time, largest first (see `zdte_assets.core.timing`)."""
    parts = timing["by_part"]
    wall = float(timing["wall_seconds"])
    main = {k: v for k, v in parts.items() if k != "studies_ahead_second_core" and v >= 0.05}
    lines = [f"where the time went ({wall:.1f} s wall):"]
    for name, seconds in sorted(main.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name.replace('_', ' '):<28}{seconds:8.1f} s  {seconds / wall:6.1%}")
    ahead = parts.get("studies_ahead_second_core", 0.0)
    if ahead:
        lines.append(f"  {'(studies ahead, 2nd core)':<28}{ahead:8.1f} s")
    failed = int(timing.get("counts", {}).get("studies_ahead_failed", 0))
    if failed:
        lines.append(f"  {failed} studies could not be computed ahead (see stderr above)")
    plain = float(timing["plain_equivalent_seconds"])
    lines.append(f"  a plain loop would spend {plain:.1f} s of this on the same computations")
    if timing.get("peak_rss_mib"):
        worker = timing.get("study_worker_peak_rss_mib") or 0.0
        lines.append(
            f"  peak memory {timing['peak_rss_mib']:.0f} MiB"
            + (f" (study worker {worker:.0f} MiB)" if worker else "")
        )
    return "\n".join(lines)


def print_summary(result: dict[str, Any], out: Path) -> None:
    """The replay's figures as a table, where its time went, and where to look next."""
    from rich.console import Console
    from rich.table import Table

    m, t, lc = result["metrics"], result["trading"], result["lifecycle"]
    table = Table(
        title=f"zdte replay {result['ticker']} {result['start']}..{result['end']} "
        f"({result['trading_days']} trading days)"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("model RMSE / naive RMSE", f"{fmt(m['model']['rmse'])} / {fmt(m['naive']['rmse'])}"),
        ("RMSE ratio (model / naive)", fmt(m["rmse_ratio"])),
        ("Diebold-Mariano p-value vs naive", fmt(m["dm_pvalue"])),
        (
            "directional accuracy / up-day base rate",
            f"{fmt(m['model']['directional_accuracy'], '.1%')} / {fmt(m['base_rate_up'], '.1%')}",
        ),
        ("trades / no-trade days", f"{t['trades']} / {t['no_trade_days']}"),
        ("P&L (USD)", fmt(t["pnl_total"], ".2f")),
        (
            "weekly studies / drift re-optimizations",
            f"{lc['weekly_optimizations']} / {lc['reoptimizations_triggered']}",
        ),
        ("models trained", str(lc["models_trained"])),
        ("wall time (s)", fmt(result["timing"]["wall_seconds"], ".1f")),
    ]
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
    print(where_the_time_went(result["timing"]))
    print(
        f"report: {out / 'report.html'} (also report.md, report.json, predictions.parquet "
        "and PNG plots)"
    )
    print(
        f"Dagster UI on this history: python3 run.py zdte ui  (instance {result['dagster_home']})"
    )
    print("MLflow UI on the studies and models: python3 run.py zdte mlflow-ui")
