"""Settings read from the environment: the only switch between the local and production profiles.

Local default: everything under one data directory (``ZDTE_HOME``, default ``./.zdte``), no
service needed. Production: ``ZDTE_STORAGE_URL=s3://bucket/prefix`` plus the standard AWS,
MLflow and Dagster variables.

This is the one module that reads the environment: every other module asks a function here, so
the settings a process honours are listed in one file. Other modules may still *set* variables
(for a library that reads them itself, or for a child process).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zdte_assets.data.adjustment import Split

#: Weeks of history the weekly study may draw from (enough for 30 + 4 x 10 rows and for the
#: longest retraining window); shared by the `tuned_params` asset and the replay's warm-up.
STUDY_LOOKBACK_WEEKS = 30


def _get(name: str, default: str = "", env: Mapping[str, str] | None = None) -> str:
    """One variable, stripped; `env` stands in for the process environment (tests, the stack)."""
    return (os.environ if env is None else env).get(name, default).strip()


def environment() -> dict[str, str]:
    """A copy of the whole process environment, for the two readers that need all of it: a child
    process, which inherits it, and the stack, whose settings file (docker/stack.env) names the
    variables that override it."""
    return dict(os.environ)


def zdte_home(env: Mapping[str, str] | None = None) -> Path:
    """Local data directory (``ZDTE_HOME``, default ``./.zdte``); created on first use."""
    return Path(_get("ZDTE_HOME", ".zdte", env) or ".zdte").expanduser().resolve()


def storage_url() -> str:
    """Where asset values live: a local path or ``s3://bucket/prefix``."""
    url = _get("ZDTE_STORAGE_URL")
    return url or str(zdte_home() / "storage")


def configured_storage_url() -> str | None:
    """``ZDTE_STORAGE_URL`` when it is set: a store someone chose, possibly production's."""
    return _get("ZDTE_STORAGE_URL") or None


def mlflow_tracking_uri() -> str:
    """The standard MLFLOW_TRACKING_URI, or a SQLite store in the data directory."""
    uri = _get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{zdte_home() / 'mlflow.db'}"


def dagster_home() -> Path:
    """The Dagster instance directory: the standard ``DAGSTER_HOME``, else ``<ZDTE_HOME>/dagster``."""
    home = _get("DAGSTER_HOME")
    return Path(home).expanduser().resolve() if home else zdte_home() / "dagster"


#: The variables that point runs, models and studies at a configured (possibly production) store.
CONFIGURED_STORES = ("DAGSTER_HOME", "MLFLOW_TRACKING_URI", "ZDTE_OPTUNA_STORAGE")


def configured_stores() -> dict[str, str]:
    """Those of `CONFIGURED_STORES` that are set (non-empty), with their values."""
    return {name: value for name in CONFIGURED_STORES if (value := _get(name))}


def automation_on() -> bool:
    """``ZDTE_AUTOMATION=on`` (or 1, true, running): schedules and sensors start by themselves."""
    return _get("ZDTE_AUTOMATION", "off").lower() in {"on", "1", "true", "running"}


def expiry_rules(env: Mapping[str, str] | None = None) -> str:
    """``ZDTE_EXPIRY_RULES`` as set (JSON text or a file path), empty when unset."""
    return _get("ZDTE_EXPIRY_RULES", "", env)


def stack_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where `zdte stack` keeps its state: ``ZDTE_STACK_DIR``, else ``<ZDTE_HOME>/stack``."""
    raw = _get("ZDTE_STACK_DIR", "", env)
    return Path(raw).expanduser().resolve() if raw else zdte_home(env) / "stack"


@dataclass(frozen=True)
class AuthGateSettings:
    """Where the login gate listens (``ZDTE_BIND``, ``ZDTE_AUTHGATE_PORT``)."""

    host: str
    port: int


def authgate_settings() -> AuthGateSettings:
    port = _get("ZDTE_AUTHGATE_PORT", "9180")
    try:
        return AuthGateSettings(host=_get("ZDTE_BIND", "127.0.0.1"), port=int(port))
    except ValueError:
        raise ValueError(f"ZDTE_AUTHGATE_PORT={port!r}: expected a port number") from None


@dataclass(frozen=True)
class S3Settings:
    """How to reach S3, from the standard AWS variables: the endpoint (``AWS_ENDPOINT_URL_S3``,
    then ``AWS_ENDPOINT_URL``; None means AWS itself), the region (``AWS_REGION``, then
    ``AWS_DEFAULT_REGION``) and the retries (``AWS_MAX_ATTEMPTS``, default 5, and
    ``AWS_RETRY_MODE``, default standard). Credentials are not settings of zdte: botocore finds
    them itself (variables, shared files or an instance role)."""

    endpoint_url: str | None
    region_name: str | None
    max_attempts: int
    retry_mode: str


def s3_settings() -> S3Settings:
    attempts = _get("AWS_MAX_ATTEMPTS", "5")
    try:
        max_attempts = int(attempts)
    except ValueError:
        raise ValueError(f"AWS_MAX_ATTEMPTS={attempts!r}: expected a whole number") from None
    return S3Settings(
        endpoint_url=_get("AWS_ENDPOINT_URL_S3") or _get("AWS_ENDPOINT_URL") or None,
        region_name=_get("AWS_REGION") or _get("AWS_DEFAULT_REGION") or None,
        max_attempts=max(1, max_attempts),
        retry_mode=_get("AWS_RETRY_MODE", "standard") or "standard",
    )


def known_splits(ticker: str) -> list[Split]:
    """Splits of `ticker` listed in the CSV file ``ZDTE_SPLITS`` (columns ticker, date, ratio as
    shares after / before, e.g. ``AAPL,2020-08-31,4``); none when the variable is unset.

    The table settles gaps the data cannot (see `adjustment`); a malformed file is one clear error.
    """
    path = _get("ZDTE_SPLITS")
    if not path:
        return []
    import csv

    from zdte_assets.data.adjustment import Split

    out = []
    try:
        with open(path, newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    if row["ticker"].strip().upper() != ticker.upper():
                        continue
                    ratio = float(row["ratio"])
                    if not ratio > 0:
                        raise ValueError("ratio must be positive")
                    out.append(Split(dt.date.fromisoformat(row["date"].strip()), ratio, "table"))
                except (KeyError, ValueError, AttributeError) as exc:
                    raise ValueError(f"ZDTE_SPLITS {path} line {n}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"ZDTE_SPLITS {path}: {exc.strerror}") from None
    return sorted(out, key=lambda s: s.date)


def history_start(default: dt.date) -> dt.date:
    """First trading day of the partitions (``ZDTE_HISTORY_START``, ISO date; `default` when
    unset). A desk starting on a new host backfills from here, so a later start means a shorter
    first backfill; it must leave the weekly study its lookback before the first traded week."""
    raw = _get("ZDTE_HISTORY_START")
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"ZDTE_HISTORY_START={raw!r}: expected a date as YYYY-MM-DD") from None


def tickers() -> list[str]:
    """Tickers the code location serves (``ZDTE_TICKERS``, comma separated; default AAPL)."""
    raw = _get("ZDTE_TICKERS", "AAPL")
    out = [t.strip().upper() for t in raw.split(",") if t.strip()]
    return out or ["AAPL"]


@dataclass(frozen=True)
class SourceSettings:
    """Market-data source chosen by ``ZDTE_SOURCE`` (sample, file, yfinance) and ``ZDTE_SOURCE_PATH``."""

    kind: str
    path: str | None


def source_settings() -> SourceSettings:
    kind = _get("ZDTE_SOURCE", "sample").lower() or "sample"
    path = _get("ZDTE_SOURCE_PATH") or None
    return SourceSettings(kind=kind, path=path)


def optuna_storage() -> str:
    """Where weekly studies are kept: ``ZDTE_OPTUNA_STORAGE`` (e.g. ``postgresql://...``) or a
    SQLite file in the data directory (created on first use)."""
    url = os.environ.get("ZDTE_OPTUNA_STORAGE", "").strip()
    if url:
        return url
    zdte_home().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{zdte_home() / 'optuna.db'}"
