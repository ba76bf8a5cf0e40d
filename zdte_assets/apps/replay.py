"""`zdte replay`: the whole lifecycle in simulated time, through the real Dagster definitions.

For every trading day in order it does what the schedules and the sensor do in production, by
calling their own request functions and executing the requested runs in a persistent instance:
the weekly study (first session of each week), the 09:30 prediction, the evening bar, outcome
and drift report, the next session's model, and the drift sensor with the re-optimizations it
asks for. Asset values go to `OUTPUT/storage`, so replays never mix with each other or with
production data; runs, metadata and checks stay in the Dagster instance for the UI, and studies
and models in MLflow.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zdte_assets.apps import last_replay
from zdte_assets.core import calendar, config
from zdte_assets.core.config import STUDY_LOOKBACK_WEEKS
from zdte_assets.core.errors import ZdteError
from zdte_assets.data.market_data import MarketDataSource, source_from_settings
from zdte_assets.features.rows import LOOKBACK

if TYPE_CHECKING:
    import dagster as dg
    import polars as pl

    from zdte_assets.storage import store as storage

MARKER = ".zdte-replay"


class ReplayError(ZdteError, ValueError):
    """A replay that cannot start: bad range, no data, no history."""


@dataclass
class ReplayOptions:
    ticker: str
    start: dt.date
    end: dt.date
    output: Path
    source_kind: str = "sample"
    source_path: str | None = None
    n_trials: int = 24
    progress: bool = True
    #: Compute the scheduled weekly studies ahead on a second core (see `study_prefetch`).
    prefetch_studies: bool = True
    #: Where asset values go instead of `output/storage` (a deliberate backfill into a store).
    storage_url: str | None = None


@dataclass
class Counters:
    weekly: int = 0
    reopt: int = 0
    models: int = 0
    runs: int = 0
    reopt_days: list[dt.date] = field(default_factory=list)


def _prepare_output(out: Path) -> Path:
    """A fresh `OUTPUT/storage`; only a directory this command created is ever wiped."""
    out.mkdir(parents=True, exist_ok=True)
    store_dir = out / "storage"
    if store_dir.exists() and any(store_dir.iterdir()):
        if not (out / MARKER).exists():
            raise ReplayError(
                f"{store_dir} exists and was not made by zdte replay; choose another --output"
            )
        shutil.rmtree(store_dir)
    (out / MARKER).write_text("made by zdte replay; its storage/ is replaced on every replay\n")
    store_dir.mkdir(parents=True, exist_ok=True)
    return store_dir


def plan_range(source: MarketDataSource, opts: ReplayOptions) -> tuple[list[dt.date], dt.date]:
    """Sessions to replay (those the data has) and the first session of warm-up history."""
    if opts.end < opts.start:
        raise ReplayError(f"--end {opts.end} is before --start {opts.start}")
    wanted = calendar.trading_days(opts.start, opts.end)
    if not wanted:
        first_known, last_known = calendar.first_session(), calendar.last_session()
        if opts.start > last_known or opts.end < first_known:
            raise ReplayError(
                f"{opts.start}..{opts.end} is outside the trading calendar "
                f"({first_known} to {last_known}); no data to replay"
            )
        raise ReplayError(f"no NYSE trading day between {opts.start} and {opts.end}")
    history_sessions = LOOKBACK + STUDY_LOOKBACK_WEEKS * 5 + 5
    warm = calendar.previous_trading_day(wanted[0], history_sessions)
    bars = source.bars(opts.ticker, warm, wanted[-1])
    have = set(bars["date"].to_list())
    days = [d for d in wanted if d in have]
    if not days:
        span = f"{bars['date'][0]}..{bars['date'][-1]}" if bars.height else "nothing"
        raise ReplayError(
            f"{source.name}: no data for {opts.ticker} between {opts.start} and {opts.end} (data: {span})"
        )
    first = bars["date"][0]
    before = [d for d in have if d < days[0]]
    needed = LOOKBACK + 70
    if len(before) < needed:
        raise ReplayError(
            f"{source.name}: replay from {days[0]} needs at least {needed} sessions of history before it; "
            f"the data for {opts.ticker} starts at {first} ({len(before)} sessions before)"
        )
    missing = [d for d in calendar.trading_days(days[0], days[-1]) if d not in have]
    if missing:
        raise ReplayError(
            f"{source.name}: no bar for {opts.ticker} on {missing[0]} inside the replay range"
        )
    return days, max(first, warm)


#: The run tags by which Dagster's UI shows what launched a run; the daemon sets them on the
#: runs of a schedule tick or a sensor evaluation, the replay on the runs it stands in for.
SCHEDULE_TAG = "dagster/schedule_name"
SENSOR_TAG = "dagster/sensor_name"
#: Slots of the runs the drift sensor asks for (the other slots are schedules').
SENSOR_SLOTS = ("reoptimization", "retrain-after-study")


def launched_by(request: dg.RunRequest) -> dict[str, str]:
    """The launched-by tag of a run the replay executes for a schedule or the drift sensor:
    the name `jobs` gives that schedule (of the request's slot) or sensor."""
    from zdte_assets.orchestration.jobs import schedule_name, sensor_name

    ticker, slot = request.tags["zdte/ticker"], request.tags["zdte/slot"]
    if slot in SENSOR_SLOTS:
        return {SENSOR_TAG: sensor_name(ticker)}
    # A session run does the work of the retrain, morning and evening schedules (their ticks
    # all list it); a run names one launcher, and the 09:30 prediction is the day's point.
    return {SCHEDULE_TAG: schedule_name(ticker, "morning" if slot == "session" else slot)}


def _execute(
    defs: dg.Definitions,
    request: dg.RunRequest,
    instance: dg.DagsterInstance,
    tags: dict[str, str],
    weekly_config: dict[str, Any],
) -> dg.ExecuteInProcessResult:
    from zdte_assets.orchestration.runner import QUIET

    job = defs.resolve_job_def(request.job_name or "")
    run_config: dict[str, Any] = json.loads(json.dumps(request.run_config or {}))
    if request.tags.get("zdte/slot") in ("weekly", "reoptimization"):
        ops = run_config.setdefault("ops", {})
        for op, cfg in weekly_config.items():
            ops.setdefault(op, {"config": {}})["config"].update(cfg)
    return job.execute_in_process(
        run_config={**QUIET, **run_config},
        instance=instance,
        partition_key=request.partition_key,
        tags={**request.tags, **launched_by(request), **tags},
    )


class _Prefetch:
    """The scheduled weekly studies, computed ahead in one worker process (the second core)."""

    def __init__(self, jobs: list[Any], enabled: bool, storage: str, tracking_uri: str) -> None:
        self.storage = storage
        self.ready: Any = None
        self.futures: dict[dt.date, Any] = {}
        self.seconds = 0.0
        self.failed = 0
        self.pool = None
        if not enabled or not jobs:
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from zdte_assets.apps import study_prefetch

        # LightGBM fits with num_threads=1 (ModelParams.lightgbm_params), so the worker and
        # the replay each keep to one core.
        self.pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        try:
            self.ready = self.pool.submit(study_prefetch.prepare_stores, tracking_uri, storage)
            for job in jobs:
                self.futures[job.monday] = self.pool.submit(study_prefetch.run_job, job)
        except BaseException:
            self.close(wait=False)
            raise

    @staticmethod
    def _result(future: Any, what: str, fallback: str) -> Any | None:
        """The worker's answer, or None after saying on stderr why there is none: a failed
        worker costs speed, not correctness (`fallback` says who does the work instead)."""
        try:
            return future.result()
        except Exception as exc:
            print(
                f"zdte replay: {what} could not be done ahead "
                f"({type(exc).__name__}: {exc}); {fallback}",
                file=sys.stderr,
            )
            return None

    def wait_ready(self) -> float:
        """Block until the worker has created fresh stores' schemas; the seconds waited."""
        if self.ready is None:
            return 0.0
        start = time.perf_counter()
        self._result(self.ready, "preparing the tracking and study stores", "the first run does")
        self.ready = None
        return time.perf_counter() - start

    def wait(self, monday: dt.date) -> float:
        """Block until the week's study is computed, then store it; the seconds spent waiting.

        A worker that failed (its process died, or the source raised) costs speed, not
        correctness: the asset then computes the study itself. The failure is counted in the
        report and said on stderr, so a steady bug does not hide as a slow replay.
        """
        from zdte_assets.core import timing

        future = self.futures.pop(monday, None)
        if future is None:
            return 0.0
        start = time.perf_counter()
        done = self._result(future, f"the study of week {monday}", "the weekly run computes it")
        waited = time.perf_counter() - start
        if done is None:
            self.failed += 1
            return waited
        seconds, _, snapshot = done
        with timing.part("studies"):
            snapshot.save(self.storage)
        self.seconds += seconds
        return waited

    def worker_peak_rss_mib(self) -> float:
        """The worker's peak memory, asked of the worker itself (0.0 without a worker)."""
        if self.pool is None:
            return 0.0
        from zdte_assets.core import timing

        try:
            return float(self.pool.submit(timing.peak_rss_mib).result(timeout=30))
        except Exception:
            return 0.0

    def close(self, wait: bool = True) -> None:
        """Stop the worker; on an error path without waiting for a study in progress."""
        if self.pool is not None:
            for future in self.futures.values():
                future.cancel()
            self.pool.shutdown(wait=wait, cancel_futures=True)
            self.pool = None


def run_replay(opts: ReplayOptions) -> dict[str, Any]:
    """Replay `opts` and write the report files; returns the report dict."""
    # Heavy imports only once the range is known to be replayable, so bad input fails fast.
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    ticker = opts.ticker.upper()
    source = source_from_settings(opts.source_kind, opts.source_path)
    days, warm = plan_range(source, opts)

    from zdte_assets.apps import html_report, report, study_prefetch
    from zdte_assets.core import timing

    store_dir = _prepare_output(opts.output)
    store_url = opts.storage_url or str(store_dir)
    feat_start = calendar.next_trading_day(warm, LOOKBACK)
    mondays = sorted({calendar.week_start(d) for d in days})
    prefetch = _Prefetch(
        [
            study_prefetch.StudyJob(
                source_kind=opts.source_kind,
                source_path=opts.source_path,
                ticker=ticker,
                monday=monday,
                first_feature_day=feat_start,
                n_trials=opts.n_trials,
                seed=0,
            )
            for monday in mondays
        ],
        enabled=opts.prefetch_studies,
        storage=optuna_storage_url(),
        tracking_uri=config.mlflow_tracking_uri(),
    )
    try:
        result = _replay(opts, ticker, source.name, days, warm, store_url, prefetch, t_wall)
        result["timing"]["study_worker_peak_rss_mib"] = prefetch.worker_peak_rss_mib()
    except BaseException:
        prefetch.close(wait=False)
        raise
    prefetch.close()
    result["timing"]["counts"]["studies_ahead_failed"] = prefetch.failed
    result["timing"]["peak_rss_mib"] = timing.peak_rss_mib()
    result["timing"]["compute_seconds"] = time.process_time() - t_cpu
    result["timing"]["wall_seconds"] = time.perf_counter() - t_wall
    result["timing"]["by_part"]["studies_ahead_second_core"] = prefetch.seconds
    result = report.clean(result)
    (opts.output / "report.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    (opts.output / "report.md").write_text(report.markdown(result))
    html_report.write_replay_page(opts.output, result)
    last_replay.remember(result, opts.output)
    return result


def optuna_storage_url() -> str:
    from zdte_assets.orchestration.assets.model import optuna_storage

    return optuna_storage()


def _replay(
    opts: ReplayOptions,
    ticker: str,
    source_name: str,
    days: list[dt.date],
    warm: dt.date,
    store_url: str,
    prefetch: _Prefetch,
    t_wall: float,
) -> dict[str, Any]:
    import dagster as dg

    from zdte_assets.apps import report
    from zdte_assets.core import timing
    from zdte_assets.definitions import build_definitions
    from zdte_assets.orchestration import ticks
    from zdte_assets.orchestration.jobs import asset_key
    from zdte_assets.orchestration.runner import local_instance, materialize_range
    from zdte_assets.orchestration.schedules import session_requests, weekly_requests
    from zdte_assets.orchestration.sensors import evaluate_drift
    from zdte_assets.storage import store as storage

    defs = build_definitions(
        tickers=[ticker],
        source_kind=opts.source_kind,
        source_path=opts.source_path,
        storage_url=store_url,
        start=warm,
    )
    instance = local_instance()
    replay_id = uuid.uuid4().hex[:8]
    tags = {"zdte/replay": replay_id}
    weekly_config = {f"{ticker}__tuned_params": {"n_trials": opts.n_trials}}
    counters = Counters()
    setup_seconds = time.perf_counter() - t_wall

    by_slot: dict[str, float] = {}

    def run(request: dg.RunRequest) -> str:
        t_run = time.perf_counter()
        result = _execute(defs, request, instance, tags, weekly_config)
        slot = request.tags.get("zdte/slot", "other")
        by_slot[slot] = by_slot.get(slot, 0.0) + time.perf_counter() - t_run
        counters.runs += 1
        if not result.success:  # execute_in_process raises on failure; this is belt and braces
            raise ReplayError(f"run {request.job_name} {request.partition_key} failed")
        if slot == "reoptimization":
            counters.reopt += 1
            counters.reopt_days.append(dt.date.fromisoformat(request.tags["zdte/drift_day"]))
        elif slot == "weekly":
            counters.weekly += 1
        elif slot == "session":
            counters.models += 1
        return result.run_id

    def requests(value: list[dg.RunRequest] | dg.SkipReason) -> list[dg.RunRequest]:
        return [] if isinstance(value, dg.SkipReason) else value

    # History before the first replayed day: bars, opens and feature rows (what was known then).
    t_warm = time.perf_counter()
    prev = calendar.previous_trading_day(days[0])
    materialize_range(
        defs,
        dg.AssetSelection.assets(asset_key(ticker, "daily_bar"), asset_key(ticker, "session_open")),
        warm.isoformat(),
        prev.isoformat(),
        instance,
        tags,
    )
    feat_start = calendar.next_trading_day(warm, LOOKBACK)
    materialize_range(
        defs,
        dg.AssetSelection.assets(asset_key(ticker, "features")),
        feat_start.isoformat(),
        prev.isoformat(),
        instance,
        tags,
    )
    warmup_seconds = time.perf_counter() - t_warm
    parts_before = timing.snapshot()  # the parts below are those of the replayed days

    # The sensor starts from what the instance already holds (earlier replays are not events here).
    cursor: dict[str, Any] = {}
    for key, name in (
        (asset_key(ticker, "drift_report"), "drift_id"),
        (asset_key(ticker, "tuned_params"), "tuned_id"),
    ):
        latest = instance.fetch_materializations(key, limit=1).records
        cursor[name] = latest[0].storage_id if latest else 0

    progress = _progress(opts.progress, len(days), ticker)
    drift_store = storage.store_from_url(store_url)
    sensor_log: list[str] = []
    t_days = time.perf_counter()
    waited = prefetch.wait_ready()
    try:
        for i, day in enumerate(days):
            monday = calendar.week_start(day)
            if i == 0 or monday != calendar.week_start(days[i - 1]):
                waited += prefetch.wait(monday)
                weekly = requests(weekly_requests(ticker, monday))
                ids = [run(rr) for rr in weekly]
                ticks.record(instance, ticks.weekly_tick(ticker, monday, ids, weekly))
            # One run holds the whole day: the model production's last retrain before `day`
            # fitted (rows before `day`, the newest study with data before `day`), the 09:30
            # prediction, then the evening bar, outcome and drift report. It stands for the
            # ticks of the three slot schedules.
            session = requests(session_requests(ticker, day))
            ids = [run(rr) for rr in session]
            for tick in ticks.session_ticks(ticker, day, ids, session):
                ticks.record(instance, tick)
            # The sensor's tick after the evening run. Its re-optimizations run now; the retrain
            # it asks for after a study is the next day's session run, which trains that model.
            reqs, cursor, notes = evaluate_drift(ticker, instance, cursor, drift_store)
            sensor_log += notes
            launched = [rr for rr in reqs if rr.tags.get("zdte/slot") == "reoptimization"]
            ids = [run(rr) for rr in launched]
            # Second evaluation: cursor past the re-optimization just stored (nothing to launch).
            if launched:
                _, cursor, more = evaluate_drift(ticker, instance, cursor, drift_store)
                sensor_log += more
            state = json.dumps(cursor, sort_keys=True)
            ticks.record(instance, ticks.sensor_tick(ticker, day, ids, launched, notes, state))
            progress(i + 1, day)
    finally:
        progress(None, None)
    days_seconds = time.perf_counter() - t_days

    t_report = time.perf_counter()
    days_frame = collect_days(storage.store_from_url(store_url), ticker, days, counters.reopt_days)
    days_frame.write_parquet(opts.output / "predictions.parquet")
    result: dict[str, Any] = {
        "ticker": ticker,
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "source": source_name,
        "trading_days": len(days),
        "metrics": report.compute_metrics(days_frame),
        "trading": report.trading_summary(days_frame),
        "lifecycle": {
            "weekly_optimizations": counters.weekly,
            "reoptimizations_triggered": counters.reopt,
            "reoptimization_days": [d.isoformat() for d in counters.reopt_days],
            "models_trained": counters.models,
            "dagster_runs": counters.runs,
            "sensor_log": sensor_log,
        },
        "storage": store_url,
        "dagster_home": str(config.dagster_home()),
        "replay_id": replay_id,
    }
    result["plots"] = report.write_plots(
        days_frame,
        opts.output,
        counters.reopt_days,
        result["metrics"]["calibration"]["pit_counts"],
    )
    parts, counts = timing.since(parts_before)
    in_runs = days_seconds - waited
    by_part = {name: parts.get(name, 0.0) for name in PARTS}
    by_part["dagster"] = max(0.0, in_runs - sum(by_part.values()))
    by_part["setup_and_imports"] = setup_seconds
    by_part["history_warmup"] = warmup_seconds
    by_part["waiting_for_studies_ahead"] = waited
    by_part["report"] = time.perf_counter() - t_report
    result["timing"] = {
        "wall_seconds": 0.0,
        "compute_seconds": 0.0,
        # What a plain Python loop would spend on the same computations on this core.
        "plain_equivalent_seconds": sum(parts.get(name, 0.0) for name in PLAIN_PARTS),
        "warmup_seconds": warmup_seconds,
        "by_part": by_part,
        "runs_by_slot": by_slot,
        "counts": counts,
    }
    return result


#: Parts measured inside the runs (see `zdte_assets.core.timing`); "dagster" is the rest of a run.
PARTS = ("studies", "training", "compute", "mlflow", "storage", "plots")
#: The parts a plain loop would also spend (no orchestration, tracking, storage or plots).
PLAIN_PARTS = ("studies", "training", "compute")


def collect_days(
    store: storage.Store, ticker: str, days: list[dt.date], reopt_days: list[dt.date]
) -> pl.DataFrame:
    """One row per replayed day from the stored prediction, outcome and drift report."""
    import polars as pl

    from zdte_assets.apps import report
    from zdte_assets.core.records import Outcome, Prediction
    from zdte_assets.monitoring.report import load_drift_report
    from zdte_assets.storage import store as storage
    from zdte_assets.storage.keys import asset_value_key
    from zdte_assets.trading.predictions import table_row

    rows = []
    for day in days:
        key = day.isoformat()
        pred = Prediction.from_json(
            storage.read_json(store, asset_value_key(ticker, "prediction", key, "json"))
        )
        out = Outcome.from_json(
            storage.read_json(store, asset_value_key(ticker, "prediction_outcome", key, "json"))
        )
        drift = load_drift_report(store, ticker, day)
        # The prediction's columns as in the published table, plus what the evening added.
        row = table_row(pred).to_dicts()[0]
        row.update(
            {
                "close": out.close,
                "prev_close": out.prev_close,
                "realized_return": out.realized_return,
                "pnl": out.pnl_usd,
                "cost_usd": out.cost_usd,
                "cost_per_share": pred.decision.cost_per_share,
                "pit": out.pit,
                "log_score": out.log_score,
                "z": out.z,
                "in_interval_50": out.in_interval_50,
                "in_interval": out.in_interval,
                "gate_n": pred.gate.n,
                "scale": pred.distribution.scale,
                "df": pred.distribution.df,
                "strike_increment": pred.decision.strike_increment,
                "expiry_today": pred.decision.expiry_today,
                "gate_dm_pvalue": pred.gate.dm_pvalue,
                "gate_pt_pvalue": pred.gate.pt_pvalue,
                "reason_code": pred.decision.reason_code,
                "beats_naive": pred.model.beats_naive,
                "drift_fired": ",".join(drift.fired),
                "reoptimized": day in reopt_days,
            }
        )
        rows.append({name: row[name] for name in report.DAY_COLUMNS})
    return pl.DataFrame(rows, schema=report.DAY_COLUMNS)


def _progress(enabled: bool, total: int, ticker: str) -> Any:
    """A rich progress bar on stderr (or nothing), driven as progress(done, day)."""
    if not enabled:
        return lambda done, day: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("replay {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    task = bar.add_task(ticker, total=total)
    bar.start()

    def update(done: int | None, day: dt.date | None) -> None:
        if done is None:
            bar.stop()
            return
        bar.update(task, completed=done, description=f"{ticker} {day}")

    return update
