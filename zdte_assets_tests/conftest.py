"""Shared pytest fixtures, most importantly the real services (S3 server, Postgres).

Service rule: outside CI a missing service skips the test with the reason; with ``CI=true`` it
fails, so a CI machine that lost its Postgres or SeaweedFS cannot pass by skipping everything.
Tests that use a service fixture get the ``services`` marker automatically
(``pytest -m "not services"`` runs the rest).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from hypothesis import settings

from zdte_assets_tests import services

# Property tests are derandomized: the same examples on every run and in CI (seeds everywhere).
settings.register_profile("zdte", derandomize=True, deadline=None)
settings.load_profile("zdte")

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SERVICE_FIXTURES = frozenset({"s3_server", "s3_bucket", "pg_database"})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def service_unavailable(reason: str) -> NoReturn:
    """Skip locally, fail in CI (``CI=true``)."""
    if in_ci():
        pytest.fail(f"required service unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


# --- S3 (SeaweedFS) ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.S3Server]:
    """One SeaweedFS server for the whole session (starting one takes about a second)."""
    try:
        server = services.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    except services.ServiceUnavailable as exc:
        service_unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class S3Bucket:
    """A fresh, empty bucket on the session's server; the AWS_* variables point at it."""

    name: str
    server: services.S3Server

    def url(self, prefix: str = "") -> str:
        """``s3://bucket/prefix``, the form ``store_from_url`` and ZDTE_STORAGE_URL take."""
        prefix = prefix.strip("/")
        return f"s3://{self.name}/{prefix}" if prefix else f"s3://{self.name}"

    def client(self) -> S3Client:
        """A plain boto3 client, for checking objects without zdte code in between."""
        return self.server.client()

    def keys(self, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def isolate_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> None:
    """Point boto3 at ``env`` only: no profile, shared config or other endpoint may leak in."""
    for var in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_REGION",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var, value in env.items():
        monkeypatch.setenv(var, value)


@pytest.fixture
def s3_bucket(
    s3_server: services.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[S3Bucket]:
    """A fresh bucket per test, with AWS_ENDPOINT_URL_S3 / keys / region set for the test."""
    if not s3_server.is_running():
        service_unavailable(
            f"SeaweedFS exited (code {s3_server.process.returncode}); see {s3_server.log_path}"
        )
    name = s3_server.create_bucket()
    isolate_aws_env(monkeypatch, tmp_path, s3_server.env())
    try:
        yield S3Bucket(name=name, server=s3_server)
    finally:
        with contextlib.suppress(Exception):
            s3_server.delete_bucket(name)


# --- Postgres ---------------------------------------------------------------------------------


@pytest.fixture
def pg_database() -> Iterator[str]:
    """SQLAlchemy URL of a fresh database on the local Postgres
    (``postgresql+psycopg2://postgres@127.0.0.1:5432/zdte_test_…``), usable as an MLflow tracking
    URI or Optuna storage as is; ``services.libpq_url`` gives the form for ``psycopg2.connect``.
    Dropped (connections forced closed) after the test."""
    ok, reason = services.postgres_available()
    if not ok:
        service_unavailable(reason)
    url = services.create_database()
    try:
        yield url
    finally:
        services.drop_database(services.database_name(url))


# --- zdte's own state: every test session gets a fresh home ------------------------------------


@pytest.fixture(scope="session", autouse=True)
def zdte_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ZDTE_HOME and DAGSTER_HOME in a temp dir, so tests never touch a developer's data."""
    home = tmp_path_factory.mktemp("zdte-home")
    saved = {k: os.environ.get(k) for k in ZDTE_ENV}
    for k in ZDTE_ENV:
        os.environ.pop(k, None)
    os.environ["ZDTE_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir()
    try:
        yield home
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


ZDTE_ENV = (
    "ZDTE_HOME",
    "DAGSTER_HOME",
    "ZDTE_STORAGE_URL",
    "ZDTE_TICKERS",
    "ZDTE_SOURCE",
    "ZDTE_SOURCE_PATH",
    "MLFLOW_TRACKING_URI",
    "ZDTE_OPTUNA_STORAGE",
    "ZDTE_EXPIRY_RULES",
    "ZDTE_AUTOMATION",
)

#: The short replay the Dagster-level tests share: one week of the sample, a small study.
REPLAY_START = "2024-11-04"
REPLAY_END = "2024-11-08"
REPLAY_TRIALS = 6


@dataclass(frozen=True)
class Replayed:
    output: Path
    report: dict[str, object]
    home: Path
    #: A home holding only what this replay noted about itself (`last_replay.LAST_REPLAY`), kept
    #: apart because later replays in the session's home replace the note.
    note_home: Path
    #: A copy of the Dagster instance (DAGSTER_HOME) as the replay left it: later tests write
    #: into the session's instance, tests of what the UI shows read this one.
    instance_home: Path

    @property
    def storage(self) -> str:
        return str(self.output / "storage")


@pytest.fixture(scope="session")
def replayed(zdte_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    """`zdte replay` of one week of the bundled sample through the real definitions.

    Session-scoped because a replay is the expensive part of the Dagster-level tests; tests that
    need the lifecycle's outputs (instance events, MLflow runs, stored values) read them here.
    """
    import datetime as dt
    import shutil

    from zdte_assets.apps.last_replay import LAST_REPLAY
    from zdte_assets.apps.replay import ReplayOptions, run_replay

    out = tmp_path_factory.mktemp("replay")
    result = run_replay(
        ReplayOptions(
            ticker="AAPL",
            start=dt.date.fromisoformat(REPLAY_START),
            end=dt.date.fromisoformat(REPLAY_END),
            output=out,
            n_trials=REPLAY_TRIALS,
            progress=False,
        )
    )
    note_home = tmp_path_factory.mktemp("home-after-replay")
    shutil.copy(zdte_home / LAST_REPLAY, note_home / LAST_REPLAY)
    instance_home = tmp_path_factory.mktemp("instance-after-replay")
    shutil.copytree(zdte_home / "dagster", instance_home, dirs_exist_ok=True)
    settings = instance_home / "dagster.yaml"  # its paths named the original directory
    settings.write_text(
        settings.read_text().replace(str(zdte_home / "dagster"), str(instance_home))
    )
    return Replayed(
        output=out,
        report=result,
        home=zdte_home,
        note_home=note_home,
        instance_home=instance_home,
    )


# --- the production stack (`zdte stack up`), for the tests marked `stack` ----------------------


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the session's stack (ports, users); `zdte stack ...` with it acts on
    that stack."""
    from zdte_assets_tests import stack_client

    return stack_client.stack_env(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def running_stack(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """One production stack for all the `stack` tests, started by `zdte stack up` and stopped
    by `zdte stack down`; its users and databases are dropped afterwards."""
    import shutil

    from zdte_assets.apps import stack
    from zdte_assets_tests import stack_client

    if shutil.which("caddy") is None:
        service_unavailable("caddy is not installed (apt-get install caddy)")
    try:
        up = stack_client.zdte(stack_env, "stack", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield stack.configuration(stack_env)
    finally:
        try:
            stack_client.zdte(stack_env, "stack", "down", timeout=300)
        finally:
            stack_client.drop_databases(stack.configuration(stack_env))


@pytest.fixture(scope="session")
def stack_sessions(running_stack: dict[str, str]) -> dict[str, str]:
    """The stack after a few simulated trading days run as production runs them (see
    `stack_client.run_sessions`): the run ids by step."""
    from zdte_assets_tests import stack_client

    return stack_client.run_sessions(running_stack)
