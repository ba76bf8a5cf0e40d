"""Dagster resources: thin, configurable handles on the domain's market-data sources and stores.

S3 is dagster-aws's ``S3Resource``: its fields (endpoint, region, retries; credentials when not
left to botocore) are the S3 configuration of every run, shown in the UI, and its client is the
one the IO manager and the store resource use. Code outside Dagster (the CLI, the replay's
readers, backups) builds the same kind of client with `zdte_assets.storage.store.make_s3_client`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from zdte_assets.core import config
from zdte_assets.data.market_data import MarketDataSource, source_from_settings
from zdte_assets.storage.store import Store, store_from_url


@lru_cache(maxsize=16)
def _cached_source(kind: str, path: str | None) -> MarketDataSource:
    # Sources cache their file/sample in memory; sharing one per (kind, path) avoids re-reading it
    # for every partition of a run.
    return source_from_settings(kind, path)


def s3_resource(settings: config.S3Settings | None = None) -> S3Resource:
    """The S3 resource configured like the plain client: from `settings` (default: the
    environment, `config.s3_settings`). Credentials stay unset, so boto3 finds them itself and
    they never appear in the resource's (visible) configuration."""
    s = settings or config.s3_settings()
    return S3Resource(
        endpoint_url=s.endpoint_url, region_name=s.region_name, max_attempts=s.max_attempts
    )


def s3_client_factory(s3: S3Resource | None) -> Callable[[], Any] | None:
    """What builds an S3 store's client: the resource's, or None for the environment's."""
    return None if s3 is None else s3.get_client


class MarketDataResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Which market-data source the assets read: `sample`, `file` (with `path`) or `yfinance`."""

    kind: str = "sample"
    path: str | None = None

    def source(self) -> MarketDataSource:
        return _cached_source(self.kind, self.path)


class StoreResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The object store for things that are not asset values (the predictions layout in S3);
    an ``s3://`` URL is reached through `s3` (default: a client from the environment)."""

    url: str = ""
    s3: S3Resource | None = None
    _store: Store | None = PrivateAttr(default=None)

    def store(self) -> Store:
        # One store (and so one S3 client) per resource instance: building a client parses
        # the S3 service model, which is not free on every call of a run.
        if self._store is None:
            self._store = store_from_url(
                self.url or config.storage_url(), s3_client_factory(self.s3)
            )
        return self._store
