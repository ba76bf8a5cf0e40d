"""The zdte code location: one asset graph per ticker, wired to resources chosen by environment.

`dagster dev -m zdte_assets.definitions` (or `dg dev`) loads `defs`; `build_definitions` is the
same factory with explicit settings, used by the CLI and the tests.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from zdte_assets.core import config
from zdte_assets.orchestration.assets.features import build_feature_assets
from zdte_assets.orchestration.assets.market import build_market_assets
from zdte_assets.orchestration.assets.model import build_model_assets
from zdte_assets.orchestration.assets.monitoring import build_monitoring_assets
from zdte_assets.orchestration.assets.prediction import build_prediction_assets
from zdte_assets.orchestration.io_manager import ZdteIOManager
from zdte_assets.orchestration.jobs import AssetJob, build_jobs
from zdte_assets.orchestration.partitions import (
    DEFAULT_START,
    trading_day_partitions,
    trading_week_partitions,
)
from zdte_assets.orchestration.resources import MarketDataResource, StoreResource, s3_resource
from zdte_assets.orchestration.run_watchdog import run_watchdog
from zdte_assets.orchestration.schedules import build_schedules
from zdte_assets.orchestration.sensors import build_sensors
from zdte_assets.orchestration.tracking import MlflowTracking


def build_definitions(
    tickers: list[str] | None = None,
    source_kind: str | None = None,
    source_path: str | None = None,
    storage_url: str | None = None,
    tracking_uri: str | None = None,
    start: dt.date | None = None,
) -> dg.Definitions:
    """Definitions for `tickers` reading `source_kind` and storing under `storage_url`; the
    partitions start at `start`, else ``ZDTE_HISTORY_START``, else the sample's first session."""
    start = start or config.history_start(DEFAULT_START)
    settings = config.source_settings()
    tickers = tickers or config.tickers()
    url = storage_url or config.storage_url()
    s3 = s3_resource()
    days = trading_day_partitions(start)
    weeks = trading_week_partitions(start)
    assets: list[dg.AssetsDefinition] = []
    jobs: list[AssetJob] = []
    schedules: list[dg.ScheduleDefinition] = []
    sensors: list[dg.SensorDefinition] = [run_watchdog]
    for ticker in tickers:
        assets += build_market_assets(ticker, days)
        assets += build_feature_assets(ticker, days)
        assets += build_model_assets(ticker, days, weeks)
        assets += build_prediction_assets(ticker, days)
        assets += build_monitoring_assets(ticker, days)
        ticker_jobs = build_jobs(ticker)
        jobs += ticker_jobs
        schedules += build_schedules(ticker)
        sensors += build_sensors(ticker, ticker_jobs)
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        # Every step of a run in the run's own process: the slots' steps follow each other
        # anyway, and a process per step re-imported the models' libraries for each (about
        # 20 s a step on two cores, most of the 09:30 run).
        executor=dg.in_process_executor,
        resources={
            "io_manager": ZdteIOManager(storage_url=url, s3=s3),
            "market_data": MarketDataResource(
                kind=source_kind or settings.kind, path=source_path or settings.path
            ),
            "store": StoreResource(url=url, s3=s3),
            "mlflow": MlflowTracking(tracking_uri=tracking_uri or config.mlflow_tracking_uri()),
        },
    )


defs = build_definitions()
