"""Benchmark: building the causal feature frame of the whole bundled sample (AAPL, 1,500+ sessions).

    .venv/bin/python -m benchmarks.features_benchmark [--repeat 5]

Prints the best and the median wall time of `build_feature_frame` over `--repeat` calls after
one warm-up call (the aim is well under 0.1 s, so the replay's per-day feature rows cost nothing
next to a Dagster run). This was a timed test; timings belong here, where a loaded machine
gives a slow figure instead of a failed suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import hvsampledata

from zdte_assets.features.rows import build_feature_frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bars = hvsampledata.apple_stocks("polars")
    frame = build_feature_frame(bars)  # warm-up: imports, polars' first plans
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        build_feature_frame(bars)
        times.append(time.perf_counter() - start)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"feature frame: {bars.height} sessions in, {frame.height} rows out")
    print(
        f"wall seconds per build: best {min(times):.4f}, median {statistics.median(times):.4f} "
        f"({args.repeat} runs)"
    )


if __name__ == "__main__":
    main()
