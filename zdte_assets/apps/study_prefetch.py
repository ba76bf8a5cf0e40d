"""Weekly studies computed ahead, on a second core, for a replay.

A scheduled study of the week of Monday W uses only the rows through the session before W, so a
replay, which knows every bar in advance, can compute it while the first core is still replaying
the week before. The worker derives the rows from the source with the same domain functions the
assets use (`zdte_assets.model.lifecycle`) and hands the finished study back; the replay stores it in
the configured Optuna storage under the name the `tuned_params` asset uses (only the main
process ever writes that storage). When that asset runs, `study.run_study_stored` finds a
finished study whose data fingerprint equals the fingerprint of the rows the asset itself loaded,
and reuses it; if anything differs (other rows, other settings), the fingerprint differs and the
asset computes the study itself. Causality therefore never depends on this module: it can only
save time. Drift-triggered studies depend on the evening's report and are never prefetched.
Nothing here imports Dagster.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from zdte_assets.core import calendar, config
from zdte_assets.data.market_data import source_from_settings
from zdte_assets.features.rows import LOOKBACK
from zdte_assets.model import lifecycle, study, walkforward


@dataclass(frozen=True)
class StudyJob:
    """One scheduled weekly study: which rows (source, ticker, week) and which settings."""

    source_kind: str
    source_path: str | None
    ticker: str
    monday: dt.date
    first_feature_day: dt.date
    n_trials: int
    seed: int

    @property
    def as_of(self) -> dt.date:
        return lifecycle.week_as_of(self.monday)

    @property
    def study_name(self) -> str:
        return lifecycle.study_name(self.ticker, self.monday, self.as_of)


_features: dict[tuple[str, str | None, str], dict[dt.date, pl.DataFrame]] = {}


def study_rows_from_source(job: StudyJob) -> pl.DataFrame:
    """The labeled rows the `tuned_params` asset loads for `job`, built from the source."""
    source = source_from_settings(job.source_kind, job.source_path)
    start = lifecycle.study_window_start(job.monday)
    first = max(start, job.first_feature_day)
    # The first feature row needs the LOOKBACK sessions before it, as in the replay's warm-up.
    history_start = calendar.previous_trading_day(job.first_feature_day, LOOKBACK)
    bars = source.bars(job.ticker, history_start, job.as_of)
    days = [d for d in bars["date"].to_list() if first <= d <= job.as_of]
    cache = _features.setdefault((job.source_kind, job.source_path, job.ticker), {})
    todo = [d for d in days if d not in cache]
    if todo:
        opens = dict(zip(bars["date"].to_list(), bars["open"].to_list(), strict=True))
        frame = lifecycle.feature_frame(bars, opens, todo, config.known_splits(job.ticker))
        for row in frame.iter_slices(1):
            cache[row["date"][0]] = row
    features = pl.concat([cache[d] for d in days], how="vertical_relaxed")
    return lifecycle.study_rows(features, bars, job.monday, job.as_of)


def run_job(job: StudyJob) -> tuple[float, dict[str, Any], study.StudySnapshot]:
    """Compute `job`'s study in memory (run in the worker process): the seconds it took, the
    result as `StudyResult.to_dict()`, and the study for the main process to store."""
    start = time.perf_counter()
    rows = study_rows_from_source(job)
    result, snapshot = study.compute_study_snapshot(
        rows, walkforward.WalkForwardConfig(), job.n_trials, job.seed, job.study_name
    )
    return time.perf_counter() - start, result.to_dict(), snapshot


def prepare_stores(tracking_uri: str, optuna_url: str) -> None:
    """Create the MLflow and Optuna schemas of fresh local stores (run in the worker, first).

    A new MLflow SQLite store spends about 3 s in its migrations and a new Optuna one a fraction
    of that; done here, on the second core, while the replay loads its history. The replay
    waits for this before its first run touches either store, so two processes never migrate
    the same database.
    """
    if tracking_uri.startswith("sqlite:///"):
        from pathlib import Path

        from mlflow import MlflowClient

        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).search_experiments()
    if optuna_url.startswith("sqlite:///"):
        import optuna

        optuna.storages.RDBStorage(optuna_url)
