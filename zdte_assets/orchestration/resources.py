"""Dagster resources: thin, configurable handles on the domain's market-data sources and stores."""

from __future__ import annotations

from functools import lru_cache

import dagster as dg

from zdte_assets.core import config
from zdte_assets.data.market_data import MarketDataSource, source_from_settings
from zdte_assets.storage.store import Store, store_from_url


@lru_cache(maxsize=16)
def _cached_source(kind: str, path: str | None) -> MarketDataSource:
    # Sources cache their file/sample in memory; sharing one per (kind, path) avoids re-reading it
    # for every partition of a run.
    return source_from_settings(kind, path)


class MarketDataResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Which market-data source the assets read: `sample`, `file` (with `path`) or `yfinance`."""

    kind: str = "sample"
    path: str | None = None

    def source(self) -> MarketDataSource:
        return _cached_source(self.kind, self.path)


class StoreResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The object store for things that are not asset values (the predictions layout in S3)."""

    url: str = ""

    def store(self) -> Store:
        return store_from_url(self.url or config.storage_url())
