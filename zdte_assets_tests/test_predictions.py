"""Prediction records: the JSON schema in docs/, the stored layout, the published copy on a real
S3 server (read back with plain boto3), and the invariants every record must satisfy."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl
import pydantic
import pytest

from zdte_assets.core.records import Prediction
from zdte_assets.storage import store as storage
from zdte_assets.trading import predictions
from zdte_assets_tests.conftest import REPLAY_END, REPLAY_START, Replayed, S3Bucket

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "prediction.schema.json"
#: A prediction as the previous version (hand-written dicts) published it.
PREVIOUS_LAYOUT = Path(__file__).resolve().parent / "data" / "prediction_v2_previous.json"
TICKER = "AAPL"
#: A Tuesday inside the replayed week; AAPL had Friday expiries only in 2024.
TUESDAY = dt.date(2024, 11, 5)


def replayed_days() -> list[dt.date]:
    """The sessions of the fixture's week, derived from the calendar dates alone (no holiday in
    that week, so every weekday is a session)."""
    start, end = dt.date.fromisoformat(REPLAY_START), dt.date.fromisoformat(REPLAY_END)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [d for d in days if d.weekday() < 5]


# --- the schema, checked with a maintained validator ----------------------------------------------
# jsonschema checks `format: date` itself; `date-time` needs an optional package, so the check
# is registered here (ISO 8601 with a UTC offset, as the records write it).
FORMATS = jsonschema.FormatChecker()
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return _DATE_TIME.match(value) is not None and bool(dt.datetime.fromisoformat(value))


def validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every violation of `schema` by `instance`, as 'path: message' lines (empty = valid)."""
    validator = jsonschema.Draft202012Validator(schema, format_checker=FORMATS)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(instance)]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded = dict(json.loads(SCHEMA_PATH.read_text()))
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.fixture(scope="module")
def records(replayed: Replayed) -> dict[dt.date, Prediction]:
    return {
        d: predictions.read_prediction(TICKER, d, storage_url=replayed.storage)
        for d in replayed_days()
    }


@pytest.fixture(scope="module")
def stored_json(replayed: Replayed) -> dict[dt.date, dict[str, Any]]:
    """The published files as the desk's tools see them (plain JSON, no zdte code)."""
    root = Path(replayed.storage) / "predictions" / TICKER
    return {d: json.loads((root / f"{d.isoformat()}.json").read_text()) for d in replayed_days()}


def _property_schemas(
    schema: dict[str, Any], root: dict[str, Any], path: str = "$"
) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, sub in schema.get("properties", {}).items():
        out.append((f"{path}.{name}", sub))
        target = sub
        if "$ref" in sub:
            target = root["$defs"][sub["$ref"].rsplit("/", 1)[-1]]
        out += _property_schemas(target, root, f"{path}.{name}")
    return out


def test_schema_is_draft_2020_12_and_describes_every_field(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    fields = _property_schemas(schema, schema)
    assert len(fields) > 40
    undescribed = [p for p, sub in fields if not str(sub.get("description", "")).strip()]
    assert undescribed == []
    # Every object is closed and lists all its properties as required: the schema is the whole
    # record, not a loose subset of it.
    for name, sub in [("$", schema), *schema["$defs"].items()]:
        assert sub.get("additionalProperties") is False, name
        assert sorted(sub["required"]) == sorted(sub["properties"]), name


def test_stored_records_validate_against_schema(
    schema: dict[str, Any], stored_json: dict[dt.date, dict[str, Any]]
) -> None:
    assert len(stored_json) == 5
    for day, record in stored_json.items():
        assert validate(record, schema) == [], day


def test_a_record_of_the_previous_layout_validates_and_reads() -> None:
    # Written by the version before the records (schema_version 2, hand-kept schema); the desk
    # holds such files, so the generated schema and the record must accept them unchanged.
    old = json.loads(PREVIOUS_LAYOUT.read_text())
    schema = dict(json.loads(SCHEMA_PATH.read_text()))
    assert validate(old, schema) == []
    again = Prediction.from_json(PREVIOUS_LAYOUT.read_bytes())
    assert again.model_dump(mode="json") == old


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.pop("p_up"), "'p_up' is a required property"),
        (lambda r: r.__setitem__("surprise", 1), "'surprise' was unexpected"),
        (lambda r: r["decision"]["config"].pop("iv_ratio"), "'iv_ratio' is a required property"),
        (lambda r: r["model"].__setitem__("extra", "x"), "'extra' was unexpected"),
        (lambda r: r.__setitem__("p_up", 1.0), "greater than or equal to the maximum"),
        (lambda r: r.__setitem__("action", "BUY"), "is not one of"),
        (lambda r: r.__setitem__("decision_time", "2024-11-05 09:30"), "is not a 'date-time'"),
        (lambda r: r.__setitem__("date", "2024-13-05"), "is not a 'date'"),
        (lambda r: r["decision"].__setitem__("contracts", 1.5), "is not of type 'integer'"),
        (lambda r: r.__setitem__("schema_version", 3), "2 was expected"),
        (lambda r: r["model"].__setitem__("version", "v2"), "does not match"),
    ],
)
def test_schema_rejects_broken_records(
    schema: dict[str, Any],
    stored_json: dict[dt.date, dict[str, Any]],
    change: Any,
    expected: str,
) -> None:
    record = copy.deepcopy(stored_json[TUESDAY])
    change(record)
    errors = validate(record, schema)
    assert any(expected in e for e in errors), errors
    # The record refuses what the schema refuses: one contract, two views.
    with pytest.raises(pydantic.ValidationError):
        Prediction.from_json(record)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.__setitem__("open", "221.8"), "is not of type 'number'"),
        (lambda r: r.__setitem__("close_time", "2024-11-05 16:00-05:00"), "is not a 'date-time'"),
        (lambda r: r["decision"].__setitem__("expiry_today", 1), "is not of type 'boolean'"),
    ],
)
def test_what_the_record_coerces_it_writes_back_in_the_schema_form(
    schema: dict[str, Any],
    stored_json: dict[dt.date, dict[str, Any]],
    change: Any,
    expected: str,
) -> None:
    # The schema is strict; the record reads such values (pydantic's lax mode) but always
    # writes them in the form the schema demands, so nothing it publishes is refused.
    record = copy.deepcopy(stored_json[TUESDAY])
    change(record)
    assert any(expected in e for e in validate(record, schema))
    written = json.loads(Prediction.from_json(record).to_json())
    assert validate(written, schema) == []


def test_record_refuses_a_number_json_cannot_hold(
    stored_json: dict[dt.date, dict[str, Any]],
) -> None:
    record = copy.deepcopy(stored_json[TUESDAY])
    record["predicted_return"] = math.nan
    with pytest.raises(pydantic.ValidationError, match="predicted_return"):
        Prediction.from_json(record)


# --- stored layout and invariants ----------------------------------------------------------------


def test_json_and_table_in_storage(replayed: Replayed, records: dict[dt.date, Prediction]) -> None:
    root = Path(replayed.storage)
    for day, record in records.items():
        path = root / "predictions" / TICKER / f"{day.isoformat()}.json"
        assert json.loads(path.read_text()) == record.model_dump(mode="json")
    table = pl.read_parquet(root / "predictions" / f"{TICKER}.parquet")
    assert table["date"].to_list() == replayed_days()
    assert table["date"].is_unique().all()
    for row in table.iter_rows(named=True):
        record = records[row["date"]]
        assert row["ticker"] == record.ticker == TICKER
        assert row["predicted_return"] == record.predicted_return
        assert row["predicted_close"] == record.predicted_close
        assert row["p_up"] == record.p_up
        assert row["interval_low"] == record.interval.low
        assert row["action"] == record.action
        assert row["strike"] == record.decision.strike
        assert row["model_version"] == record.model.version


def test_record_invariants(records: dict[dt.date, Prediction]) -> None:
    for day, r in records.items():
        assert r.date == day
        assert math.isclose(r.predicted_close, r.open * math.exp(r.predicted_return), rel_tol=1e-12)
        assert r.interval.low < r.predicted_close < r.interval.high
        assert 0.0 < r.p_up < 1.0
        # p_up is the stored distribution's: a zero forecast means E[close] = open, whose median
        # close sits half a variance below the open, so p_up is just under 0.5.
        forecast = predictions.forecast_of(r)
        assert r.p_up == pytest.approx(forecast.p_up, abs=1e-12)
        if r.predicted_return == 0:
            assert 0.5 - forecast.scale < r.p_up < 0.5
        assert r.distribution.mu == r.predicted_return
        assert r.interval_50.low > r.interval.low
        assert r.interval_50.high < r.interval.high
        assert (r.naive.predicted_return, r.naive.predicted_close) == (0, r.open)
        assert r.action == r.decision.action
        if r.action == "NO_TRADE":
            assert r.decision.contracts == 0
            assert r.decision.cost_usd == 0.0
        # AAPL's same-day expiries were Fridays only in 2024.
        assert r.decision.expiry_today is (day.weekday() == 4)


def test_no_expiry_day_is_no_trade(records: dict[dt.date, Prediction]) -> None:
    tuesday = records[TUESDAY]
    assert tuesday.action == "NO_TRADE"
    assert tuesday.reason.startswith("no expiry today")
    assert tuesday.decision.reason_code == "no_expiry"
    assert tuesday.decision.expiry_today is False
    for day, record in records.items():
        if day.weekday() != 4:
            assert record.action == "NO_TRADE", day
            assert record.reason.startswith("no expiry today"), day


def test_missing_prediction_raises(replayed: Replayed) -> None:
    with pytest.raises(
        predictions.PredictionNotFound, match="no prediction for AAPL on 2024-11-11"
    ):
        predictions.read_prediction(TICKER, dt.date(2024, 11, 11), storage_url=replayed.storage)


# --- publishing to a real S3 server ---------------------------------------------------------------


def _get(bucket: S3Bucket, key: str) -> bytes:
    return bucket.client().get_object(Bucket=bucket.name, Key=key)["Body"].read()


def test_publish_to_s3_and_read_back_with_boto3(
    s3_bucket: S3Bucket, records: dict[dt.date, Prediction]
) -> None:
    store = storage.store_from_url(s3_bucket.url("zdte"))
    for record in records.values():
        json_url, table_url = predictions.publish(store, record)
        assert json_url == f"s3://{s3_bucket.name}/zdte/predictions/AAPL/{record.date}.json"
        assert table_url == f"s3://{s3_bucket.name}/zdte/predictions/AAPL.parquet"

    for day, record in records.items():
        body = _get(s3_bucket, f"zdte/predictions/AAPL/{day.isoformat()}.json")
        assert json.loads(body) == record.model_dump(mode="json")
    table = pl.read_parquet(io.BytesIO(_get(s3_bucket, "zdte/predictions/AAPL.parquet")))
    assert table["date"].to_list() == replayed_days()
    assert table["predicted_return"].to_list() == [r.predicted_return for r in records.values()]
    assert sorted(s3_bucket.keys("zdte/")) == sorted(
        ["zdte/predictions/AAPL.parquet"]
        + [f"zdte/predictions/AAPL/{d.isoformat()}.json" for d in records]
    )

    # Republishing a day replaces its JSON and its row; the table never holds a date twice.
    changed = records[TUESDAY].model_copy(update={"reason": "no expiry today: republished"})
    predictions.publish(store, changed)
    predictions.publish(store, changed)
    body = _get(s3_bucket, f"zdte/predictions/AAPL/{TUESDAY.isoformat()}.json")
    assert json.loads(body)["reason"] == "no expiry today: republished"
    table = pl.read_parquet(io.BytesIO(_get(s3_bucket, "zdte/predictions/AAPL.parquet")))
    assert table.height == len(records)
    assert table["date"].is_unique().all()
    assert table["date"].to_list() == replayed_days()
    reasons = dict(zip(table["date"].to_list(), table["reason"].to_list(), strict=True))
    assert reasons[TUESDAY] == "no expiry today: republished"
    others = {d: r.reason for d, r in records.items() if d != TUESDAY}
    assert {d: reasons[d] for d in others} == others


def test_published_json_has_no_negative_zero(
    stored_json: dict[dt.date, dict[str, Any]],
) -> None:
    # A forecast of exactly nothing can come out of arithmetic as -0.0; the published text must
    # not carry a sign the number does not have, in the record or its nested parts.
    record = copy.deepcopy(stored_json[TUESDAY])
    record["predicted_return"] = -0.0
    record["distribution"]["mu"] = -0.0
    text = Prediction.from_json(record).to_json().decode()
    assert "-0.0," not in text and "-0.0\n" not in text
    written = json.loads(text)
    assert math.copysign(1.0, written["predicted_return"]) == 1.0
    assert math.copysign(1.0, written["distribution"]["mu"]) == 1.0
