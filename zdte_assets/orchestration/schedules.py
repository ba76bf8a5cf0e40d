"""Schedules in America/New_York that launch nothing on days the exchange is closed.

* morning 09:30 - session_open, features, prediction of today;
* evening 16:30 - daily_bar, prediction_outcome, drift_report of today;
* retrain 16:45 - daily_model of the next trading day (another partition, so another run);
* weekly Sunday 18:00 - tuned_params of the coming week.
"""

import datetime as dt
from collections.abc import Callable

import dagster as dg

from zdte_assets.core import calendar, config
from zdte_assets.orchestration.jobs import job_name, schedule_name

#: Crons in New York time; the request functions skip the days the exchange is closed.
MORNING_CRON = "30 9 * * 1-5"
EVENING_CRON = "30 16 * * 1-5"
RETRAIN_CRON = "45 16 * * 1-5"
WEEKLY_CRON = "0 18 * * 0"
#: Sessions in a Monday-to-Friday week, counted from its Monday (Monday + 4 days = Friday).
WEEKDAYS_AFTER_MONDAY = 4


def _local_day(context: dg.ScheduleEvaluationContext) -> dt.date:
    return context.scheduled_execution_time.astimezone(calendar.NY).date()


def run_key(ticker: str, slot: str, partition: dt.date) -> str:
    """One run per ticker, slot and partition, however often a tick is evaluated."""
    return f"{ticker}-{slot}-{partition.isoformat()}"


def _session_request(
    ticker: str, slot: str, day: dt.date, partition: dt.date
) -> list[dg.RunRequest] | dg.SkipReason:
    """One run of `slot`'s job for `partition`, launched only when `day` is a session."""
    if not calendar.is_trading_day(day):
        return dg.SkipReason(f"{day} is not an NYSE trading day")
    return [
        dg.RunRequest(
            run_key=run_key(ticker, slot, partition),
            job_name=job_name(ticker, slot),
            partition_key=partition.isoformat(),
            tags={"zdte/slot": slot, "zdte/ticker": ticker},
        )
    ]


def morning_requests(ticker: str, day: dt.date) -> list[dg.RunRequest] | dg.SkipReason:
    return _session_request(ticker, "morning", day, day)


def evening_requests(ticker: str, day: dt.date) -> list[dg.RunRequest] | dg.SkipReason:
    return _session_request(ticker, "evening", day, day)


def retrain_requests(ticker: str, day: dt.date) -> list[dg.RunRequest] | dg.SkipReason:
    """The model for the trading day after `day`, trained on everything up to `day`."""
    return _session_request(ticker, "retrain", day, calendar.next_trading_day(day))


def session_requests(ticker: str, day: dt.date) -> list[dg.RunRequest] | dg.SkipReason:
    """The whole trading day in one run (`zdte replay`): what the retrain before `day`, the
    morning and the evening slots materialize for `day`, in that order."""
    return _session_request(ticker, "session", day, day)


def weekly_requests(ticker: str, now: dt.date) -> list[dg.RunRequest] | dg.SkipReason:
    """Requests for the week starting the next Monday after `now` (or `now` itself on a Monday)."""
    monday = now + dt.timedelta(days=(7 - now.weekday()) % 7)
    sessions = calendar.trading_days(monday, monday + dt.timedelta(days=WEEKDAYS_AFTER_MONDAY))
    if not sessions:
        return dg.SkipReason(f"week of {monday} has no trading days")
    return [
        dg.RunRequest(
            run_key=run_key(ticker, "weekly", monday),
            job_name=job_name(ticker, "weekly"),
            partition_key=monday.isoformat(),
            tags={"zdte/slot": "weekly", "zdte/ticker": ticker, "zdte/trigger": "schedule"},
        )
    ]


def default_status() -> dg.DefaultScheduleStatus:
    """`ZDTE_AUTOMATION=on` starts schedules and sensors by themselves (production); off by default
    so a local `dagster dev` on the offline sample does not try to fetch today's market."""
    return (
        dg.DefaultScheduleStatus.RUNNING
        if config.automation_on()
        else dg.DefaultScheduleStatus.STOPPED
    )


RequestFn = Callable[[str, dt.date], "list[dg.RunRequest] | dg.SkipReason"]

#: slot -> (cron, request function, description); the slot also names the job.
SLOTS: dict[str, tuple[str, RequestFn, str]] = {
    "morning": (
        MORNING_CRON,
        morning_requests,
        "09:30 New York on trading days: open, features, prediction.",
    ),
    "evening": (
        EVENING_CRON,
        evening_requests,
        "16:30 New York on trading days: bar, outcome, drift report.",
    ),
    "retrain": (
        RETRAIN_CRON,
        retrain_requests,
        "16:45 New York on trading days: the next session's model.",
    ),
    "weekly": (
        WEEKLY_CRON,
        weekly_requests,
        "Sunday 18:00 New York: re-optimize for the coming week.",
    ),
}


def build_schedules(ticker: str) -> list[dg.ScheduleDefinition]:
    status = default_status()

    def make(slot: str, cron: str, requests: RequestFn, description: str) -> dg.ScheduleDefinition:
        @dg.schedule(
            name=schedule_name(ticker, slot),
            cron_schedule=cron,
            job_name=job_name(ticker, slot),
            execution_timezone=calendar.TIMEZONE,
            default_status=status,
            description=description,
        )
        def tick(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
            return requests(ticker, _local_day(context))

        return tick

    return [make(slot, *spec) for slot, spec in SLOTS.items()]
