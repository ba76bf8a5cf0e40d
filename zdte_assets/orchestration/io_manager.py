"""Dagster I/O manager that keeps asset values as plain Parquet and JSON objects.

Values are stored where anyone can read them without Dagster (polars, DuckDB, boto3, a person),
one object per asset partition: ``AAPL/daily_bar/2024-06-11.parquet``. Pickle is never used:
it ties stored data to code versions and is unsafe to load. All storage work is delegated to
``zdte_assets.storage.store``, which owns atomic writes and error messages; this module only maps
Dagster's contexts onto object keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from zdte_assets.core import config, timing
from zdte_assets.orchestration.resources import s3_client_factory
from zdte_assets.storage.keys import EXTENSIONS, object_key
from zdte_assets.storage.store import (
    ObjectNotFound,
    Store,
    dumps_json,
    read_json,
    read_parquet,
    store_from_url,
)

#: Column that says which partition a row of a multi-partition frame belongs to.
DATE_COLUMN = "date"
PREVIEW_ROWS = 5

#: Metadata of an input declared as a window of upstream partitions (an ``AssetIn`` with a
#: ``TimeWindowPartitionMapping`` spanning several partitions): ``dg.AssetIn(key=...,
#: partition_mapping=..., metadata=WINDOW_INPUT)``. Such an input is always loaded as a window,
#: however many partitions it holds in a given run (one near the start of the partitions).
WINDOW_INPUT: Mapping[str, Any] = {"zdte/window": True}


def is_window_input(metadata: Mapping[str, Any] | None) -> bool:
    """Whether an input's declared metadata makes it a window (see `WINDOW_INPUT`)."""
    return bool((metadata or {}).get("zdte/window"))


class IOManagerError(ValueError):
    """A value cannot be stored or loaded as asked; the message names the asset and the URL."""


def _ext_for(obj: object) -> str:
    if isinstance(obj, pl.DataFrame):
        return "parquet"
    if isinstance(obj, dict | list):
        return "json"
    raise IOManagerError(
        f"ZdteIOManager stores polars DataFrames (Parquet) and dict/list values (JSON) only; "
        f"got {type(obj).__module__}.{type(obj).__qualname__}. Convert it (e.g. pl.from_pandas) "
        "or return a dict: values are never pickled."
    )


def _encode(obj: pl.DataFrame | dict[str, Any] | list[Any]) -> bytes:
    if isinstance(obj, pl.DataFrame):
        import io

        buf = io.BytesIO()
        obj.write_parquet(buf)
        return buf.getvalue()
    return dumps_json(obj)


def markdown_preview(df: pl.DataFrame, rows: int = PREVIEW_ROWS, max_cols: int = 10) -> str:
    """A small Markdown table for the Dagster UI; wide frames are cut to the first columns."""
    head = df.head(rows)
    cols = head.columns[:max_cols]
    more = " …" if len(head.columns) > max_cols else ""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |" + more, "|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in head.select(cols).iter_rows()
    ]
    return "\n".join(lines)


def _key_path(context: dg.InputContext | dg.OutputContext) -> list[str]:
    if context.has_asset_key:
        return list(context.asset_key.path)
    # Plain op outputs (no asset) are run-scoped, like Dagster's own I/O managers.
    out = context if isinstance(context, dg.OutputContext) else context.upstream_output
    if out is None:
        raise IOManagerError("ZdteIOManager: input has neither an asset key nor an upstream output")
    return ["_runs", *out.get_identifier()]


def _sorted_keys(partitions_def: dg.PartitionsDefinition | None, keys: Sequence[str]) -> list[str]:
    """Partition keys in time order (ISO date keys would sort alike, other formats need this)."""
    try:
        # ISO dates (every zdte partition key) sort as text; asking the partitions definition
        # walks its cron schedule per key, which cost more than reading the objects.
        return sorted(keys, key=dt.date.fromisoformat)
    except ValueError:
        pass
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return sorted(keys, key=lambda k: partitions_def.time_window_for_partition_key(k).start)
    return sorted(keys)


def _split_frame(
    df: pl.DataFrame, keys: Sequence[str], partitions_def: dg.PartitionsDefinition | None, what: str
) -> dict[str, pl.DataFrame]:
    """Rows of a multi-partition frame grouped by the partition their ``date`` falls in."""
    if DATE_COLUMN not in df.columns or df.schema[DATE_COLUMN] != pl.Date:
        raise IOManagerError(
            f"{what}: a run over {len(keys)} partitions returned a DataFrame without a "
            f"'{DATE_COLUMN}' column of type Date, so its rows cannot be assigned to partitions"
        )
    parts: dict[str, pl.DataFrame] = {}
    assigned = 0
    for key in keys:
        if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            window = partitions_def.time_window_for_partition_key(key)
            start: dt.date = window.start.date()
            end: dt.date = window.end.date()
            part = df.filter((pl.col(DATE_COLUMN) >= start) & (pl.col(DATE_COLUMN) < end))
        else:
            part = df.filter(pl.col(DATE_COLUMN).cast(pl.String) == key)
        parts[key] = part
        assigned += part.height
    empty = [k for k, p in parts.items() if p.height == 0]
    if empty:
        raise IOManagerError(
            f"{what}: no rows for partition {empty[0]}"
            + (f" (and {len(empty) - 1} more)" if len(empty) > 1 else "")
            + f" of the {len(keys)} partitions in this run; nothing was written"
        )
    if assigned != df.height:
        raise IOManagerError(
            f"{what}: {df.height - assigned} rows have a '{DATE_COLUMN}' outside the partitions "
            f"{keys[0]}..{keys[-1]} of this run; nothing was written"
        )
    return parts


class ZdteIOManager(dg.ConfigurableIOManager):
    """Stores asset values under ``storage_url`` as ``<asset/key/path>/<partition>.parquet|json``.

    ``storage_url`` is a local path or ``s3://bucket/prefix``; empty means "from the
    environment" (``zdte_assets.core.config.storage_url()``), resolved when a run starts so that the
    code location does not freeze the environment of its import.

    Shapes, so that range-aware assets (``BackfillPolicy.single_run``) need no special casing:

    - output of a run over several partitions: a DataFrame with a ``date`` (pl.Date) column,
      split by partition time window, or a dict ``{partition_key: value}``; every partition
      must get a value, else nothing is written. A one-partition run may return either the
      value itself or ``{partition_key: value}``.
    - input, by its declaration only, never by how many partitions a run happens to hold:
      an input declared a window (``metadata=WINDOW_INPUT``) is DataFrames concatenated in
      partition order or JSON values as ``{partition_key: value}``, also when the window holds
      one partition or none; partitions not stored are skipped, so the consumer checks
      completeness. Any other input is the stored value of its partition; in a range run
      DataFrames concatenate (the same shape), other values need a window declaration.

    ``s3`` is dagster-aws's S3 resource that builds the client for an ``s3://`` URL; left
    unset, the client is configured from the environment like outside Dagster.
    """

    storage_url: str = ""
    s3: S3Resource | None = None
    _store: Store | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._store = self._open()

    def _open(self) -> Store:
        return store_from_url(self.resolved_url(), s3_client_factory(self.s3))

    def resolved_url(self) -> str:
        return self.storage_url.strip() or config.storage_url()

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = self._open()
        return self._store

    # -- output ------------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        with timing.part("storage"):
            self._handle_output(context, obj)

    def _handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            # An asset that returns None (e.g. it only has side effects) stores nothing;
            # a downstream load then fails with a clear "not found" error.
            return
        if isinstance(obj, pl.LazyFrame):
            obj = obj.collect()
        ext = _ext_for(obj)
        path = _key_path(context)
        what = "/".join(path)
        values: dict[str | None, Any]
        if context.has_asset_partitions:
            keys = list(context.asset_partition_keys)
            partitions_def = context.asset_partitions_def
            if len(keys) > 1:
                values = {k: v for k, v in self._split(obj, keys, partitions_def, what).items()}
            elif isinstance(obj, dict) and len(obj) == 1 and set(obj) == set(keys):
                # A range-aware asset (BackfillPolicy.single_run) run for one partition returns
                # {partition_key: value}, the same shape as for several.
                values = {keys[0]: obj[keys[0]]}
            else:
                values = {keys[0]: obj}
        else:
            values = {None: obj}

        # Encode everything before the first write, so a bad value writes nothing at all.
        encoded = {pk: (_ext_for(v), _encode(v)) for pk, v in values.items()}
        urls: list[str] = []
        for pk, (e, data) in encoded.items():
            key = object_key(path, pk, e)
            self.store.write_bytes(key, data)
            for other in EXTENSIONS:
                if other != e:
                    # A value whose type changed must not leave the old object to be found first.
                    self.store.delete(object_key(path, pk, other))
            urls.append(self.store.url(key))

        metadata: dict[str, Any] = {}
        if len(urls) == 1:
            metadata["dagster/uri"] = urls[0]
        else:
            metadata["dagster/uri"] = self.store.url("/".join(path)) + "/"
            # A range run attaches this metadata to every partition's event: a list of every
            # URL would make a warm-up of n partitions store n**2 URLs in the event log.
            metadata["partitions_in_run"] = len(urls)
            metadata["first_url"] = urls[0]
            metadata["last_url"] = urls[-1]
        if ext == "parquet":
            assert isinstance(obj, pl.DataFrame)
            # A range run attaches the same metadata to every partition's materialization, so
            # the standard per-table row count is only set when it is that object's count.
            metadata["dagster/row_count" if len(urls) == 1 else "rows_in_run"] = obj.height
            metadata["storage_preview"] = dg.MetadataValue.md(markdown_preview(obj))
        context.add_output_metadata(metadata)

    @staticmethod
    def _split(
        obj: Any, keys: Sequence[str], partitions_def: dg.PartitionsDefinition | None, what: str
    ) -> Mapping[str, Any]:
        if isinstance(obj, pl.DataFrame):
            return _split_frame(obj, keys, partitions_def, what)
        if isinstance(obj, dict):
            missing = [k for k in keys if k not in obj]
            extra = sorted(set(obj) - set(keys))
            if missing or extra:
                raise IOManagerError(
                    f"{what}: a run over {len(keys)} partitions must return a dict keyed by "
                    f"exactly those partition keys; missing {missing[:3]}, unexpected {extra[:3]}; "
                    "nothing was written"
                )
            return {k: obj[k] for k in keys}
        raise IOManagerError(
            f"{what}: a run over {len(keys)} partitions must return a DataFrame with a "
            f"'{DATE_COLUMN}' column or a dict keyed by partition key, got {type(obj).__name__}"
        )

    # -- input -------------------------------------------------------------------------------

    def load_input(self, context: dg.InputContext) -> Any:
        with timing.part("storage"):
            return self._load_input(context)

    def _load_input(self, context: dg.InputContext) -> Any:
        path = _key_path(context)
        if not context.has_asset_partitions:
            return self._load_one(path, None)
        keys = list(context.asset_partition_keys)
        if is_window_input(context.definition_metadata):
            return self._load_many(context, path, keys)
        if len(keys) == 1:
            return self._load_one(path, keys[0])
        # A range run of a range-aware asset (BackfillPolicy.single_run): its frames are one
        # frame, the same shape as one partition's; other values have no such shape.
        value = self._load_many(context, path, keys)
        if not isinstance(value, pl.DataFrame):
            raise IOManagerError(
                f"{'/'.join(path)}: an input over {len(keys)} partitions of JSON values must be "
                "declared a window (AssetIn(..., metadata=WINDOW_INPUT)) to be loaded as "
                "{partition_key: value}"
            )
        return value

    def _load_one(self, path: Sequence[str], partition_key: str | None) -> Any:
        for ext in EXTENSIONS:
            key = object_key(path, partition_key, ext)
            try:
                return self._decode(key, ext)
            except ObjectNotFound:
                continue
        base = self.store.url(object_key(path, partition_key, "")).removesuffix(".")
        what = "/".join(path) + (f" partition {partition_key}" if partition_key else "")
        raise IOManagerError(
            f"no stored value for {what}: neither {base}.parquet nor {base}.json exists "
            "(materialize it first)"
        )

    def _decode(self, key: str, ext: str) -> Any:
        if ext == "parquet":
            return read_parquet(self.store, key)
        return read_json(self.store, key)

    def _load_many(self, context: dg.InputContext, path: Sequence[str], keys: list[str]) -> Any:
        """A window of upstream partitions; missing ones are skipped for the caller to judge."""
        wanted = set(keys)
        base = "/".join(path)
        stored: dict[str, set[str]] = {}
        # One listing instead of two lookups per partition (the window may be long).
        for key in self.store.list_keys(base + "/"):
            parent, _, name = key.rpartition("/")
            stem, _, ext = name.rpartition(".")
            if parent == base and stem in wanted and ext in EXTENSIONS:
                stored.setdefault(stem, set()).add(ext)
        # Same preference as a single load: Parquet first.
        found = {k: next(e for e in EXTENSIONS if e in es) for k, es in stored.items()}
        ordered = _sorted_keys(context.asset_partitions_def, list(found))
        exts = {found[k] for k in ordered}
        if len(exts) > 1:
            raise IOManagerError(
                f"{base}: partitions {ordered[0]}..{ordered[-1]} mix Parquet and JSON "
                "objects; re-materialize them with one value type"
            )
        if not ordered:
            context.log.warning(
                f"none of the {len(keys)} requested partitions of {base} is stored "
                f"under {self.store.url(base)}/"
            )
            expected = getattr(context.dagster_type, "typing_type", None)
            return pl.DataFrame() if expected is pl.DataFrame else {}
        if len(ordered) < len(keys):
            context.log.info(
                f"{base}: {len(keys) - len(ordered)} of {len(keys)} requested "
                "partitions are not stored and were skipped"
            )
        if exts == {"parquet"}:
            frames = [read_parquet(self.store, object_key(path, k, "parquet")) for k in ordered]
            return pl.concat(frames, how="vertical_relaxed")
        return {k: read_json(self.store, object_key(path, k, "json")) for k in ordered}
