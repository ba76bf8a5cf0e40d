"""The repository's production dagster.yaml and workspace.yaml, loaded for real.

The instance file is copied unchanged into a temporary DAGSTER_HOME and pointed at a fresh
Postgres database through its environment variables, so what is tested is exactly what the
deployment runs.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import polars as pl
import pytest
import yaml

from zdte_assets.orchestration.io_manager import ZdteIOManager
from zdte_assets_tests import services

ROOT = Path(__file__).resolve().parent.parent
DAYS = dg.DailyPartitionsDefinition(start_date="2024-06-03", end_date="2024-06-15")
KEY = dg.AssetKey(["AAPL", "pg_probe"])


@dg.asset(key=KEY, partitions_def=DAYS)
def pg_probe(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"date": [context.partition_time_window.start.date()], "close": [1.0]})


def instance_env(db_url: str, home: Path) -> dict[str, str]:
    """The DAGSTER_* variables dagster.yaml reads, for a database made by services.create_database."""
    u = urlparse(db_url)
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_USERNAME": u.username or "postgres",
        "DAGSTER_PG_PASSWORD": u.password or "",
        "DAGSTER_PG_HOST": u.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(u.port or 5432),
        "DAGSTER_PG_DB": u.path.lstrip("/"),
        "DAGSTER_COMPUTE_LOG_DIR": str(home / "compute_logs"),
    }


@pytest.fixture
def pg_instance(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    for var, value in instance_env(pg_database, home).items():
        monkeypatch.setenv(var, value)
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_dagster_yaml_takes_credentials_from_env_only() -> None:
    cfg = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    db = cfg["storage"]["postgres"]["postgres_db"]
    secrets = {"username", "password", "hostname", "db_name", "port"}
    assert secrets <= set(db)
    assert all(set(db[k]) == {"env"} for k in secrets), db
    assert (
        db["scheme"] == "postgresql+psycopg2"
    )  # the installed driver (SQLAlchemy 2.1 default: psycopg 3)
    assert cfg["telemetry"] == {"enabled": False}
    assert cfg["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_root_dagster_yaml_runs_on_postgres(
    pg_instance: dg.DagsterInstance, pg_database: str, tmp_path: Path
) -> None:
    from dagster._core.launcher import DefaultRunLauncher
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    instance = pg_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert isinstance(instance.run_launcher, DefaultRunLauncher)
    assert isinstance(instance.compute_log_manager, LocalComputeLogManager)
    assert instance.run_monitoring_enabled
    assert not instance.telemetry_enabled

    result = dg.materialize(
        [pg_probe],
        instance=instance,
        partition_key="2024-06-11",
        resources={"io_manager": ZdteIOManager(storage_url=str(tmp_path / "objects"))},
    )
    assert result.success
    assert (tmp_path / "objects" / "AAPL" / "pg_probe" / "2024-06-11.parquet").is_file()

    # Through the instance: the run and its materialization, with zdte's metadata.
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.is_success
    event = instance.get_latest_materialization_event(KEY)
    assert event is not None and event.asset_materialization is not None
    assert event.run_id == result.run_id
    assert event.asset_materialization.partition == "2024-06-11"
    uri = event.asset_materialization.metadata["dagster/uri"].value
    assert str(uri).endswith("AAPL/pg_probe/2024-06-11.parquet")
    assert instance.get_materialized_partitions(KEY) == {"2024-06-11"}

    # Directly in Postgres: the tables exist and hold the rows.
    import psycopg2

    conn = psycopg2.connect(services.libpq_url(pg_database))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
            tables = {row[0] for row in cur.fetchall()}
            assert {"runs", "event_logs", "asset_keys", "jobs"} <= tables, tables
            cur.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
            assert cur.fetchone() == ("SUCCESS",)
            cur.execute(
                "SELECT asset_key, partition FROM event_logs"
                " WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                (result.run_id,),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    assert rows == [(KEY.to_string(), "2024-06-11")]


def test_workspace_yaml_names_zdte_grpc_location(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same workspace.yaml finds the code server in compose and in the native stack."""
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
    from dagster._core.workspace.load import location_origins_from_yaml_paths

    from zdte_assets.apps import stack

    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
    native = stack.configuration({**os.environ, "ZDTE_HOME": str(tmp_path)})
    # What compose gives the container: its env_file (stack.env), then its environment.
    code_env = {
        **stack.read_env_file(stack.STACK_ENV_FILE),
        **compose["services"]["zdte-code"]["environment"],
    }
    for env, expected in (
        (code_env, ("zdte-code", 4000)),
        (native, ("127.0.0.1", int(native["ZDTE_CODE_PORT"]))),
    ):
        monkeypatch.setenv("ZDTE_CODE_HOST", env["ZDTE_CODE_HOST"])
        monkeypatch.setenv("ZDTE_CODE_PORT", env["ZDTE_CODE_PORT"])
        (origin,) = location_origins_from_yaml_paths([str(ROOT / "workspace.yaml")])
        assert isinstance(origin, GrpcServerCodeLocationOrigin)
        assert origin.location_name == "zdte"
        assert (origin.host, origin.port) == expected


def test_compose_matches_native_topology() -> None:
    """The compose file serves the code location where workspace.yaml looks for it."""
    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
    services_ = compose["services"]
    assert {
        "postgres",
        "seaweedfs",
        "mlflow",
        "zdte-code",
        "dagster-webserver",
        "dagster-daemon",
        "caddy",
    } <= set(services_)
    code_cmd = services_["zdte-code"]["command"]
    assert code_cmd[:5] == ["dagster", "code-server", "start", "-m", "zdte_assets.definitions"]
    assert code_cmd[code_cmd.index("-p") + 1] == "4000"
    assert code_cmd[code_cmd.index("--location-name") + 1] == "zdte"
    assert services_["seaweedfs"]["image"].startswith("chrislusf/seaweedfs")
    assert "server -s3" in services_["seaweedfs"]["command"]
    assert "--allowed-hosts" in services_["mlflow"]["command"]
    for name in ("zdte-code", "dagster-webserver", "dagster-daemon"):
        assert services_[name]["build"]["dockerfile"] == "docker/Dockerfile"
        assert services_[name]["environment"]["DAGSTER_PG_PASSWORD"].startswith(
            "${DAGSTER_PG_PASSWORD:?"
        )
