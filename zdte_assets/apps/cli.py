"""The `zdte` command line: the main job, the replay, and readers that need no Dagster.

Every known failure (bad input, missing data, unreachable service) prints one line on stderr and
exits non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from zdte_assets.apps.summary import fmt, print_last_days, print_summary
from zdte_assets.core import calendar, config
from zdte_assets.core.errors import UsageError, first_line, is_known_error


def user_error(exc: BaseException) -> BaseException:
    """The user-code exception inside Dagster's wrappers, so it can be reported in one line."""
    seen = exc
    while True:
        inner = getattr(seen, "user_exception", None) or seen.__cause__
        if inner is None or inner is seen:
            return seen
        seen = inner


def _date(text: str, flag: str) -> Any:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a date (YYYY-MM-DD)") from None


def isolate_replay() -> None:
    """Point this process at the local stores under ZDTE_HOME, whatever the environment says,
    so that a replay started on a production host never writes into production's instance,
    MLflow or Optuna storage (its asset values always go to its own output folder)."""
    import os

    home = config.zdte_home()
    own = {
        "DAGSTER_HOME": str(home / "dagster"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "ZDTE_OPTUNA_STORAGE": f"sqlite:///{home / 'optuna.db'}",
    }

    def same(name: str, value: str) -> bool:
        if name == "DAGSTER_HOME":
            return Path(value).expanduser().resolve() == Path(own[name])
        return value == own[name]

    overridden = [n for n, v in config.configured_stores().items() if not same(n, v)]
    # Set, not read: Dagster, MLflow and the study storage (via `config`) read these themselves.
    os.environ["DAGSTER_HOME"] = own["DAGSTER_HOME"]
    os.environ["MLFLOW_TRACKING_URI"] = own["MLFLOW_TRACKING_URI"]
    os.environ.pop("ZDTE_OPTUNA_STORAGE", None)
    if overridden:
        print(
            f"zdte replay: writing to its own stores under {home}, not to the configured "
            f"{', '.join(overridden)} (pass --use-configured-stores to write there)",
            file=sys.stderr,
        )


def check_reachable() -> None:
    """Before a replay writes into the configured stores: the tracking server must answer."""
    import urllib.error
    import urllib.request

    uri = config.mlflow_tracking_uri()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5):
                pass
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UsageError(
                f"MLflow at {uri} is not reachable ({reason}); nothing was written"
            ) from None


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay the lifecycle day by day through Dagster and write the report."""
    from zdte_assets.apps.replay import ReplayOptions, run_replay

    if args.source == "file" and not args.path:
        raise UsageError("--source file needs --path FILE")
    out = Path(args.output)
    storage = getattr(args, "storage", None)
    if storage and storage == config.configured_storage_url() and not args.use_configured_stores:
        raise UsageError(
            f"--storage {storage} is the configured ZDTE_STORAGE_URL; a replay writes there "
            "only with --use-configured-stores"
        )
    if args.use_configured_stores:
        check_reachable()
    else:
        isolate_replay()
    result = run_replay(
        ReplayOptions(
            ticker=args.ticker,
            start=_date(args.start, "--start"),
            end=_date(args.end, "--end"),
            output=out,
            source_kind=args.source,
            source_path=args.path,
            n_trials=args.trials,
            progress=not args.no_progress,
            storage_url=storage,
        )
    )
    print_summary(result, out)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The README's main job: replay the last months of the bundled sample."""
    from zdte_assets.data.market_data import source_from_settings

    source = source_from_settings("sample", None)
    last = source.bars("AAPL", calendar.first_session(), calendar.last_session())["date"][-1]
    first = calendar.previous_trading_day(last, max(1, int(args.months * 21) - 1))
    print(f"zdte demo: replaying AAPL {first}..{last} from the bundled sample", flush=True)
    ns = argparse.Namespace(
        ticker="AAPL",
        start=first.isoformat(),
        end=last.isoformat(),
        source="sample",
        path=None,
        output=args.output,
        trials=args.trials,
        no_progress=args.no_progress,
        use_configured_stores=False,
        storage=None,
    )
    code = cmd_replay(ns)
    print_last_days(Path(args.output) / "storage", "AAPL", last)
    return code


def cmd_prediction(args: argparse.Namespace) -> int:
    """Print a stored prediction; no Dagster needed."""
    import json

    from zdte_assets.trading.predictions import PredictionNotFound, read_prediction

    day = _date(args.date, "--date")
    try:
        found = read_prediction(args.ticker, day, storage_url=args.storage)
    except PredictionNotFound as exc:
        found = _from_last_replay(args, day, exc)
        if found is None:
            return 1
    record = json.loads(found.to_json())
    if not args.table:
        print(json.dumps(record, indent=2, sort_keys=True))
        return 0
    from rich.console import Console
    from rich.table import Table

    d = record["decision"]
    table = Table(title=f"{record['ticker']} {record['date']}: {record['action']}")
    table.add_column("field")
    table.add_column("value")
    interval = record["interval"]
    for k, v in [
        ("open", f"{record['open']:.2f}"),
        ("predicted close", f"{record['predicted_close']:.2f} ({record['predicted_return']:+.4%})"),
        ("P(close > open)", f"{record['p_up']:.1%}"),
        (f"{interval['level']:.0%} interval", f"{interval['low']:.2f} .. {interval['high']:.2f}"),
        ("action", record["action"]),
        *_position_rows(record["action"], d),
        ("reason", record["reason"]),
        (
            "significance gate",
            ("open: " if record["gate"]["open"] else "closed: ") + record["gate"]["reason"],
        ),
        (
            "model",
            f"version {record['model']['version']}, beats naive: {record['model']['beats_naive']}",
        ),
    ]:
        table.add_row(k, str(v))
    Console().print(table)
    return 0


def _from_last_replay(args: argparse.Namespace, day: Any, missing: Exception) -> Any:
    """With no store chosen (no --storage, no ZDTE_STORAGE_URL), the last replay's storage is
    where a newcomer's predictions are (the demo writes there): read it, or say which flag to
    pass. Prints the one-line reason and returns None when there is nothing to show."""
    from zdte_assets.apps import last_replay
    from zdte_assets.trading.predictions import PredictionNotFound, read_prediction

    last = last_replay.fallback(args.storage)
    if last is None:
        print(f"zdte: {missing}", file=sys.stderr)
        return None
    try:
        return read_prediction(args.ticker, day, storage_url=last["storage"])
    except PredictionNotFound:
        span = f"{last.get('ticker', '?')} {last.get('start', '?')}..{last.get('end', '?')}"
        print(
            f"zdte: {missing}, nor in the last replay's store {last['storage']} ({span}); "
            "choose a store with --storage",
            file=sys.stderr,
        )
        return None


def cmd_run(args: argparse.Namespace) -> int:
    """One scheduled job for a date, in the configured instance and storage."""
    from zdte_assets.apps.scheduled_runs import run_slot

    _source_args(args)
    return run_slot(
        args.ticker.upper(),
        args.slot,
        _date(args.date, "--date"),
        n_trials=args.trials,
        source_kind=args.source,
        source_path=args.path,
    )


def cmd_backfill(args: argparse.Namespace) -> int:
    """The scheduled jobs of a range of sessions, in order, in the configured instance."""
    from zdte_assets.apps.scheduled_runs import backfill

    _source_args(args)
    return backfill(
        args.ticker.upper(),
        _date(args.start, "--start"),
        _date(args.end, "--end"),
        source_kind=args.source,
        source_path=args.path,
        n_trials=args.trials,
    )


def _source_args(args: argparse.Namespace) -> None:
    if args.source == "file" and not args.path:
        raise UsageError("--source file needs --path FILE")
    if args.path and args.source != "file":
        raise UsageError("--path is for --source file")


def _position_rows(action: str, d: dict[str, Any]) -> list[tuple[str, str]]:
    """The option rows: on a no-trade day the contract that was priced is not shown as if it
    were a recommendation, only as what was weighed."""
    if action == "NO_TRADE":
        weighed = (
            f"{d['option']} {fmt(d['strike'], 'g')} at {fmt(d['premium'], '.2f')}"
            if d.get("option")
            else "nothing"
        )
        return [("option", "none: no trade"), ("weighed and not bought", weighed)]
    return [
        ("option", f"{d['option']} {fmt(d['strike'], 'g')}"),
        ("premium / contracts", f"{fmt(d['premium'], '.2f')} / {d['contracts']}"),
    ]


def cmd_report(args: argparse.Namespace) -> int:
    """Write the stored days' HTML report (one self-contained page); no Dagster needed."""
    from zdte_assets.apps import last_replay
    from zdte_assets.apps.html_report import ReportError, write_report

    start = _date(args.start, "--start") if args.start else None
    end = _date(args.end, "--end") if args.end else None
    ticker = args.ticker.upper()
    output = Path(args.output or f"zdte-report-{ticker}.html")
    try:
        path = write_report(args.storage or config.storage_url(), ticker, output, start, end)
    except ReportError:
        # As for `zdte prediction`: with no store chosen, the last replay's is the next place.
        last = last_replay.fallback(args.storage)
        if last is None:
            raise
        path = write_report(last["storage"], ticker, output, start, end)
    print(f"report: {path}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Start the Dagster UI on the same local instance the CLI writes to."""
    import subprocess

    from zdte_assets.orchestration.runner import local_instance

    instance = local_instance()
    env = config.environment()
    # The code server loads the definitions in its own process, where main()'s filter does not
    # reach: the same one beta notice (see main) is named there.
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), BETA_NOTICE]))
    workspace = Path(instance.root_directory) / "workspace.yaml"
    workspace.write_text(ui_workspace())
    # Started in the instance's directory: from the repository root, Dagster would warn on every
    # start that the root's dagster.yaml (production's) is not the one DAGSTER_HOME uses.
    return subprocess.call(
        ui_command(workspace, args.host, args.port), env=env, cwd=instance.root_directory
    )


#: The warnings filter (PYTHONWARNINGS form) of the beta parameter `backfill_policy`.
BETA_NOTICE = "ignore:Parameter `backfill_policy` of function `asset` is currently in beta"


def ui_workspace() -> str:
    """The workspace `zdte ui` loads: the code location under the name production and `dg` give
    it (`ticks.LOCATION`), so the replay's schedule and sensor ticks, recorded under that name,
    show on their pages."""
    from zdte_assets.orchestration.ticks import LOCATION

    return (
        "load_from:\n  - python_module:\n      module_name: zdte_assets.definitions\n"
        f"      location_name: {LOCATION}\n"
    )


def ui_command(workspace: Path, host: str, port: int) -> list[str]:
    """`dg dev` on the code location, what Dagster 1.13 recommends (`dagster dev` warns that
    it is superseded by it); `dagster dev` only where dagster-dg-cli is not installed."""
    import shutil

    target = ["-w", str(workspace), "--host", host, "--port", str(port)]
    dg = Path(sys.executable).with_name("dg")
    if dg.exists() or (dg := Path(shutil.which("dg") or "")).name == "dg":
        return [str(dg), "dev", *target]
    return [sys.executable, "-m", "dagster", "dev", *target]


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    """MLflow UI on the local tracking store (or MLFLOW_TRACKING_URI) with `--workers` server
    processes (MLflow's own default is 4) and without MLflow's job runner, a further process
    that serves only GenAI features: locally one process starts soonest and suffices."""
    import subprocess

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    uri = config.mlflow_tracking_uri()
    if uri.startswith("sqlite:"):
        from zdte_assets.orchestration.tracking import MlflowTracking

        # Creates the local store if needed and deletes its empty "Default" experiment, so
        # the UI opens on zdte's experiments.
        MlflowTracking(tracking_uri=uri).client()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
    env = config.environment()
    # Set, not read: MLflow's server reads it itself (an explicit setting still wins).
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return subprocess.call(cmd, env=env)


def cmd_stack(args: argparse.Namespace) -> int:
    """The production topology on this host (see `zdte_assets.apps.stack`)."""
    from zdte_assets.apps import stack

    if args.directory and args.action not in ("backup", "restore"):
        raise UsageError(f"zdte stack {args.action} takes no directory")
    if args.action == "up":
        cfg = stack.up()
        print(
            f"stack up: Dagster {cfg['ZDTE_DAGSTER_SITE']} and MLflow {cfg['ZDTE_MLFLOW_SITE']} "
            f"(user {cfg['CADDY_AUTH_USER']}, password in {cfg['ZDTE_STACK_DIR']}/credentials.env); "
            f"logs in {cfg['ZDTE_STACK_DIR']}/logs"
        )
        return 0
    if args.action == "status":
        states = stack.status()
        for name, state in states:
            print(f"{name:10} {state}")
        return 0 if all(s.startswith("ready") for _, s in states) else 1
    if args.action in ("backup", "restore"):
        from zdte_assets.apps import backup

        if not args.directory:
            raise UsageError(f"zdte stack {args.action} needs a directory")
        cfg = stack.configuration()
        if args.action == "backup":
            backup.backup(cfg, Path(args.directory))
        else:
            backup.restore(cfg, Path(args.directory))
        return 0
    stack.down()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zdte", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the main job: replay the last months of the bundled sample")
    demo.add_argument("--months", type=float, default=3.0)
    demo.add_argument("--output", default="replay-out")
    demo.add_argument("--trials", type=int, default=24, help="Optuna trials per weekly study")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(func=cmd_demo)

    rp = sub.add_parser("replay", help="replay the lifecycle day by day through Dagster")
    rp.add_argument("--ticker", required=True)
    rp.add_argument("--start", required=True, help="YYYY-MM-DD")
    rp.add_argument("--end", required=True, help="YYYY-MM-DD")
    rp.add_argument("--source", default="sample", choices=["sample", "file", "yfinance"])
    rp.add_argument("--path", default=None, help="CSV or Parquet file for --source file")
    rp.add_argument("--output", required=True, help="directory for the report, table and plots")
    rp.add_argument("--trials", type=int, default=24, help="Optuna trials per weekly study")
    rp.add_argument("--no-progress", action="store_true")
    rp.add_argument(
        "--use-configured-stores",
        action="store_true",
        help="write runs, models and studies into the configured DAGSTER_HOME, "
        "MLFLOW_TRACKING_URI and ZDTE_OPTUNA_STORAGE (default: own local stores)",
    )
    rp.add_argument(
        "--storage",
        default=None,
        help="store the asset values at this URL (a path or s3://bucket/prefix) instead of "
        "OUTPUT/storage: a deliberate backfill into a chosen store",
    )
    rp.set_defaults(func=cmd_replay)

    def source_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--source",
            default=None,
            choices=["sample", "file", "yfinance"],
            help="market data (default: ZDTE_SOURCE, else the bundled sample)",
        )
        p.add_argument("--path", default=None, help="CSV or Parquet file for --source file")
        p.add_argument("--trials", type=int, default=None, help="Optuna trials of a weekly study")

    run = sub.add_parser(
        "run",
        help="run one scheduled job for a date in the configured instance and storage",
        description="Run what a schedule launches when it fires on --date: morning (open, "
        "features, prediction), evening (bar, outcome, drift report), retrain (the next "
        "session's model) or weekly (the study of the week from the next Monday).",
    )
    run.add_argument("slot", choices=["morning", "evening", "retrain", "weekly"])
    run.add_argument("--ticker", required=True)
    run.add_argument("--date", required=True, help="YYYY-MM-DD, the day the schedule fires")
    source_flags(run)
    run.set_defaults(func=cmd_run)

    bf = sub.add_parser(
        "backfill",
        help="run the scheduled jobs of a range of sessions in the configured instance",
    )
    bf.add_argument("--ticker", required=True)
    bf.add_argument("--start", required=True, help="YYYY-MM-DD")
    bf.add_argument("--end", required=True, help="YYYY-MM-DD")
    source_flags(bf)
    bf.set_defaults(func=cmd_backfill)

    pr = sub.add_parser("prediction", help="print a stored prediction (JSON, or --table)")
    pr.add_argument("--ticker", required=True)
    pr.add_argument("--date", required=True, help="YYYY-MM-DD")
    pr.add_argument("--table", action="store_true", help="a readable table instead of JSON")
    pr.add_argument(
        "--storage",
        default=None,
        help="storage URL (default: ZDTE_STORAGE_URL, else the local store, then the last "
        "replay's)",
    )
    pr.set_defaults(func=cmd_prediction)

    rep = sub.add_parser("report", help="write the stored days' report as one HTML page")
    rep.add_argument("--ticker", required=True)
    rep.add_argument("--start", default=None, help="YYYY-MM-DD (default: the first stored day)")
    rep.add_argument("--end", default=None, help="YYYY-MM-DD (default: the last stored day)")
    rep.add_argument("--storage", default=None, help="storage URL (default: ZDTE_STORAGE_URL)")
    rep.add_argument("--output", default=None, help="HTML file (default: zdte-report-TICKER.html)")
    rep.set_defaults(func=cmd_report)

    ui = sub.add_parser("ui", help="start the Dagster UI on the local instance")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)

    ml = sub.add_parser("mlflow-ui", help="start the MLflow UI on the tracking store")
    ml.add_argument("--host", default="127.0.0.1")
    ml.add_argument("--port", type=int, default=5000)
    ml.add_argument(
        "--workers", type=int, default=1, help="server processes (default 1; MLflow's own is 4)"
    )
    ml.set_defaults(func=cmd_mlflow_ui)

    st = sub.add_parser(
        "stack", help="start, check, stop, back up or restore the production stack on this host"
    )
    st.add_argument("action", choices=["up", "status", "down", "backup", "restore"])
    st.add_argument(
        "directory",
        nargs="?",
        help="backup: a new directory to write; restore: a directory `backup` wrote",
    )
    st.set_defaults(func=cmd_stack)
    return parser


def quiet_console() -> None:
    """Keep notices meant for the code's authors off a user's console (the CLI and the
    benchmarks share it), naming each one rather than silencing a whole category."""
    import os
    import warnings

    # MLflow logs at INFO by default (creating a local database, for instance); the command line
    # reports what matters itself. Set, not read, and only when the user set no level.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # `backfill_policy` (jobs.DAILY_BACKFILL) is a beta parameter of dg.asset that we chose on
    # purpose; the notice is for the code's authors (pyproject names it too), not a CLI reader.
    warnings.filterwarnings(
        "ignore",
        message=r"Parameter .backfill_policy. of function .asset. is currently in beta",
        module=r"dagster\.",
    )


def main(argv: list[str] | None = None) -> int:
    import os

    quiet_console()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader went away (`zdte prediction ... | head`): not an error of ours. Python's
        # documented remedy, so that flushing stdout at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # known input or service problems are reported in one line
        inner = user_error(exc)
        if is_known_error(inner):
            text = first_line(str(inner), type(inner).__name__)
            print(f"zdte: {text}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
