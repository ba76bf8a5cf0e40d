"""Object storage for asset values: one interface over a local directory and an S3 bucket.

Every asset value is a whole object that is replaced, never edited, so the interface is small:
bytes in, bytes out, keyed by a ``/``-separated name. The guarantee that matters is that a
reader (a concurrent run, the webserver, a person with polars) sees either the previous object
or the new one, never a truncated file left by a crashed run. Locally that means temp file +
fsync + ``os.replace`` in the same directory; on S3 a single ``PutObject`` is already atomic.

S3 access is configured only through the standard AWS environment variables
(``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``), so the same code talks to AWS or to an S3-compatible server on premises
without a settings file of its own: `zdte_assets.core.config.s3_settings` reads the endpoint,
region and retries, botocore the credentials. Inside Dagster the client comes from dagster-aws's
``S3Resource`` instead (see `zdte_assets.orchestration.resources`); ``S3Store`` takes either.
"""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
import io
import json
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import polars as pl

from zdte_assets.core import config
from zdte_assets.core.errors import ZdteError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Temp files start with this, so listings can hide them and nothing else can collide with them.
TEMP_PREFIX = ".zdte-tmp-"


class StorageError(ZdteError):
    """A storage operation failed; the message is one line and names the object or bucket URL."""


class ObjectNotFound(StorageError, KeyError):
    """The object does not exist. A ``KeyError`` too, so mapping-style callers can catch it."""

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _check_key(key: str) -> str:
    """Reject keys that could escape the store root or collide with temp files."""
    if not key or key.startswith("/") or key.endswith("/") or "\\" in key:
        raise ValueError(f"invalid storage key {key!r}: must be a relative 'a/b/c' name")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid storage key {key!r}: empty, '.' or '..' segment")
    if parts[-1].startswith(TEMP_PREFIX):
        raise ValueError(f"invalid storage key {key!r}: {TEMP_PREFIX!r} is reserved")
    return key


class Store(abc.ABC):
    """A flat namespace of immutable-by-replacement objects."""

    @abc.abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Replace the object atomically: readers see the old or the new bytes, never a mix."""

    @abc.abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Return the object's bytes; raise ``ObjectNotFound`` when it does not exist."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error (deletes are idempotent)."""

    @abc.abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix`` (a plain string prefix, as in S3), sorted."""

    @abc.abstractmethod
    def url(self, key: str = "") -> str:
        """Where the object lives, for error messages, metadata and readers outside zdte."""


class LocalStore(Store):
    """A directory tree; keys map to relative paths."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def url(self, key: str = "") -> str:
        return str(self._path(key)) if key else str(self.root)

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(6)}")
        # os.open with 0o666 lets the umask decide permissions, like a normal file write
        # (mkstemp would force 0600 and make objects unreadable to other services' users).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"object not found: {path}") from None
        except IsADirectoryError:
            raise ObjectNotFound(f"object not found (a directory is there): {path}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str = "") -> list[str]:
        # Walk only the deepest directory the prefix names, not the whole store.
        head, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*head.split("/")) if head else self.root
        if not start.is_dir():
            return []
        out: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(start):
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    out.append(rel)
        return sorted(out)


def _fsync_dir(path: Path) -> None:
    """Make the rename itself durable; best effort where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")

_AUTH_ERRORS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "403",
}
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


_loader_lock = threading.Lock()
_shared_loader: Any = None


def _botocore_session() -> Any:
    """A fresh botocore session (so credentials and endpoint are read from the environment now)
    that shares one model loader: parsing the S3 service model is most of a client's cost."""
    import botocore.session

    global _shared_loader
    session = botocore.session.get_session()
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _shared_loader)
    return session


def make_s3_client(settings: config.S3Settings | None = None) -> S3Client:
    """An S3 client for code outside Dagster, configured by `settings` (default: the
    environment, see `config.s3_settings`); botocore finds the credentials itself.

    Against a non-AWS endpoint the client uses path-style addressing, because S3-compatible
    servers on premises rarely have wildcard DNS for virtual-hosted bucket names.
    """
    import boto3
    from botocore.config import Config

    s = settings or config.s3_settings()
    retries: Any = {"mode": s.retry_mode, "max_attempts": s.max_attempts}
    options = Config(retries=retries, connect_timeout=5, read_timeout=60)
    session = boto3.session.Session(botocore_session=_botocore_session())
    client = session.client(
        "s3", config=options, endpoint_url=s.endpoint_url, region_name=s.region_name
    )
    host = urlparse(client.meta.endpoint_url).hostname or ""
    if not host.endswith(_AWS_HOST_SUFFIXES):
        options = options.merge(Config(s3={"addressing_style": "path"}))
        client = session.client(
            "s3", config=options, endpoint_url=s.endpoint_url, region_name=s.region_name
        )
    return client


def ensure_bucket_encryption(client: S3Client, bucket: str) -> bool:
    """Make SSE-S3 (AES256) the bucket's default encryption, when the server can encrypt.

    Default encryption covers every writer (zdte, MLflow's server, a person with boto3) without
    a header of its own. A server asked to encrypt without a key fails every later write
    (SeaweedFS 4.48 `weed server` without ``WEED_S3_SSE_KEY``: 500 on each PutObject), so a
    probe object is written encrypted first and the default is set only when that works.
    Returns whether the bucket encrypts by default; idempotent.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        if any(
            r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "AES256"
            for r in rules["Rules"]
        ):
            return True
    except ClientError:
        pass  # none configured yet (ServerSideEncryptionConfigurationNotFoundError)
    probe = f"{TEMP_PREFIX}sse-probe-{secrets.token_hex(4)}"
    try:
        client.put_object(Bucket=bucket, Key=probe, Body=b"probe", ServerSideEncryption="AES256")
    except (ClientError, BotoCoreError):
        return False
    try:
        client.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
    except (ClientError, BotoCoreError):
        return False
    finally:
        client.delete_object(Bucket=bucket, Key=probe)
    return True


class S3Store(Store):
    """Objects under ``s3://bucket/prefix``; the client comes from `make_client` (default
    `make_s3_client`: the environment), built on first use."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: S3Client | None = None,
        make_client: Callable[[], S3Client] | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("S3 storage URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._make_client = make_client or make_s3_client
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store({self.url()!r})"

    @property
    def client(self) -> S3Client:
        # Built lazily: constructing a store (e.g. in a Dagster resource at import time) must
        # not need credentials or a reachable endpoint.
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _name(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def url(self, key: str = "") -> str:
        if not key:
            return f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"s3://{self.bucket}/{self._name(key)}"

    def _error(self, exc: Exception, url: str, action: str) -> StorageError:
        """Turn a botocore error into a one-line message naming the URL."""
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            message = err.get("Message", "") or ""
            if code in _NOT_FOUND:
                return ObjectNotFound(f"object not found: {url}")
            if code == "NoSuchBucket":
                return StorageError(
                    f"bucket does not exist: s3://{self.bucket} (while {action} {url})"
                )
            if code in _AUTH_ERRORS:
                return StorageError(
                    _one_line(
                        f"S3 refused the credentials while {action} {url}: {code} {message}"
                        " (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
                    )
                )
            return StorageError(_one_line(f"S3 error while {action} {url}: {code} {message}"))
        if isinstance(exc, BotoCoreError):
            return StorageError(_one_line(f"S3 unavailable while {action} {url}: {exc}"))
        return StorageError(_one_line(f"error while {action} {url}: {exc!r}"))

    def write_bytes(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        # One PutObject with the whole body: S3 makes it visible all at once or not at all.
        # upload_fileobj would switch to multipart above its threshold, still atomic on AWS
        # but not something every S3-compatible server promises.
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, self.url(key), "writing") from None

    def read_bytes(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
            return resp["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, self.url(key), "reading") from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
            return True
        except (ClientError, BotoCoreError) as exc:
            err = self._error(exc, self.url(key), "checking")
            if isinstance(err, ObjectNotFound):
                return False
            raise err from None

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (ClientError, BotoCoreError) as exc:
            err = self._error(exc, self.url(key), "deleting")
            if not isinstance(err, ObjectNotFound):
                raise err from None

    def list_keys(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        base = f"{self.prefix}/" if self.prefix else ""
        out: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                for obj in page.get("Contents", []):
                    out.append(obj["Key"][len(base) :])
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"s3://{self.bucket}/{base}{prefix}", "listing") from None
        return sorted(k for k in out if not k.rpartition("/")[2].startswith(TEMP_PREFIX))


def store_from_url(url: str, make_client: Callable[[], S3Client] | None = None) -> Store:
    """Open the store a URL names: a local path, ``file://...`` or ``s3://bucket/prefix``;
    `make_client` builds the client of an S3 store (default: from the environment)."""
    url = url.strip()
    if not url:
        raise ValueError("empty storage URL")
    if url.startswith("s3://"):
        parsed = urlparse(url)
        return S3Store(parsed.netloc, parsed.path, make_client=make_client)
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file URL with a remote host is not supported: {url}")
        return LocalStore(unquote(parsed.path))
    if "://" in url:
        raise ValueError(f"unsupported storage URL {url!r}: use a local path or s3://bucket/prefix")
    return LocalStore(url)


def write_parquet(store: Store, key: str, df: pl.DataFrame) -> None:
    """Serialize in memory first so the store's atomic write covers the whole file."""
    buf = io.BytesIO()
    df.write_parquet(buf)
    store.write_bytes(key, buf.getvalue())


#: Decoded Parquet objects by (store, key), with a digest of the bytes they were decoded from.
_FRAMES: OrderedDict[tuple[str, str], tuple[bytes, pl.DataFrame]] = OrderedDict()
FRAME_CACHE_SIZE = 4096


def read_parquet(store: Store, key: str) -> pl.DataFrame:
    """The object as a DataFrame; bytes already decoded in this process are not decoded again.

    A replay reads the same few hundred small Parquet objects every day (the windows of bars
    and feature rows behind each model and drift report); decoding them again cost more than
    the day's model fit. The object is always read, and the cache is keyed by a digest of its
    bytes, so an object replaced by any process (or any store) is never served stale; callers
    get their own (shallow, cheap) copy of the frame.
    """
    data = store.read_bytes(key)
    digest = hashlib.blake2b(data, digest_size=16).digest()
    slot = (store.url(), key)
    hit = _FRAMES.get(slot)
    if hit is not None and hit[0] == digest:
        _FRAMES.move_to_end(slot)
        return hit[1].clone()
    frame = pl.read_parquet(io.BytesIO(data))
    _FRAMES[slot] = (digest, frame)
    if len(_FRAMES) > FRAME_CACHE_SIZE:
        _FRAMES.popitem(last=False)
    return frame.clone()


def _json_default(obj: object) -> object:
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    # numpy scalars (from scipy/LightGBM results) know how to become plain Python numbers.
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def json_safe(obj: Any) -> Any:
    """NaN/inf become null and numpy scalars plain numbers, so what is written is strict JSON
    that any reader (not only Python's) accepts."""
    import math

    import numpy as np

    if isinstance(obj, np.floating | np.integer | np.bool_):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def dumps_json(obj: object) -> bytes:
    """Canonical JSON bytes: sorted keys and a fixed indent keep diffs and hashes stable."""
    text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, default=_json_default)
    return (text + "\n").encode("utf-8")


def write_json(store: Store, key: str, obj: object) -> None:
    store.write_bytes(key, dumps_json(obj))


def read_json(store: Store, key: str) -> Any:
    return json.loads(store.read_bytes(key).decode("utf-8"))
