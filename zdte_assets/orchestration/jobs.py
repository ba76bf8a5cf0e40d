"""Asset jobs per ticker, one per moment of the trading day (see `schedules`), plus the
`session` job that the replay runs: every daily asset of one trading day in a single run.

This module is also the one place the names Dagster knows our definitions by are spelled: asset
keys, job, schedule and sensor names are built here from the ticker and the slot, and nothing
parses them back (a job's slot travels as the `zdte/slot` tag, not as a suffix of its name).

Every daily asset has the same backfill policy, `DAILY_BACKFILL` (one run for a range of
sessions), so the `morning`, `evening` and `session` jobs, which mix market data with the
per-session assets, resolve to one policy. The market and feature assets compute a range in one
run (a history backfill is a few runs, not one per session and asset). The per-session assets
(model, prediction, outcome, drift report) take one session per run (`partitions.one_session`
refuses a range with a one-line reason): a day's prediction reads the outcomes before it, so
sessions are computed one after the other, as the schedules and `zdte replay` launch them.
"""

from typing import Any

import dagster as dg

#: What `dg.define_asset_job` returns; Dagster does not export that class (it is resolved into a
#: job when the definitions load), so it is typed loosely here.
AssetJob = Any

#: The backfill policy of every daily asset (see the module docstring). `backfill_policy` is a
#: beta parameter of `dg.asset`; pyproject and the CLI name that one warning.
DAILY_BACKFILL = dg.BackfillPolicy.single_run()

#: Daily assets each slot materializes, in the order the trading day needs them.
SLOT_ASSETS: dict[str, tuple[str, ...]] = {
    "morning": ("session_open", "features", "prediction"),
    "evening": ("daily_bar", "prediction_outcome", "drift_report"),
    "retrain": ("daily_model",),
    "weekly": ("tuned_params",),
}
#: The replay's one run per trading day: the model for t (what the last retrain before t
#: produced), then the morning, then the evening. Step priorities keep that order.
SESSION_ASSETS: tuple[str, ...] = (
    *SLOT_ASSETS["retrain"],
    *SLOT_ASSETS["morning"],
    *SLOT_ASSETS["evening"],
)
#: Step priority by slot inside a `session` run (higher runs first among ready steps).
SLOT_PRIORITY = {"retrain": 2, "morning": 1, "evening": 0}
#: Every job of a ticker: the four scheduled slots and the replay's `session`.
JOB_SLOTS: tuple[str, ...] = (*SLOT_ASSETS, "session")


def asset_key(ticker: str, asset: str) -> dg.AssetKey:
    """The key of one of a ticker's assets: ``<TICKER>/<asset>`` (storage follows the same path,
    see `zdte_assets.storage.keys.asset_value_key`)."""
    return dg.AssetKey([ticker, asset])


def job_name(ticker: str, slot: str) -> str:
    """The job of one slot (`JOB_SLOTS`) of a ticker."""
    if slot not in JOB_SLOTS:
        raise ValueError(f"job slot {slot!r}: expected one of {', '.join(JOB_SLOTS)}")
    return f"{ticker}_{slot}"


def job_names(ticker: str) -> dict[str, str]:
    """Job name of each slot of a ticker."""
    return {slot: job_name(ticker, slot) for slot in JOB_SLOTS}


def schedule_name(ticker: str, slot: str) -> str:
    """The schedule that launches `slot`'s job of a ticker."""
    return f"{job_name(ticker, slot)}_schedule"


def sensor_name(ticker: str) -> str:
    """The drift sensor of a ticker."""
    return f"{ticker}_drift_sensor"


def step_priority(asset_name: str) -> dict[str, str]:
    """`op_tags` that order a `session` run's steps as the schedules would."""
    for slot, names in SLOT_ASSETS.items():
        if asset_name in names and slot in SLOT_PRIORITY:
            return {"dagster/priority": str(SLOT_PRIORITY[slot])}
    return {}


#: What each job does, as the UI shows it.
JOB_DESCRIPTIONS: dict[str, str] = {
    "morning": "09:30: the open, the feature row and the prediction of today.",
    "evening": "After the close: today's bar, the outcome of the morning call and the drift report.",
    "retrain": "The model for a trading day, trained on everything before it.",
    "weekly": "The weekly re-optimization (also launched by the drift sensor).",
    "session": (
        "A whole trading day in one run (used by `zdte replay`): the day's model, the "
        "morning prediction, then the evening bar, outcome and drift report."
    ),
}


def build_jobs(ticker: str) -> list[AssetJob]:
    """One asset job per slot; each job's partitions are those of the assets it selects (daily,
    or weekly for `weekly`), so they are not repeated here."""
    assets = {**SLOT_ASSETS, "session": SESSION_ASSETS}
    return [
        dg.define_asset_job(
            job_name(ticker, slot),
            dg.AssetSelection.assets(*(asset_key(ticker, a) for a in assets[slot])),
            description=JOB_DESCRIPTIONS[slot],
        )
        for slot in JOB_SLOTS
    ]


def asset_op_name(ticker: str, asset: str) -> str:
    """The op name of a ticker's asset (its key ``[ticker, asset]`` joined as Dagster does), the
    key of its config under ``run_config["ops"]``; the one place it is spelled."""
    return dg.AssetKey([ticker, asset]).to_python_identifier()
