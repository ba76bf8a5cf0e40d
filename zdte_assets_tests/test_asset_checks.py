"""The `daily_bar` asset checks as the instance records them: pass on good bars, fail on bad ones.

Bars that break the file's rules (high below low, a missing close, ...) never reach the checks:
validation fails their partition first (see test_bad_bar_partition.py). These are the bars that
pass validation and still deserve a person's look: an exact repeat of the previous session (a
stale feed), an overnight jump beyond the gap threshold, and a split-sized gap that no volume
change corroborates. Each is planted on one session of a synthetic series; the results are read
back from the instance's event log, where the UI and alerting read them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from zdte_assets.data import synthetic
from zdte_assets.definitions import build_definitions
from zdte_assets.orchestration.checks import GAP_THRESHOLD
from zdte_assets.orchestration.runner import QUIET

TICKER = "CHK"
N = 12
BAD = 6  # index of the session the bad bar is planted on
CHECKS = ("ohlc_consistent", "overnight_gap", "not_stale")
PRICES = ("open", "high", "low", "close")


def good_bars() -> pl.DataFrame:
    return synthetic.synthetic_bars("noise", N, seed=5, start=dt.date(2024, 3, 1)).drop("adj_close")


def repeat_previous(bars: pl.DataFrame) -> pl.DataFrame:
    """Session BAD is a copy of session BAD - 1 (all of OHLCV): a stale feed."""
    cols = [*PRICES, "volume"]
    rows = bars.to_dicts()
    rows[BAD].update({c: rows[BAD - 1][c] for c in cols})
    return pl.DataFrame(rows, schema=bars.schema)


def scale_from(bars: pl.DataFrame, factor: float) -> pl.DataFrame:
    """Every price from session BAD on multiplied by `factor`, volume unchanged: one overnight
    gap of that factor, at BAD only."""
    after = pl.int_range(pl.len()) >= BAD
    return bars.with_columns(
        pl.when(after).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in PRICES
    )


@dataclass(frozen=True)
class Checked:
    days: list[dt.date]
    instance: dg.DagsterInstance
    #: Check name -> partition -> evaluation, as the in-process results reported them.
    reported: dict[str, dict[str, dg.AssetCheckEvaluation]]

    def recorded(self, check: str, day: dt.date) -> dg.AssetCheckEvaluation:
        """The evaluation of `check` on `day`'s bar, from the instance's event log.

        The checks are not partitioned (their specs have no partitions definition), so an
        evaluation names no partition; it names the materialization it checked, and that one
        names the partition.
        """
        bar = dg.AssetKey([TICKER, "daily_bar"])
        materialized = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=bar, asset_partitions=[day.isoformat()]), limit=1
        ).records
        assert materialized, f"daily_bar {day} was not materialized"
        history = self.instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(bar, check), limit=1000
        )
        found = [
            r.evaluation
            for r in history
            if isinstance(r.evaluation, dg.AssetCheckEvaluation)
            and r.evaluation.target_materialization_data is not None
            and r.evaluation.target_materialization_data.storage_id == materialized[0].storage_id
        ]
        assert len(found) == 1, f"{len(found)} evaluations of {check} on {day} in the instance"
        return found[0]


def materialize_each_day(tmp_path: Path, bars: pl.DataFrame) -> Checked:
    """One run per session, as the evening schedule runs them, in one instance."""
    path = tmp_path / "bars.csv"
    bars.write_csv(path)
    days = bars["date"].to_list()
    defs = build_definitions(
        tickers=[TICKER],
        source_kind="file",
        source_path=str(path),
        storage_url=str(tmp_path / "storage"),
        start=days[0],
    )
    job = dg.define_asset_job(
        "check_test", selection=dg.AssetSelection.assets(dg.AssetKey([TICKER, "daily_bar"]))
    )
    resolved = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(job.name)
    instance = dg.DagsterInstance.ephemeral()
    reported: dict[str, dict[str, dg.AssetCheckEvaluation]] = {c: {} for c in CHECKS}
    for day in days[1:]:  # the first session has no previous one to compare with
        result = resolved.execute_in_process(
            run_config=QUIET, instance=instance, partition_key=day.isoformat()
        )
        assert result.success
        for evaluation in result.get_asset_check_evaluations():
            reported[evaluation.check_name][day.isoformat()] = evaluation
    return Checked(days[1:], instance, reported)


def test_on_good_bars_every_check_passes_on_every_session(tmp_path: Path) -> None:
    checked = materialize_each_day(tmp_path, good_bars())
    for check in CHECKS:
        assert set(checked.reported[check]) == {d.isoformat() for d in checked.days}
        for day in checked.days:
            evaluation = checked.recorded(check, day)
            assert evaluation.passed, (check, day, evaluation.metadata)
            assert evaluation == checked.reported[check][day.isoformat()]
    assert checked.recorded("ohlc_consistent", checked.days[0]).metadata["checked"].value == 1


@dataclass(frozen=True)
class BadCase:
    corrupt: Callable[[pl.DataFrame], pl.DataFrame]
    check: str
    metadata_key: str
    severity: dg.AssetCheckSeverity


BAD_CASES = {
    "stale repeat": BadCase(
        repeat_previous, "not_stale", "repeated_days", dg.AssetCheckSeverity.ERROR
    ),
    # Beyond the threshold but far from any split ratio: a warning naming the day.
    "overnight jump": BadCase(
        lambda b: scale_from(b, 1.0 + 1.5 * GAP_THRESHOLD),
        "overnight_gap",
        "gap_days",
        dg.AssetCheckSeverity.WARN,
    ),
    # Prices halve with the share volume unchanged: a split or a crash, nothing says which.
    "uncorroborated halving": BadCase(
        lambda b: scale_from(b, 0.5), "overnight_gap", "ambiguous_gaps", dg.AssetCheckSeverity.ERROR
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_a_bad_bar_fails_its_check_on_its_day_only(case: str, tmp_path: Path) -> None:
    spec = BAD_CASES[case]
    bars = spec.corrupt(good_bars())
    checked = materialize_each_day(tmp_path, bars)
    bad_day = bars["date"][BAD]
    evaluation = checked.recorded(spec.check, bad_day)
    assert not evaluation.passed
    assert evaluation.severity == spec.severity
    assert bad_day.isoformat() in str(evaluation.metadata[spec.metadata_key].value)
    assert evaluation == checked.reported[spec.check][bad_day.isoformat()]
    # Every other check of that day, and every check of the other days, passes.
    for check in CHECKS:
        for day in checked.days:
            if (check, day) == (spec.check, bad_day):
                continue
            assert checked.recorded(check, day).passed, (check, day)
