"""The security defaults of the production stack, on the real stack (`zdte stack up`, the
session's `running_stack`): failed logins cannot burn CPU, the buckets are encrypted at rest,
and backup and restore bring data back bit for bit (that every port but Caddy's public one is on
loopback is checked in test_stack.py). All marked ``stack`` (run with `pytest -m stack`)."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from zdte_assets.apps import authgate, stack
from zdte_assets_tests.conftest import isolate_aws_env
from zdte_assets_tests.stack_client import Burst, login_burst

pytestmark = pytest.mark.stack


def _requests(
    cfg: dict[str, str],
    source: str,
    n: int,
    credentials: Callable[[int], tuple[str, str] | None],
    site: str = "dagster.localhost",
) -> Burst:
    """`n` requests through the stack's Caddy on one keep-alive connection; their statuses and
    the CPU they cost Caddy and the gate."""
    pids = [stack.running_pid(cfg, name) for name in ("caddy", "authgate")]
    assert all(pids), pids
    return login_burst(
        int(cfg["ZDTE_HTTPS_PORT"]), [p for p in pids if p], site, source, n, credentials
    )


def test_a_flood_of_wrong_logins_is_refused_at_a_bounded_cost(
    running_stack: dict[str, str],
) -> None:
    cfg = running_stack
    hashed = (Path(cfg["ZDTE_STACK_DIR"]) / "caddy-auth-hash").read_text().strip()
    cost = authgate.bcrypt_cost(hashed)
    assert hashed.startswith("$2b$") and cost == authgate.BCRYPT_COST
    # What one password check at the stack's cost costs, measured here.
    t0 = time.process_time()
    for i in range(50):
        bcrypt.checkpw(f"wrong{i}".encode(), hashed.encode())
    check = (time.process_time() - t0) / 50
    # What a request costs when it is refused without a hash (no credentials: the gate's 401),
    # measured from an address of its own.
    floor = _requests(cfg, "127.0.0.3", 300, lambda i: None)
    assert floor.statuses == Counter({401: 300})
    per_request = floor.cpu / 300

    # The flood: wrong passwords for the right user and wrong user names, from one address.
    n = 600
    flood = _requests(
        cfg, "127.0.0.2", n, lambda i: ("desk", f"wrong{i}") if i % 2 else (f"user{i}", "x")
    )
    burst = int(cfg["ZDTE_AUTH_FAILURE_BURST"])
    per_minute = float(cfg["ZDTE_AUTH_FAILURES_PER_MINUTE"])
    answered = burst + per_minute * flood.seconds / 60 + 1
    assert set(flood.statuses) <= {401, 429}, flood
    assert flood.statuses[401] <= answered and flood.statuses[429] >= n - answered, flood
    # Every refused request costs what a request without credentials costs, plus at most one
    # check for each answered one (noise: x3 and 50 ms for the clock ticks of two processes).
    bound = 3 * n * per_request + 2 * answered * check + 0.05
    assert flood.cpu <= bound, (flood, per_request, check)
    # Caddy alone would have spent its cost-14 check on each wrong user name.
    assert flood.cpu < (n / 2) * check * 2 ** (14 - cost) / 100, flood

    # The right credentials still pass, on both sites, and even from the flooding address once
    # they are known right; a wrong password from there is still refused.
    right = (cfg["CADDY_AUTH_USER"], cfg["CADDY_AUTH_PASSWORD"])
    for site in ("dagster.localhost", "mlflow.localhost"):
        ok = _requests(cfg, "127.0.0.1", 3, lambda i: right, site=site)
        assert ok.statuses == Counter({200: 3}), (site, ok)
    assert _requests(cfg, "127.0.0.2", 2, lambda i: right).statuses == Counter({200: 2})
    assert _requests(cfg, "127.0.0.2", 1, lambda i: ("desk", "no")).statuses == Counter({429: 1})


@pytest.fixture
def stack_s3(
    running_stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The AWS variables of the stack's processes, and nothing else, for boto3 and zdte."""
    env = stack.process_env(running_stack)
    isolate_aws_env(
        monkeypatch,
        tmp_path,
        {k: env[k] for k in ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        | {"AWS_DEFAULT_REGION": "us-east-1"},
    )
    yield running_stack


def test_buckets_encrypt_what_zdte_and_others_write(stack_s3: dict[str, str]) -> None:
    from zdte_assets.storage.store import make_s3_client, store_from_url

    cfg = stack_s3
    client = make_s3_client()
    for bucket in (cfg["ZDTE_BUCKET"], cfg["ZDTE_MLFLOW_BUCKET"]):
        rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    data = os.urandom(100_000)
    store = store_from_url(cfg["ZDTE_STORAGE_URL"])  # s3://zdte/prod, as the assets write
    store.write_bytes("security-test/sse.bin", data)
    key = "prod/security-test/sse.bin"
    try:
        head = client.head_object(Bucket=cfg["ZDTE_BUCKET"], Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        assert store.read_bytes("security-test/sse.bin") == data
        # A plain PutObject without any header (as MLflow's server writes) is encrypted too.
        client.put_object(Bucket=cfg["ZDTE_MLFLOW_BUCKET"], Key="security-test/x", Body=b"x")
        head = client.head_object(Bucket=cfg["ZDTE_MLFLOW_BUCKET"], Key="security-test/x")
        assert head["ServerSideEncryption"] == "AES256"
        # At rest it is ciphertext: the filer, which serves stored bytes without S3 keys (hence
        # on loopback only), returns something else than what was written.
        filer = f"http://127.0.0.1:{cfg['ZDTE_S3_FILER_PORT']}/buckets/{cfg['ZDTE_BUCKET']}/{key}"
        with urllib.request.urlopen(filer, timeout=10) as resp:
            stored = resp.read()
        assert len(stored) >= len(data) and data not in stored and data[:64] not in stored
    finally:
        store.delete("security-test/sse.bin")
        client.delete_object(Bucket=cfg["ZDTE_MLFLOW_BUCKET"], Key="security-test/x")


def _dagster_db(cfg: dict[str, str]) -> Any:
    conn = stack.service_db(cfg)
    conn.autocommit = True
    return conn


def _query(cfg: dict[str, str], text: str, *args: object) -> list[tuple[Any, ...]]:
    conn = _dagster_db(cfg)
    try:
        with conn.cursor() as cur:
            cur.execute(text, args)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def test_backup_and_restore_bring_objects_and_rows_back_bit_for_bit(
    stack_s3: dict[str, str], stack_env: dict[str, str], tmp_path: Path
) -> None:
    from zdte_assets_tests import stack_client

    cfg = stack_s3
    client = stack.s3_client(cfg)
    zdte_bucket, mlflow_bucket = cfg["ZDTE_BUCKET"], cfg["ZDTE_MLFLOW_BUCKET"]
    # Known objects in both buckets (one key that is no file name), and a known table and row
    # in the Dagster database, written as the Dagster role.
    big = os.urandom(6 * 1024 * 1024)  # above boto3's multipart threshold on the way back
    known = {
        (zdte_bucket, "backup-test/big.bin"): big,
        (zdte_bucket, "backup-test/odd name ü?&=+.txt"): b"odd",
        (mlflow_bucket, "backup-test/small.bin"): os.urandom(1000),
    }
    for (bucket, key), data in known.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    row = os.urandom(2000)
    _query(cfg, "CREATE TABLE backup_probe (id int PRIMARY KEY, payload bytea)")
    _query(cfg, "INSERT INTO backup_probe VALUES (1, %s)", row)
    # The daemon keeps working during the test (a retry or a sensor may launch a run at any
    # moment), so the runs are compared by id: none that existed is lost, and any new one was
    # created after this point.
    runs_before = {r[0] for r in _query(cfg, "SELECT run_id FROM runs")}
    (started,) = _query(cfg, "SELECT now() AT TIME ZONE 'UTC'")[0]
    target = tmp_path / "backup"
    try:
        made = stack_client.zdte(stack_env, "stack", "backup", str(target))
        assert made.returncode == 0, made.stdout + made.stderr
        assert (target.stat().st_mode & 0o777) == 0o700
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial left

        # Change everything: an object deleted, one overwritten, one added; the row altered,
        # a table added.
        client.delete_object(Bucket=zdte_bucket, Key="backup-test/big.bin")
        client.put_object(Bucket=mlflow_bucket, Key="backup-test/small.bin", Body=b"changed")
        client.put_object(Bucket=zdte_bucket, Key="backup-test/after.bin", Body=b"new")
        _query(cfg, "UPDATE backup_probe SET payload = %s", b"altered")
        _query(cfg, "CREATE TABLE after_backup (x int)")

        # What is not a complete backup is refused in one line, before anything changes.
        broken = tmp_path / "broken"
        shutil.copytree(target, broken)
        next((broken / "objects").iterdir()).write_bytes(b"rot")
        for bad in (tmp_path / "empty", broken):
            bad.mkdir(exist_ok=True)
            refused = stack_client.zdte(stack_env, "stack", "restore", str(bad))
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert "is not a complete backup" in refused.stderr
            assert refused.stderr.count("\n") == 1
        assert bytes(_query(cfg, "SELECT payload FROM backup_probe")[0][0]) == b"altered"

        restored = stack_client.zdte(stack_env, "stack", "restore", str(target))
        assert restored.returncode == 0, restored.stdout + restored.stderr

        for (bucket, key), data in known.items():
            assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key
        listed = client.list_objects_v2(Bucket=zdte_bucket, Prefix="backup-test/")
        assert "backup-test/after.bin" not in {o["Key"] for o in listed.get("Contents", [])}
        assert bytes(_query(cfg, "SELECT payload FROM backup_probe")[0][0]) == row
        assert _query(cfg, "SELECT to_regclass('after_backup')") == [(None,)]
        runs_after = {
            run_id: created
            for run_id, created in _query(cfg, "SELECT run_id, create_timestamp FROM runs")
        }
        assert runs_before <= runs_after.keys()
        assert all(runs_after[r] > started for r in runs_after.keys() - runs_before), runs_after
        # Owned by the service's role, so Dagster can migrate its tables later.
        owners = _query(
            cfg, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        )
        assert owners == [(cfg["DAGSTER_PG_USER"],)]
        # The restored objects are encrypted by the bucket's default again.
        head = client.head_object(Bucket=zdte_bucket, Key="backup-test/big.bin")
        assert head["ServerSideEncryption"] == "AES256"
        # And the stack is still whole.
        states = dict(stack.status(stack_env))
        assert all(s.startswith("ready") for s in states.values()), states
    finally:
        _query(cfg, "DROP TABLE IF EXISTS backup_probe")
        _query(cfg, "DROP TABLE IF EXISTS after_backup")
        for bucket in (zdte_bucket, mlflow_bucket):
            listed = client.list_objects_v2(Bucket=bucket, Prefix="backup-test/")
            for obj in listed.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
