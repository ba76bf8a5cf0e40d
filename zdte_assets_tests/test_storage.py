"""Local and S3 object stores: round trips, atomic replacement, crash safety, one-line errors."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from zdte_assets.storage import store as storage
from zdte_assets.storage.store import (
    TEMP_PREFIX,
    LocalStore,
    ObjectNotFound,
    S3Store,
    StorageError,
    Store,
    store_from_url,
)
from zdte_assets_tests.conftest import S3Bucket

FRAME = pl.DataFrame(
    {
        "date": [dt.date(2024, 6, 10), dt.date(2024, 6, 11)],
        "open": [193.1, 193.5],
        "close": [193.2, 207.1],
        "adj_close": [None, 206.9],
    },
    schema={"date": pl.Date, "open": pl.Float64, "close": pl.Float64, "adj_close": pl.Float64},
)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.services)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return store_from_url(str(tmp_path / "store"))
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return store_from_url(bucket.url("zdte/prod"))


def test_store_from_url_kinds(tmp_path: Path) -> None:
    assert isinstance(store_from_url(str(tmp_path)), LocalStore)
    file_store = store_from_url(f"file://{tmp_path}/x")
    assert isinstance(file_store, LocalStore)
    assert file_store.url("a/b.json") == str(tmp_path / "x" / "a" / "b.json")
    s3 = store_from_url("s3://bucket/some/prefix/")
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3.url("AAPL/x.parquet") == "s3://bucket/some/prefix/AAPL/x.parquet"
    assert store_from_url("s3://bucket").url("k") == "s3://bucket/k"
    with pytest.raises(ValueError, match="unsupported"):
        store_from_url("gs://bucket/x")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a/", f"a/{TEMP_PREFIX}x", "a\\b"])
def test_bad_keys_rejected(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        LocalStore(tmp_path).write_bytes(key, b"x")


def test_bytes_round_trip_and_listing(store: Store) -> None:
    assert not store.exists("AAPL/daily_bar/2024-06-11.parquet")
    store.write_bytes("AAPL/daily_bar/2024-06-11.parquet", b"\x00one")
    store.write_bytes("AAPL/daily_bar/2024-06-10.parquet", b"")
    store.write_bytes("AAPL/daily_bar.json", b"{}")
    store.write_bytes("MSFT/daily_bar/2024-06-11.parquet", b"m")
    assert store.read_bytes("AAPL/daily_bar/2024-06-11.parquet") == b"\x00one"
    assert store.read_bytes("AAPL/daily_bar/2024-06-10.parquet") == b""
    assert store.exists("AAPL/daily_bar/2024-06-11.parquet")
    assert store.list_keys("AAPL/daily_bar/") == [
        "AAPL/daily_bar/2024-06-10.parquet",
        "AAPL/daily_bar/2024-06-11.parquet",
    ]
    # A plain string prefix, as on S3: "AAPL/daily_bar" also matches the sibling JSON.
    assert store.list_keys("AAPL/daily_bar") == [
        "AAPL/daily_bar.json",
        "AAPL/daily_bar/2024-06-10.parquet",
        "AAPL/daily_bar/2024-06-11.parquet",
    ]
    assert len(store.list_keys()) == 4
    assert store.list_keys("NOPE/") == []
    store.delete("AAPL/daily_bar/2024-06-10.parquet")
    store.delete("AAPL/daily_bar/2024-06-10.parquet")  # idempotent
    assert not store.exists("AAPL/daily_bar/2024-06-10.parquet")


def test_parquet_and_json_round_trip(store: Store) -> None:
    storage.write_parquet(store, "AAPL/bars.parquet", FRAME)
    back = storage.read_parquet(store, "AAPL/bars.parquet")
    assert back.equals(FRAME)
    assert back.schema == FRAME.schema

    obj = {"z": 1, "a": {"day": dt.date(2024, 6, 11), "at": dt.datetime(2024, 6, 11, 9, 30)}}
    storage.write_json(store, "AAPL/meta.json", obj)
    raw = store.read_bytes("AAPL/meta.json").decode("utf-8")
    assert raw.index('"a"') < raw.index('"z"')  # sorted keys
    assert '\n  "a": {' in raw  # indent 2
    assert storage.read_json(store, "AAPL/meta.json") == {
        "a": {"at": "2024-06-11T09:30:00", "day": "2024-06-11"},
        "z": 1,
    }
    storage.write_json(store, "u.json", {"name": "Zürich €"})
    assert "Zürich €".encode() in store.read_bytes("u.json")


def test_overwrite_replaces(store: Store) -> None:
    store.write_bytes("k/v.json", b"old" * 1000)
    store.write_bytes("k/v.json", b"new")
    assert store.read_bytes("k/v.json") == b"new"
    assert store.list_keys("k/") == ["k/v.json"]


def test_parquet_read_cache_sees_every_replacement(store: Store, tmp_path: Path) -> None:
    """Cached frames are served only while the object is unchanged, whoever replaced it."""
    storage.write_parquet(store, "AAPL/bars.parquet", FRAME)
    first = storage.read_parquet(store, "AAPL/bars.parquet")
    assert storage.read_parquet(store, "AAPL/bars.parquet").equals(first)
    changed = FRAME.with_columns(pl.col("close") * 2)
    # Another process (another Store object on the same location) replaces the object.
    other = store_from_url(store.url())
    storage.write_parquet(other, "AAPL/bars.parquet", changed)
    assert storage.read_parquet(store, "AAPL/bars.parquet").equals(changed)
    other.delete("AAPL/bars.parquet")
    with pytest.raises(storage.ObjectNotFound):
        storage.read_parquet(store, "AAPL/bars.parquet")


def test_missing_object_error_is_one_line_with_url(store: Store) -> None:
    with pytest.raises(ObjectNotFound) as info:
        store.read_bytes("AAPL/daily_bar/1999-01-01.parquet")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.endswith(store.url("AAPL/daily_bar/1999-01-01.parquet"))
    assert isinstance(info.value, KeyError)
    with pytest.raises(ObjectNotFound):
        storage.read_parquet(store, "nope.parquet")


def test_local_failed_write_keeps_previous_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure between the temp write and the rename leaves the old object and no temp file."""
    store = LocalStore(tmp_path)
    storage.write_parquet(store, "AAPL/bars.parquet", FRAME)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk vanished"):
        storage.write_parquet(store, "AAPL/bars.parquet", FRAME.head(1))
    monkeypatch.undo()
    assert storage.read_parquet(store, "AAPL/bars.parquet").equals(FRAME)
    assert store.list_keys() == ["AAPL/bars.parquet"]
    assert os.listdir(tmp_path / "AAPL") == ["bars.parquet"]


def test_producer_error_writes_nothing(store: Store) -> None:
    """A value that fails to serialize half-way must not replace the stored one."""
    storage.write_json(store, "m.json", {"ok": True})
    with pytest.raises(TypeError):
        storage.write_json(store, "m.json", {"a": 1, "b": object()})
    assert storage.read_json(store, "m.json") == {"ok": True}
    assert store.list_keys() == ["m.json"]


_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from zdte_assets.storage.store import LocalStore

    chunk = b"N" * (1 << 20)
    real_fdopen = os.fdopen

    # The store writes through os.fdopen; make that file object stall after the first chunk so
    # the parent can kill this process while the temp file holds only part of the new value.
    def slow_fdopen(fd, mode="r", *args, **kwargs):
        fh = real_fdopen(fd, mode, *args, **kwargs)
        real_write = fh.write

        def write(data):
            real_write(data[: len(chunk)])
            fh.flush()
            print("PARTIAL", flush=True)
            time.sleep(60)
            return real_write(data[len(chunk) :])

        fh.write = write
        return fh

    os.fdopen = slow_fdopen
    LocalStore(sys.argv[1]).write_bytes("AAPL/big.bin", chunk * 8)
    """
)


def test_local_killed_writer_leaves_previous_object(tmp_path: Path) -> None:
    """SIGKILL mid-write: readers still get the old bytes and listings hide the orphan temp file."""
    store = LocalStore(tmp_path)
    store.write_bytes("AAPL/big.bin", b"OLD")
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"PARTIAL", proc.stderr.read() if proc.stderr else b""
        temps = [p for p in (tmp_path / "AAPL").iterdir() if p.name.startswith(TEMP_PREFIX)]
        assert len(temps) == 1 and temps[0].stat().st_size == 1 << 20  # partially written
        assert store.read_bytes("AAPL/big.bin") == b"OLD"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert store.read_bytes("AAPL/big.bin") == b"OLD"
    assert store.list_keys() == ["AAPL/big.bin"]
    assert store.list_keys("AAPL/") == ["AAPL/big.bin"]
    # The next successful write still works and replaces the object.
    store.write_bytes("AAPL/big.bin", b"NEW")
    assert store.read_bytes("AAPL/big.bin") == b"NEW"


_S3_WRITER = textwrap.dedent(
    """
    import http.client, sys, time
    from zdte_assets.storage.store import store_from_url

    real_send = http.client.HTTPConnection.send
    sent = 0

    # Let the first MiB of the request go out, then stall so the parent can kill this process
    # with the upload in flight.
    def send(self, data):
        global sent
        sent += len(data)
        if sent > (1 << 20):
            print("PARTIAL", flush=True)
            time.sleep(60)
        return real_send(self, data)

    http.client.HTTPConnection.send = send
    store_from_url(sys.argv[1]).write_bytes("AAPL/obj.bin", b"N" * (4 << 20))
    """
)


def test_s3_killed_writer_leaves_previous_object(s3_bucket: S3Bucket) -> None:
    """SIGKILL with half of a PUT body sent: the old object stays whole and nothing else appears."""
    store = store_from_url(s3_bucket.url("p"))
    store.write_bytes("AAPL/obj.bin", b"OLD")
    proc = subprocess.Popen(
        [sys.executable, "-c", _S3_WRITER, s3_bucket.url("p")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "AWS_MAX_ATTEMPTS": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"PARTIAL", proc.stderr.read() if proc.stderr else b""
        assert store.read_bytes("AAPL/obj.bin") == b"OLD"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    time.sleep(0.3)  # let the server notice the dropped connection
    assert store.read_bytes("AAPL/obj.bin") == b"OLD"
    assert store.list_keys() == ["AAPL/obj.bin"]
    assert s3_bucket.keys() == ["p/AAPL/obj.bin"]


def test_s3_objects_visible_to_plain_boto3(s3_bucket: S3Bucket) -> None:
    store = store_from_url(s3_bucket.url("zdte"))
    storage.write_parquet(store, "AAPL/daily_bar/2024-06-11.parquet", FRAME)
    assert s3_bucket.keys() == ["zdte/AAPL/daily_bar/2024-06-11.parquet"]
    body = (
        s3_bucket.client()
        .get_object(Bucket=s3_bucket.name, Key="zdte/AAPL/daily_bar/2024-06-11.parquet")["Body"]
        .read()
    )
    import io

    assert pl.read_parquet(io.BytesIO(body)).equals(FRAME)


def test_s3_wrong_secret_refused(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = store_from_url(s3_bucket.url("p"))
    url = store.url("AAPL/x.json")
    for action in (
        lambda: store.write_bytes("AAPL/x.json", b"{}"),
        lambda: store.read_bytes("AAPL/x.json"),
        lambda: store.list_keys(),
    ):
        with pytest.raises(StorageError) as info:
            action()
        msg = str(info.value)
        assert not isinstance(info.value, ObjectNotFound)
        assert "\n" not in msg
        assert "refused the credentials" in msg
        assert f"s3://{s3_bucket.name}/p" in msg
    with pytest.raises(StorageError, match="refused"):
        store.write_bytes("AAPL/x.json", b"{}")
    with pytest.raises(StorageError) as info:
        store.read_bytes("AAPL/x.json")
    assert url in str(info.value)
    assert s3_bucket.keys() == []


def test_s3_missing_bucket_error(s3_bucket: S3Bucket) -> None:
    store = store_from_url("s3://zdte-no-such-bucket-here/x")
    with pytest.raises(StorageError, match="bucket does not exist: s3://zdte-no-such-bucket-here"):
        store.write_bytes("a.json", b"{}")
    with pytest.raises(StorageError, match="bucket does not exist") as info:
        store.read_bytes("a.json")
    assert "\n" not in str(info.value)


def test_s3_unreachable_endpoint_error(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zdte_assets_tests.services import free_ports

    (port,) = free_ports(1)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = store_from_url(s3_bucket.url())
    started = time.monotonic()
    with pytest.raises(StorageError, match="S3 unavailable") as info:
        store.read_bytes("a.json")
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 10


def test_s3_client_uses_env_endpoint_and_path_style(s3_bucket: S3Bucket) -> None:
    client = storage.make_s3_client()
    assert client.meta.endpoint_url == s3_bucket.server.endpoint
    s3_config = getattr(client.meta.config, "s3", None) or {}
    assert s3_config.get("addressing_style") == "path"
    assert client.meta.region_name == s3_bucket.server.region
