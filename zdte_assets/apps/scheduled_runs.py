"""`zdte run` and `zdte backfill`: the jobs the schedules launch, started from the command line.

A desk needs "this morning's prediction" or "tonight's outcome" for a date without the UI or the
daemon, and a range of past sessions filled in after an outage. Both go through the same request
functions as the schedules (`orchestration.schedules`), so the partition, run key and tags are
those production would use, and run in the configured Dagster instance (``DAGSTER_HOME``) against
the configured storage (``ZDTE_STORAGE_URL``, local or S3), MLflow and study storage: unlike
`zdte replay`, this writes where the automation writes, on purpose.

``--date`` is the day the schedule fires: `retrain` on day t trains the model of the next
session, `weekly` on a Sunday studies the coming week (as the crons do).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zdte_assets.core import calendar
from zdte_assets.core.errors import UsageError, first_line

if TYPE_CHECKING:
    import dagster as dg

#: The console log of a run: off, since each run is reported in one line and its whole event
#: log (with a failure's traceback) is in the instance, for the UI.
SILENT: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

#: Slots `zdte run` accepts, in the order a backfill runs them within one session.
SLOTS = ("weekly", "retrain", "morning", "evening")


@dataclass(frozen=True)
class RunLine:
    """One executed run as the command line reports it."""

    job: str
    partition: str
    status: str
    seconds: float
    run_id: str
    error: str = ""

    def text(self) -> str:
        line = f"{self.job:<18} {self.partition}  {self.status:<7} {self.seconds:6.1f} s  run {self.run_id[:8]}"
        return f"{line}  {self.error}" if self.error else line


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The first line of what the failed step's user code raised (not Dagster's wrapper)."""
    for event in result.all_events:
        if not event.is_step_failure or event.step_failure_data is None:
            continue
        info = event.step_failure_data.error
        while info is not None and info.cause is not None:
            info = info.cause
        if info is not None:
            text = first_line(info.message)
            head, _, rest = text.partition(": ")
            if rest and head.rsplit(".", 1)[-1] == info.cls_name:  # "module.Class: message"
                text = rest
            return f"{event.step_key}: {text}"
    return "the run failed (see the Dagster UI for its event log)"


class Runner:
    """Executes run requests of one ticker in the configured instance, one line per run."""

    def __init__(
        self,
        ticker: str,
        n_trials: int | None = None,
        source_kind: str | None = None,
        source_path: str | None = None,
        echo: Callable[[str], None] = print,
    ) -> None:
        from zdte_assets.definitions import build_definitions
        from zdte_assets.orchestration.runner import local_instance

        self.ticker = ticker
        self.defs = build_definitions(
            tickers=[ticker], source_kind=source_kind, source_path=source_path
        )
        self.instance = local_instance()
        self.n_trials = n_trials
        self.echo = echo
        self.lines: list[RunLine] = []

    def execute(self, request: dg.RunRequest) -> RunLine:
        from zdte_assets.orchestration.jobs import asset_op_name

        job = self.defs.resolve_job_def(request.job_name or "")
        run_config: dict[str, Any] = json.loads(json.dumps(request.run_config or {}))
        if self.n_trials is not None and request.tags.get("zdte/slot") == "weekly":
            op = asset_op_name(self.ticker, "tuned_params")
            ops = run_config.setdefault("ops", {})
            ops.setdefault(op, {"config": {}})["config"]["n_trials"] = self.n_trials
        t0 = time.perf_counter()
        result = job.execute_in_process(
            run_config={**SILENT, **run_config},
            instance=self.instance,
            partition_key=request.partition_key,
            tags={**request.tags, "zdte/launched_by": "cli"},
            raise_on_error=False,
        )
        line = RunLine(
            job=job.name,
            partition=request.partition_key or "",
            status="SUCCESS" if result.success else "FAILURE",
            seconds=time.perf_counter() - t0,
            run_id=result.run_id,
            error="" if result.success else _failure(result),
        )
        self.lines.append(line)
        self.echo(line.text())
        return line

    def history(self, first: dt.date, last: dt.date) -> None:
        """Bars and opens from `first`, and the feature rows they allow, through `last`: what the
        evening and morning runs before a backfilled range would have stored."""
        import dagster as dg

        from zdte_assets.features.rows import LOOKBACK
        from zdte_assets.orchestration.jobs import asset_key
        from zdte_assets.orchestration.runner import materialize_range

        t0 = time.perf_counter()
        tags = {"zdte/slot": "history", "zdte/ticker": self.ticker, "zdte/launched_by": "cli"}
        for names, start in (
            (("daily_bar", "session_open"), first),
            (("features",), calendar.next_trading_day(first, LOOKBACK)),
        ):
            selection = dg.AssetSelection.assets(*(asset_key(self.ticker, n) for n in names))
            result = materialize_range(
                self.defs, selection, start.isoformat(), last.isoformat(), self.instance, tags
            )
            line = RunLine(
                job="+".join(names),
                partition=f"{start}..{last}",
                status="SUCCESS",
                seconds=time.perf_counter() - t0,
                run_id=result.run_id,
            )
            self.lines.append(line)
            self.echo(line.text())
            t0 = time.perf_counter()

    def summary(self, wall: float) -> str:
        failed = [line for line in self.lines if line.status != "SUCCESS"]
        return (
            f"{len(self.lines)} runs, {len(self.lines) - len(failed)} succeeded, "
            f"{len(failed)} failed, {wall:.1f} s; instance {self.instance.root_directory}"
        )


def requests_for(ticker: str, slot: str, day: dt.date) -> list[dg.RunRequest]:
    """What `slot`'s schedule requests when it fires on `day`; a one-line error when nothing."""
    import dagster as dg

    from zdte_assets.orchestration.schedules import SLOTS as SCHEDULED

    if slot not in SCHEDULED:
        raise UsageError(f"zdte run {slot}: expected one of {', '.join(SLOTS)}")
    requested = SCHEDULED[slot][1](ticker, day)
    if isinstance(requested, dg.SkipReason):
        raise UsageError(f"zdte run {slot} --date {day}: nothing to run ({requested.skip_message})")
    return list(requested)


def run_slot(
    ticker: str,
    slot: str,
    day: dt.date,
    n_trials: int | None = None,
    source_kind: str | None = None,
    source_path: str | None = None,
) -> int:
    """`zdte run SLOT`: 0 when every run succeeded, 1 otherwise (the line says why)."""
    requests = requests_for(ticker, slot, day)
    t0 = time.perf_counter()
    runner = Runner(ticker, n_trials, source_kind, source_path)
    for request in requests:
        runner.execute(request)
    print(runner.summary(time.perf_counter() - t0), file=sys.stderr)
    return 0 if all(line.status == "SUCCESS" for line in runner.lines) else 1


def backfill_requests(ticker: str, days: Iterable[dt.date]) -> list[dg.RunRequest]:
    """The schedules' requests that produce every daily asset of `days`, in dependency order:
    the week's study (when its Sunday tick falls before the day), the day's model (the retrain
    of the session before), the morning and the evening."""

    from zdte_assets.orchestration.schedules import SLOTS as SCHEDULED

    out: list[dg.RunRequest] = []
    weeks: set[dt.date] = set()
    for day in days:
        monday = calendar.week_start(day)
        if monday not in weeks:
            weeks.add(monday)
            out += _requested(SCHEDULED["weekly"][1](ticker, monday))
        out += _requested(SCHEDULED["retrain"][1](ticker, calendar.previous_trading_day(day)))
        out += _requested(SCHEDULED["morning"][1](ticker, day))
        out += _requested(SCHEDULED["evening"][1](ticker, day))
    return out


def _requested(value: list[dg.RunRequest] | dg.SkipReason) -> list[dg.RunRequest]:
    return value if isinstance(value, list) else []


def backfill(
    ticker: str,
    start: dt.date,
    end: dt.date,
    source_kind: str | None = None,
    source_path: str | None = None,
    n_trials: int | None = None,
) -> int:
    """`zdte backfill`: history first, then each session's runs in order; stops at the first
    failed run (a rerun repeats only idempotent writes), 0 when all succeeded."""
    from zdte_assets.apps.replay import ReplayOptions, plan_range
    from zdte_assets.core import config
    from zdte_assets.data.market_data import source_from_settings

    settings = config.source_settings()
    source = source_from_settings(source_kind or settings.kind, source_path or settings.path)
    opts = ReplayOptions(ticker=ticker, start=start, end=end, output=config.zdte_home())
    days, warm = plan_range(source, opts)
    t0 = time.perf_counter()
    runner = Runner(ticker, n_trials, source_kind, source_path)
    print(
        f"zdte backfill: {ticker} {days[0]}..{days[-1]} ({len(days)} sessions) into "
        f"{config.storage_url()}",
        file=sys.stderr,
    )
    runner.history(warm, calendar.previous_trading_day(days[0]))
    code = 0
    for request in backfill_requests(ticker, days):
        if runner.execute(request).status != "SUCCESS":
            code = 1
            break
    print(runner.summary(time.perf_counter() - t0), file=sys.stderr)
    return code
