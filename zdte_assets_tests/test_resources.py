"""The S3 client Dagster runs use (dagster-aws's S3Resource): it must address buckets by path on
an on-premises endpoint named by host, as compose's ``http://seaweedfs:8333`` is, where
``<bucket>.<host>`` resolves nowhere; and the resource's fields, not the environment, decide."""

from __future__ import annotations

import pytest
from dagster_aws.s3 import S3Resource

from zdte_assets.orchestration.resources import s3_client_factory


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://seaweedfs:8333", "http://seaweedfs:8333/zdte/a/b.json"),
        ("http://127.0.0.1:8333", "http://127.0.0.1:8333/zdte/a/b.json"),
    ],
)
def test_client_from_the_resource_addresses_buckets_by_path(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, expected: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    factory = s3_client_factory(S3Resource(endpoint_url=endpoint, region_name="us-east-1"))
    assert factory is not None
    client = factory()
    url = client.generate_presigned_url("get_object", Params={"Bucket": "zdte", "Key": "a/b.json"})
    assert url.startswith(expected + "?")


def test_the_resource_fields_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://elsewhere:9000")
    factory = s3_client_factory(S3Resource(endpoint_url="http://seaweedfs:8333", max_attempts=2))
    assert factory is not None
    client = factory()
    assert client.meta.endpoint_url == "http://seaweedfs:8333"
    # botocore counts the first attempt too: max_attempts retries are max_attempts + 1 attempts.
    assert client.meta.config.retries["total_max_attempts"] == 2 + 1
    assert s3_client_factory(None) is None
