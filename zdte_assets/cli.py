"""The `zdte` command line: the main job and the readers that need no Dagster.

Every known failure (bad input, missing data, unreachable service) prints one line on stderr and
exits non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import sys
import time

from zdte_assets import calendar, config


class UsageError(ValueError):
    """Arguments that do not make sense together."""


def _known_errors() -> tuple[type[BaseException], ...]:
    from zdte_assets.defs.features import MissingHistoryError
    from zdte_assets.market_data import MarketDataError
    from zdte_assets.storage import StorageError
    from zdte_assets.validation import DataValidationError

    return (
        UsageError,
        DataValidationError,
        MarketDataError,
        MissingHistoryError,
        StorageError,
        calendar.CalendarError,
        FileNotFoundError,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Bars and features for the last months of the chosen source, through Dagster."""
    import datetime as dt

    import polars as pl

    from zdte_assets import storage
    from zdte_assets.definitions import build_definitions
    from zdte_assets.features import LOOKBACK
    from zdte_assets.runner import local_instance, materialize_range

    ticker = args.ticker.upper()
    defs = build_definitions(tickers=[ticker], source_kind=args.source, source_path=args.path)
    source = defs.resources["market_data"].source()  # type: ignore[attr-defined,index]
    end = dt.date.fromisoformat(args.end) if args.end else None
    if end is None:
        end = source.bars(ticker, calendar.first_session(), calendar.last_session())["date"][-1]
    start = calendar.previous_trading_day(end, int(args.months * 21) - 1)
    warmup = calendar.previous_trading_day(start, LOOKBACK)
    instance = local_instance()
    t0 = time.perf_counter()
    materialize_range(
        defs,
        [f"{ticker}/daily_bar", f"{ticker}/session_open"],
        warmup.isoformat(),
        end.isoformat(),
        instance,
    )
    materialize_range(defs, [f"{ticker}/features"], start.isoformat(), end.isoformat(), instance)
    elapsed = time.perf_counter() - t0

    store = storage.store_from_url(config.storage_url())
    days = calendar.trading_days(start, end)
    bars = pl.concat(
        storage.read_parquet(store, f"{ticker}/daily_bar/{d}.parquet") for d in days[-5:]
    )
    feats = pl.concat(
        storage.read_parquet(store, f"{ticker}/features/{d}.parquet") for d in days[-5:]
    )
    print(
        f"zdte demo: {ticker} bars and features for {len(days)} sessions {start}..{end} in {elapsed:.1f} s"
    )
    with pl.Config(tbl_rows=10, tbl_cols=10, float_precision=4, tbl_width_chars=140):
        print(bars.drop("adj_close", strict=False))
        print(feats.select(feats.columns[:9]))
    print(f"asset values: {store.url(ticker)}/")
    print(f"Dagster instance: {instance.root_directory}")
    print("UI: python3 run.py zdte ui   (then open http://127.0.0.1:3000)")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Start the Dagster UI on the same local instance the CLI writes to."""
    import os
    import subprocess

    from zdte_assets.runner import local_instance

    local_instance()
    cmd = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-m",
        "zdte_assets.definitions",
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    return subprocess.call(cmd, env=dict(os.environ))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zdte", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="materialize bars and features for the last months of the data"
    )
    demo.add_argument("--ticker", default="AAPL")
    demo.add_argument("--source", default=None, choices=["sample", "file", "yfinance"])
    demo.add_argument("--path", default=None, help="CSV or Parquet file for --source file")
    demo.add_argument("--months", type=float, default=3.0)
    demo.add_argument(
        "--end", default=None, help="last day (YYYY-MM-DD); default: last day of the data"
    )
    demo.set_defaults(func=cmd_demo)

    ui = sub.add_parser("ui", help="start the Dagster UI on the local instance")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "source", None) == "file" and not getattr(args, "path", None):
        print("zdte: --source file needs --path FILE", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except Exception as exc:  # reported in one line when it is a known input or service problem
        from zdte_assets.runner import user_error

        inner = user_error(exc)
        if isinstance(inner, _known_errors()):
            print(
                f"zdte: {str(inner).splitlines()[0] if str(inner) else type(inner).__name__}",
                file=sys.stderr,
            )
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
