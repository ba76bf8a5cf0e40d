"""Run asset selections through Dagster from plain Python: the persistent local instance and
partition-range execution that the CLI and replay share."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from zdte_assets.core import config

#: Console logging of in-process runs at WARNING: the event log in the instance keeps everything.
QUIET: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


#: Instance settings written into a DAGSTER_HOME that has none: one SQLite event log for all runs
#: instead of a database file per run, which makes each in-process run about 40% cheaper.
LOCAL_INSTANCE_YAML = """\
# Written by zdte for the local profile (production uses the repository's dagster.yaml).
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {base}
telemetry:
  enabled: false
"""


def local_instance() -> dg.DagsterInstance:
    """The instance at DAGSTER_HOME, defaulting to `<ZDTE_HOME>/dagster` so runs persist for the UI."""
    path = config.dagster_home()
    # Set, not read: DagsterInstance.get() finds the instance through this variable itself.
    os.environ["DAGSTER_HOME"] = str(path)
    path.mkdir(parents=True, exist_ok=True)
    yaml = path / "dagster.yaml"
    if not yaml.exists():
        yaml.write_text(LOCAL_INSTANCE_YAML.format(base=path / "history"))
    return dg.DagsterInstance.get()


def materialize_range(
    defs: dg.Definitions,
    selection: list[str] | dg.AssetSelection,
    start_key: str,
    end_key: str | None = None,
    instance: dg.DagsterInstance | None = None,
    tags: dict[str, str] | None = None,
    run_config: dict[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` (asset keys like "AAPL/features") for the partition range [start_key, end_key] in one run."""
    sel = (
        dg.AssetSelection.assets(*(dg.AssetKey.from_user_string(k) for k in selection))
        if isinstance(selection, list)
        else selection
    )
    job = dg.define_asset_job("__zdte_adhoc", selection=sel)
    resolved = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(
        "__zdte_adhoc"
    )
    run_tags = dict(tags or {})
    config = {**QUIET, **(run_config or {})}
    if end_key is None or end_key == start_key:
        return resolved.execute_in_process(
            run_config=config, instance=instance, partition_key=start_key, tags=run_tags
        )
    run_tags["dagster/asset_partition_range_start"] = start_key
    run_tags["dagster/asset_partition_range_end"] = end_key
    return resolved.execute_in_process(run_config=config, instance=instance, tags=run_tags)
