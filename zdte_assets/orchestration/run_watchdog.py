"""The run watchdog: a run whose worker died with its code server is marked failed and retried.

With the `DefaultRunLauncher` each run is a child process of the code server. When only the
worker dies (killed, out of memory), the code server notices and fails the run itself; but when
the code server dies too (a crash, a restart, the host's OOM killer taking the group), nobody is
left who knows the worker, Dagster's run monitoring cannot check its health, and the run stays
STARTED until `max_runtime_seconds` (hours), nothing retried. This sensor is evaluated inside
the code server, on the host of the workers, where the worker's process id (from the run's
"Started process for run" event) can be checked; a dead worker's run is reported failed, and
the instance's `run_retries` launches it again (the retrain and the study are idempotent, see
`defs.model`). Runs left NOT_STARTED or STARTING by a launch that failed half-way are Dagster's
run monitoring's (`start_timeout_seconds` in `dagster.yaml`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg

from zdte_assets.orchestration.schedules import default_status

#: The code location whose runs this code server's workers execute.
LOCATION = "zdte"
#: The engine event a run worker writes once its process runs (see dagster's run launcher).
STARTED_PREFIX = "Started process for run"


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _uptime(proc: Path = Path("/proc")) -> float:
    """Seconds since boot, on the clock a process's start time is counted on."""
    return float((proc / "uptime").read_text().split()[0])


def worker_alive(pid: int, started_by: float, proc: Path = Path("/proc")) -> bool:
    """Whether process `pid` exists, is not a zombie, and was started no later than
    `started_by` (epoch seconds): a later start time means the id was reused by another
    process after the worker died."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return False
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_ticks = fields[0], int(fields[19])
    if state in ("Z", "X"):
        return False
    # The process's age on the boot clock, subtracted from now: the boot time in /proc/stat is
    # whole seconds of the wall clock at boot, which drifts from the boot clock (by seconds on a
    # host whose wall clock was stepped or slewed since), more than the tolerance below.
    started = time.time() - (_uptime(proc) - start_ticks / _clock_ticks())
    return started <= started_by + 1.0


def worker_of(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, time of the event) of the run's worker, or None before the worker reported."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is None or not (event.message or "").startswith(STARTED_PREFIX):
            continue
        pid = event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return int(str(pid.value)), entry.timestamp
    return None


@dg.sensor(
    name="run_watchdog",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus(default_status().value),
    description=(
        "Marks a run failed when its worker process is gone (killed, out of memory), so that "
        "run retries launch it again instead of it staying 'in progress' for hours."
    ),
)
def run_watchdog(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    instance = context.instance
    started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    failed = []
    for run in started:
        origin = run.remote_job_origin
        if origin is None or origin.location_name != LOCATION:
            continue  # in-process runs (`zdte replay`), or another code server's workers
        worker = worker_of(instance, run.run_id)
        if worker is None or worker_alive(*worker):
            continue
        # The worker writes the run's last event before it exits: once it is gone, a run
        # still STARTED now was abandoned (not finished between the listing and the check).
        latest = instance.get_run_by_id(run.run_id)
        if latest is None or latest.status != dg.DagsterRunStatus.STARTED:
            continue
        pid = worker[0]
        message = (
            f"The run worker (pid {pid}) is gone (killed or crashed) while the run was in "
            "progress; marked failed by the run watchdog so that it can be retried."
        )
        instance.report_run_failed(run, message)
        context.log.warning(f"run {run.run_id} ({run.job_name}): {message}")
        failed.append(run.run_id[:8])
    if failed:
        return dg.SkipReason(f"marked failed: {', '.join(failed)}")
    return dg.SkipReason(f"{len(started)} run(s) in progress, every worker alive")
