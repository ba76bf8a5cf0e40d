"""Settings read from the environment: the only switch between the local and production profiles.

Local default: everything under one data directory (``ZDTE_HOME``, default ``./.zdte``), no
service needed. Production: ``ZDTE_STORAGE_URL=s3://bucket/prefix`` plus the standard AWS,
MLflow and Dagster variables.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zdte_assets.data.adjustment import Split

#: Weeks of history the weekly study may draw from (enough for 30 + 4 x 10 rows and for the
#: longest retraining window); shared by the `tuned_params` asset and the replay's warm-up.
STUDY_LOOKBACK_WEEKS = 30


def zdte_home() -> Path:
    """Local data directory; created on first use."""
    home = Path(os.environ.get("ZDTE_HOME", ".zdte")).expanduser().resolve()
    return home


def storage_url() -> str:
    """Where asset values live: a local path or ``s3://bucket/prefix``."""
    url = os.environ.get("ZDTE_STORAGE_URL", "").strip()
    return url or str(zdte_home() / "storage")


def mlflow_tracking_uri() -> str:
    """The standard MLFLOW_TRACKING_URI, or a SQLite store in the data directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if uri:
        return uri
    return f"sqlite:///{zdte_home() / 'mlflow.db'}"


def known_splits(ticker: str) -> list[Split]:
    """Splits of `ticker` listed in the CSV file ``ZDTE_SPLITS`` (columns ticker, date, ratio as
    shares after / before, e.g. ``AAPL,2020-08-31,4``); none when the variable is unset.

    The table settles gaps the data cannot (see `adjustment`); a malformed file is one clear error.
    """
    path = os.environ.get("ZDTE_SPLITS", "").strip()
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
    raw = os.environ.get("ZDTE_HISTORY_START", "").strip()
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"ZDTE_HISTORY_START={raw!r}: expected a date as YYYY-MM-DD") from None


def tickers() -> list[str]:
    """Tickers the code location serves (``ZDTE_TICKERS``, comma separated; default AAPL)."""
    raw = os.environ.get("ZDTE_TICKERS", "AAPL")
    out = [t.strip().upper() for t in raw.split(",") if t.strip()]
    return out or ["AAPL"]


@dataclass(frozen=True)
class SourceSettings:
    """Market-data source chosen by ``ZDTE_SOURCE`` (sample, file, yfinance) and ``ZDTE_SOURCE_PATH``."""

    kind: str
    path: str | None


def source_settings() -> SourceSettings:
    kind = os.environ.get("ZDTE_SOURCE", "sample").strip().lower() or "sample"
    path = os.environ.get("ZDTE_SOURCE_PATH", "").strip() or None
    return SourceSettings(kind=kind, path=path)


def optuna_storage() -> str:
    """Where weekly studies are kept: ``ZDTE_OPTUNA_STORAGE`` (e.g. ``postgresql://...``) or a
    SQLite file in the data directory (created on first use)."""
    url = os.environ.get("ZDTE_OPTUNA_STORAGE", "").strip()
    if url:
        return url
    zdte_home().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{zdte_home() / 'optuna.db'}"
