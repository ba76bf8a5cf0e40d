"""Forecast, calibration and trading figures on synthetic series with known answers.

    .venv/bin/python -m benchmarks.quality [--seeds 3] [--sessions 700]
    .venv/bin/python -m benchmarks.quality --write-csv noise.csv --scenario noise --sessions 500

The second form writes one scenario's bars as a CSV file for `zdte replay --source file`, so the
same series can be replayed through Dagster.

Each scenario of `zdte_assets.data.synthetic` is walked through the same domain functions as the
replay (features, daily retraining every 5 sessions, calibration, significance gate, decision,
outcome) from session 200 on; the table goes into docs/quality.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl

from zdte_assets.data import synthetic

SCENARIOS: tuple[tuple[synthetic.Scenario, dict[str, float]], ...] = (
    ("noise", {}),
    ("signal", {"signal": 0.6}),
    ("regime", {"regime_factor": 2.5}),
    ("split", {}),
)


def row(name: str, seed: int, past: pl.DataFrame, gate_days: int) -> str:
    trades = past.filter(pl.col("action") != "NO_TRADE")
    z = past["z"].to_numpy()
    cover_50 = float(np.mean(past["in_interval_50"].to_numpy()))
    cover_90 = float(np.mean(past["in_interval"].to_numpy()))
    return (
        f"| {name} | {seed} | {past.height} | {cover_50:.3f} | "
        f"{cover_90:.3f} | {float(np.mean(z**2)):.2f} | {gate_days} | "
        f"{trades.height} | {float(trades['expected_value_usd'].sum()):.0f} | "
        f"{float(trades['pnl_usd'].sum()):.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=700)
    parser.add_argument("--write-csv", help="write one scenario's bars to this CSV file and stop")
    parser.add_argument("--scenario", default="noise", choices=[n for n, _ in SCENARIOS])
    args = parser.parse_args()
    if args.write_csv:
        kwargs = dict(SCENARIOS)[args.scenario]
        bars = synthetic.synthetic_bars(args.scenario, args.sessions, seed=0, **kwargs)  # type: ignore[arg-type]
        bars.drop("adj_close").write_csv(args.write_csv)
        first, last = bars["date"][0], bars["date"][-1]
        print(f"{args.write_csv}: {bars.height} sessions {first}..{last}")
        return
    print(
        "| scenario | seed | days | coverage 50% | coverage 90% | mean z^2 | gate open (days) | "
        "trades | expected value (USD) | P&L (USD) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, kwargs in SCENARIOS:
        for seed in range(args.seeds):
            bars = synthetic.synthetic_bars(name, args.sessions, seed=seed, **kwargs)  # type: ignore[arg-type]
            past, records = synthetic.simulate(bars, 200)
            gate_days = sum(r.gate.open for r in records)
            print(row(name, seed, past, gate_days), flush=True)


if __name__ == "__main__":
    main()
