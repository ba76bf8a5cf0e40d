"""Create the S3 buckets zdte and MLflow write to, once, before anything else starts.

SeaweedFS would create a bucket on first upload for its admin identity, but AWS and most
S3-compatible servers do not, and a missing bucket is clearer at deploy time than at 16:05.
Idempotent; waits for the S3 server to come up. Configured only by the standard AWS variables
plus ZDTE_STORAGE_URL and MLFLOW_ARTIFACTS_DESTINATION.

Each bucket gets SSE-S3 (AES256) as its default encryption, as `zdte stack up` does, when the
server can encrypt: SeaweedFS `weed server` needs a key for that (``WEED_S3_SSE_KEY``, any long
secret, or ``WEED_S3_SSE_KEK``, 64 hex digits); without one, a default encryption would fail
every write, so the bucket is left unencrypted and a warning says why.
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import urlparse

from zdte_assets.storage.store import ensure_bucket_encryption, make_s3_client


def buckets() -> list[str]:
    names = []
    for var in ("ZDTE_STORAGE_URL", "MLFLOW_ARTIFACTS_DESTINATION"):
        url = os.environ.get(var, "").strip()
        if url.startswith("s3://"):
            names.append(urlparse(url).netloc)
    return sorted(set(names))


def main(timeout: float = 120.0) -> int:
    client = make_s3_client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                print(f"S3 not reachable at {client.meta.endpoint_url}: {exc}", file=sys.stderr)
                return 1
            time.sleep(2)
    for name in buckets():
        if name in existing:
            print(f"bucket s3://{name} exists")
        else:
            client.create_bucket(Bucket=name)
            print(f"bucket s3://{name} created")
        if ensure_bucket_encryption(client, name):
            print(f"bucket s3://{name} encrypts by default (SSE-S3, AES256)")
        else:
            print(
                f"warning: bucket s3://{name} is NOT encrypted: the S3 server cannot encrypt "
                "(SeaweedFS: set WEED_S3_SSE_KEY on its container)",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
