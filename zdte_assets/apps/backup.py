"""`zdte stack backup DIR` and `zdte stack restore DIR`: the three service databases and both
buckets of the stack, as plain files that can be checked, copied and restored elsewhere.

A backup directory holds:

    manifest.json          what is inside: every file with its size and SHA-256, every object
                           of both buckets with its key, size and SHA-256
    postgres/<name>.dump   `pg_dump -Fc` of the Dagster, MLflow and Optuna databases
    objects/<sha256>       the bytes of each object, stored once per content (so any key, even
                           one that is no valid file name, round-trips)

It is written as a hidden sibling of DIR and renamed to DIR when complete, so a DIR that exists
is a whole backup; `restore` checks every file against the manifest before touching anything.
Objects are read through S3 with the stack's keys, so they are stored decrypted: the directory
is as secret as the data (mode 0700), and a restore into another server is encrypted again by
that server's bucket default.

Restore replaces: each database is filled by `pg_restore`, as its service's role, into a new
database owned by that role, which then takes the old one's place (its connections closed), so a
failed restore leaves the old database as it was; each bucket ends with exactly the
backup's objects. The dumps are restored by role (dagster, mlflow, optuna) and the buckets by
setting (ZDTE_BUCKET, ZDTE_MLFLOW_BUCKET), so a backup restores into a stack whose names differ.

Pure of Dagster: it needs the stack's configuration, `pg_dump`/`pg_restore` of a PostgreSQL
client at least as new as the server, psycopg2 and boto3.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from zdte_assets.core import config
from zdte_assets.core.errors import ZdteError, first_line

FORMAT = "zdte-stack-backup/1"
#: Database of each service: (role in the backup, settings prefix in stack.env).
DATABASES = {"dagster": "DAGSTER", "mlflow": "MLFLOW", "optuna": "OPTUNA"}
#: The buckets, by the setting that names them.
BUCKETS = ("ZDTE_BUCKET", "ZDTE_MLFLOW_BUCKET")
_CHUNK = 1 << 20


class BackupError(ZdteError, RuntimeError):
    """The stack is not ready, a tool is missing, or a directory is not a complete backup."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def require_ready(cfg: Mapping[str, str]) -> None:
    """Postgres and S3 answer with the stack's credentials, or one line saying which does not."""
    from zdte_assets.apps import stack

    down = [s.name for s in stack.SERVICES if s.name in ("postgres", "s3") and not s.ready(cfg)]
    if down:
        raise BackupError(
            f"the stack is not ready ({' and '.join(down)} not answering): start it with "
            "`zdte stack up`"
        )


# --------------------------------------------------------------------------- Postgres


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"'{name}' not found on PATH (apt-get install postgresql-client)")
    return found


def _admin_params(cfg: Mapping[str, str]) -> dict[str, str]:
    from psycopg2.extensions import parse_dsn

    try:
        return dict(parse_dsn(cfg["ZDTE_PG_ADMIN_URL"]))
    except Exception as exc:
        raise BackupError(f"ZDTE_PG_ADMIN_URL is not a connection URL: {exc}") from None


def _conninfo(params: Mapping[str, str], dbname: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for `dbname` without the password, and the environment that
    carries it (so it never shows on a command line)."""

    def quote(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    parts = {k: v for k, v in params.items() if k not in ("password", "dbname")}
    parts["dbname"] = dbname
    env = config.environment()
    if params.get("password"):
        env["PGPASSWORD"] = params["password"]
    return " ".join(f"{k}={quote(str(v))}" for k, v in parts.items()), env


def _run(argv: list[str], env: Mapping[str, str], what: str) -> None:
    out = subprocess.run(argv, env=dict(env), capture_output=True, text=True)
    if out.returncode != 0:
        raise BackupError(f"{what} failed: {first_line(out.stderr or out.stdout)}")


def _dump_databases(
    cfg: Mapping[str, str], target: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    pg_dump = _pg_tool("pg_dump")
    params = _admin_params(cfg)
    (target / "postgres").mkdir()
    out: dict[str, Any] = {}
    for name, prefix in DATABASES.items():
        db = cfg[f"{prefix}_PG_DB"]
        conninfo, env = _conninfo(params, db)
        relative = f"postgres/{name}.dump"
        _run(
            [pg_dump, "--format=custom", f"--file={target / relative}", f"--dbname={conninfo}"],
            env,
            f"pg_dump of {db}",
        )
        path = target / relative
        out[name] = {
            "database": db,
            "file": relative,
            "size": path.stat().st_size,
            "sha256": _sha256_file(path),
        }
        say(f"postgres: {db} dumped ({out[name]['size']:,} bytes)")
    return out


def _drop(cur: Any, db: str) -> None:
    from psycopg2 import sql

    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))


def _restore_databases(
    cfg: Mapping[str, str], source: Path, manifest: Mapping[str, Any], say: Callable[[str], None]
) -> None:
    import psycopg2
    from psycopg2 import sql

    from zdte_assets.apps import stack

    pg_restore = _pg_tool("pg_restore")
    params = _admin_params(cfg)
    try:
        conn = psycopg2.connect(cfg["ZDTE_PG_ADMIN_URL"], connect_timeout=5)
    except psycopg2.Error as exc:
        first = first_line(str(exc))
        raise BackupError(f"postgres: cannot connect with ZDTE_PG_ADMIN_URL: {first}") from None
    conn.autocommit = True
    try:
        for name, prefix in DATABASES.items():
            db, role = cfg[f"{prefix}_PG_DB"], cfg[f"{prefix}_PG_USER"]
            # Filled under another name and renamed when whole: the stack's services keep
            # running and reconnect at any moment, and Dagster creates its tables in an empty
            # database it connects to, which would collide with the dump's own tables.
            staging = f"{db}_restoring"[:63]
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cur.fetchone() is None:
                    raise BackupError(f"postgres: role {role} is missing: run `zdte stack up`")
                _drop(cur, staging)
                stack.ensure_service_database(cur, staging, role)
            conninfo, env = _conninfo(params, staging)
            try:
                _run(
                    [
                        pg_restore,
                        f"--dbname={conninfo}",
                        # Objects belong to the service's role, whatever they belonged to when
                        # dumped.
                        "--no-owner",
                        "--no-acl",
                        f"--role={role}",
                        "--single-transaction",
                        "--exit-on-error",
                        str(source / manifest["databases"][name]["file"]),
                    ],
                    env,
                    f"pg_restore into {db}",
                )
            except BackupError:
                with conn.cursor() as cur:
                    _drop(cur, staging)  # the live database was not touched
                raise
            with conn.cursor() as cur:
                # A service connecting between these two statements is refused ("database does
                # not exist") and retries; it never sees a half-filled database.
                _drop(cur, db)
                cur.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(staging), sql.Identifier(db)
                    )
                )
            say(f"postgres: {db} restored, owned by {role}")
    finally:
        conn.close()


# --------------------------------------------------------------------------------- S3


def _keys(client: Any, bucket: str) -> dict[str, int]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: int(o["Size"]) for page in pages for o in page.get("Contents", [])}


def _copy_buckets(
    cfg: Mapping[str, str], target: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    from zdte_assets.apps import stack

    client = stack.s3_client(cfg, attempts=5)
    objects = target / "objects"
    objects.mkdir()
    out: dict[str, Any] = {}
    for setting in BUCKETS:
        bucket = cfg[setting]
        entries = []
        total = 0
        for key in sorted(_keys(client, bucket)):
            tmp = objects / f".partial-{secrets.token_hex(8)}"
            digest = hashlib.sha256()
            size = 0
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            with open(tmp, "wb") as fh:
                for chunk in body.iter_chunks(_CHUNK):
                    digest.update(chunk)
                    fh.write(chunk)
                    size += len(chunk)
            sha = digest.hexdigest()
            os.replace(tmp, objects / sha)
            entries.append({"key": key, "size": size, "sha256": sha})
            total += size
        out[setting] = {"bucket": bucket, "objects": entries}
        say(f"s3: {bucket}: {len(entries)} objects ({total:,} bytes)")
    return out


def _put_buckets(
    cfg: Mapping[str, str], source: Path, manifest: Mapping[str, Any], say: Callable[[str], None]
) -> None:
    from zdte_assets.apps import stack

    client = stack.s3_client(cfg, attempts=5)
    for setting in BUCKETS:
        bucket = cfg[setting]
        wanted = {e["key"]: e for e in manifest["buckets"][setting]["objects"]}
        for key, entry in wanted.items():
            client.upload_file(str(source / "objects" / entry["sha256"]), bucket, key)
        extra = sorted(set(_keys(client, bucket)) - set(wanted))
        for i in range(0, len(extra), 1000):
            client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in extra[i : i + 1000]]}
            )
        # Read everything back: the bucket now holds exactly the backup's bytes.
        present = _keys(client, bucket)
        if present != {k: e["size"] for k, e in wanted.items()}:
            raise BackupError(f"s3: {bucket} does not match the backup after the restore")
        for key, entry in wanted.items():
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            digest = hashlib.sha256()
            for chunk in body.iter_chunks(_CHUNK):
                digest.update(chunk)
            if digest.hexdigest() != entry["sha256"]:
                raise BackupError(f"s3: s3://{bucket}/{key} reads back different bytes")
        say(f"s3: {bucket}: {len(wanted)} objects restored and read back, {len(extra)} removed")


# ---------------------------------------------------------------------------- commands


def backup(
    cfg: Mapping[str, str], directory: Path, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Dump the databases and copy both buckets into `directory`, which must not exist yet."""
    directory = Path(directory).expanduser().resolve()
    if directory.exists():
        raise BackupError(f"{directory} already exists: back up into a new directory")
    if not directory.parent.is_dir():
        raise BackupError(f"{directory.parent} is not a directory")
    require_ready(cfg)
    t0 = time.monotonic()
    partial = directory.parent / f".{directory.name}.partial-{secrets.token_hex(4)}"
    partial.mkdir(mode=0o700)
    try:
        manifest = {
            "format": FORMAT,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "databases": _dump_databases(cfg, partial, say),
            "buckets": _copy_buckets(cfg, partial, say),
        }
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        for path in partial.rglob("*"):
            if path.is_file():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        os.rename(partial, directory)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    say(f"backup complete in {time.monotonic() - t0:.1f} s: {directory}")
    return manifest


def _files(manifest: Mapping[str, Any]) -> Iterable[tuple[str, int, str]]:
    for entry in manifest["databases"].values():
        yield entry["file"], entry["size"], entry["sha256"]
    for bucket in manifest["buckets"].values():
        for entry in bucket["objects"]:
            yield f"objects/{entry['sha256']}", entry["size"], entry["sha256"]


def verify(directory: Path) -> dict[str, Any]:
    """The manifest of a complete backup, every file checked; else one line saying what is
    missing or different."""
    directory = Path(directory).expanduser().resolve()
    try:
        manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        reason = "no manifest.json" if isinstance(exc, FileNotFoundError) else str(exc)
        raise BackupError(f"{directory} is not a complete backup: {reason}") from None
    if (
        manifest.get("format") != FORMAT
        or set(manifest.get("databases", {})) != set(DATABASES)
        or set(manifest.get("buckets", {})) != set(BUCKETS)
    ):
        raise BackupError(f"{directory} is not a complete backup: unknown manifest format")
    checked: set[str] = set()
    for relative, size, sha in _files(manifest):
        if relative in checked:
            continue
        path = directory / relative
        if not path.is_file():
            raise BackupError(f"{directory} is not a complete backup: {relative} is missing")
        if path.stat().st_size != size or _sha256_file(path) != sha:
            raise BackupError(f"{directory} is not a complete backup: {relative} differs")
        checked.add(relative)
    return manifest


def restore(cfg: Mapping[str, str], directory: Path, say: Callable[[str], None] = print) -> None:
    """Replace the databases and the buckets' objects with those of a verified backup."""
    t0 = time.monotonic()
    manifest = verify(directory)
    directory = Path(directory).expanduser().resolve()
    require_ready(cfg)
    _restore_databases(cfg, directory, manifest, say)
    _put_buckets(cfg, directory, manifest, say)
    say(
        f"restore complete in {time.monotonic() - t0:.1f} s from {directory} "
        f"(taken {manifest['created']}); restart the services to drop what they cached: "
        "`zdte stack down && zdte stack up`"
    )


__all__ = ["BackupError", "backup", "require_ready", "restore", "verify"]
