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

import polars as pl
import pytest

from zdte_assets.storage import store as storage
from zdte_assets.trading import predictions
from zdte_assets_tests.conftest import REPLAY_END, REPLAY_START, Replayed, S3Bucket

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "prediction.schema.json"
TICKER = "AAPL"
#: A Tuesday inside the replayed week; AAPL had Friday expiries only in 2024.
TUESDAY = dt.date(2024, 11, 5)


def replayed_days() -> list[dt.date]:
    """The sessions of the fixture's week, derived from the calendar dates alone (no holiday in
    that week, so every weekday is a session)."""
    start, end = dt.date.fromisoformat(REPLAY_START), dt.date.fromisoformat(REPLAY_END)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [d for d in days if d.weekday() < 5]


# --- a small, strict JSON Schema validator ----------------------------------------------------
# The `jsonschema` package is not installed in this environment, so the subset of draft 2020-12
# the schema uses is implemented here. Any keyword outside that subset is an error, so the schema
# cannot silently rely on something this validator would ignore. `format` is asserted.

_ANNOTATIONS = frozenset({"$schema", "title", "description"})
_KEYWORDS = _ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "pattern",
    "format",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def _is_number(value: Any) -> bool:
    return _json_type(value) in ("integer", "number") and math.isfinite(value)


def _has_type(value: Any, name: str) -> bool:
    kind = _json_type(value)
    if name == "number":
        return _is_number(value)
    if name == "integer":
        return kind == "integer" or (kind == "number" and float(value).is_integer())
    return kind == name


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0."""
    ka, kb = _json_type(a), _json_type(b)
    if {ka, kb} <= {"integer", "number"}:
        return bool(a == b)
    if ka != kb:
        return False
    if ka == "object":
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if ka == "array":
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def validate(instance: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every violation of `schema` by `instance`, as 'path: problem' lines (empty = valid)."""
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ValueError(f"{path}: schema keyword(s) not supported here: {sorted(unknown)}")
    errors: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_has_type(instance, n) for n in names):
            return [f"{path}: {instance!r} is not of type {names}"]
    if "enum" in schema and not any(_json_equal(instance, e) for e in schema["enum"]):
        errors.append(f"{path}: {instance!r} not in {schema['enum']}")
    if "const" in schema and not _json_equal(instance, schema["const"]):
        errors.append(f"{path}: {instance!r} != {schema['const']!r}")
    if _json_type(instance) in ("integer", "number"):
        if not math.isfinite(instance):
            errors.append(f"{path}: {instance!r} is not a finite JSON number")
        else:
            if "minimum" in schema and not instance >= schema["minimum"]:
                errors.append(f"{path}: {instance} < minimum {schema['minimum']}")
            if "maximum" in schema and not instance <= schema["maximum"]:
                errors.append(f"{path}: {instance} > maximum {schema['maximum']}")
            if "exclusiveMinimum" in schema and not instance > schema["exclusiveMinimum"]:
                errors.append(
                    f"{path}: {instance} <= exclusiveMinimum {schema['exclusiveMinimum']}"
                )
            if "exclusiveMaximum" in schema and not instance < schema["exclusiveMaximum"]:
                errors.append(
                    f"{path}: {instance} >= exclusiveMaximum {schema['exclusiveMaximum']}"
                )
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "pattern" in schema and re.search(schema["pattern"], instance) is None:
            errors.append(f"{path}: {instance!r} does not match {schema['pattern']!r}")
        if "format" in schema:
            errors += _check_format(instance, schema["format"], path)
    if isinstance(instance, dict):
        for name in schema.get("required", []):
            if name not in instance:
                errors.append(f"{path}: missing required property {name!r}")
        props = schema.get("properties", {})
        for name, value in instance.items():
            if name in props:
                errors += validate(value, props[name], f"{path}.{name}")
        extra = schema.get("additionalProperties", True)
        if extra is not True and extra is not False:
            raise ValueError(f"{path}: only boolean additionalProperties is supported")
        if extra is False:
            errors += [f"{path}: unexpected property {k!r}" for k in instance if k not in props]
    return errors


def _check_format(value: str, fmt: str, path: str) -> list[str]:
    if fmt == "date":
        try:
            ok = _DATE.match(value) is not None and bool(dt.date.fromisoformat(value))
        except ValueError:
            ok = False
    elif fmt == "date-time":
        try:
            ok = _DATE_TIME.match(value) is not None and bool(dt.datetime.fromisoformat(value))
        except ValueError:
            ok = False
    else:
        raise ValueError(f"{path}: format {fmt!r} not supported here")
    return [] if ok else [f"{path}: {value!r} is not a valid {fmt}"]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text()))


@pytest.fixture(scope="module")
def records(replayed: Replayed) -> dict[dt.date, dict[str, Any]]:
    return {
        d: predictions.read_prediction(TICKER, d, storage_url=replayed.storage)
        for d in replayed_days()
    }


# --- the schema --------------------------------------------------------------------------------


def _property_schemas(schema: dict[str, Any], path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, sub in schema.get("properties", {}).items():
        out.append((f"{path}.{name}", sub))
        out += _property_schemas(sub, f"{path}.{name}")
    return out


def test_schema_is_draft_2020_12_and_describes_every_field(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    fields = _property_schemas(schema)
    assert len(fields) > 40
    undescribed = [p for p, sub in fields if not str(sub.get("description", "")).strip()]
    assert undescribed == []
    # Every object is closed and lists all its properties as required: the schema is the whole
    # record, not a loose subset of it.
    for path, sub in [("$", schema), *fields]:
        if "properties" in sub:
            assert sub.get("additionalProperties") is False, path
            assert sorted(sub["required"]) == sorted(sub["properties"]), path


def test_stored_records_validate_against_schema(
    schema: dict[str, Any], records: dict[dt.date, dict[str, Any]]
) -> None:
    assert len(records) == 5
    for day, record in records.items():
        assert validate(record, schema) == [], day


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.pop("p_up"), "missing required property 'p_up'"),
        (lambda r: r.__setitem__("surprise", 1), "unexpected property 'surprise'"),
        (lambda r: r["decision"]["config"].pop("iv_ratio"), "missing required property 'iv_ratio'"),
        (lambda r: r["model"].__setitem__("extra", "x"), "unexpected property 'extra'"),
        (lambda r: r.__setitem__("p_up", 1.0), "exclusiveMaximum"),
        (lambda r: r.__setitem__("open", "221.8"), "is not of type"),
        (lambda r: r.__setitem__("action", "BUY"), "not in"),
        (lambda r: r.__setitem__("date", "2024-13-05"), "not a valid date"),
        (lambda r: r.__setitem__("decision_time", "2024-11-05 09:30"), "not a valid date-time"),
        (lambda r: r["decision"].__setitem__("contracts", 1.5), "is not of type"),
        (lambda r: r["decision"].__setitem__("expiry_today", 1), "is not of type"),
        (lambda r: r.__setitem__("schema_version", True), "!= 2"),
        (lambda r: r["model"].__setitem__("version", "v2"), "does not match"),
        (lambda r: r.__setitem__("predicted_return", math.nan), "is not of type"),
    ],
)
def test_validator_rejects_broken_records(
    schema: dict[str, Any],
    records: dict[dt.date, dict[str, Any]],
    change: Any,
    expected: str,
) -> None:
    record = copy.deepcopy(records[TUESDAY])
    change(record)
    errors = validate(record, schema)
    assert any(expected in e for e in errors), errors


def test_validator_refuses_unknown_schema_keywords() -> None:
    with pytest.raises(ValueError, match="not supported"):
        validate({}, {"type": "object", "minProperties": 1})


# --- stored layout and invariants ----------------------------------------------------------------


def test_json_and_table_in_storage(
    replayed: Replayed, records: dict[dt.date, dict[str, Any]]
) -> None:
    root = Path(replayed.storage)
    for day, record in records.items():
        path = root / "predictions" / TICKER / f"{day.isoformat()}.json"
        assert json.loads(path.read_text()) == record
    table = pl.read_parquet(root / "predictions" / f"{TICKER}.parquet")
    assert table["date"].to_list() == replayed_days()
    assert table["date"].is_unique().all()
    for row in table.iter_rows(named=True):
        record = records[row["date"]]
        assert row["ticker"] == record["ticker"] == TICKER
        assert row["predicted_return"] == record["predicted_return"]
        assert row["predicted_close"] == record["predicted_close"]
        assert row["p_up"] == record["p_up"]
        assert row["interval_low"] == record["interval"]["low"]
        assert row["action"] == record["action"]
        assert row["strike"] == record["decision"]["strike"]
        assert row["model_version"] == record["model"]["version"]


def test_record_invariants(records: dict[dt.date, dict[str, Any]]) -> None:
    for day, r in records.items():
        assert r["date"] == day.isoformat()
        assert math.isclose(
            r["predicted_close"], r["open"] * math.exp(r["predicted_return"]), rel_tol=1e-12
        )
        assert r["interval"]["low"] < r["predicted_close"] < r["interval"]["high"]
        assert 0.0 < r["p_up"] < 1.0
        # p_up is the stored distribution's: a zero forecast means E[close] = open, whose median
        # close sits half a variance below the open, so p_up is just under 0.5.
        forecast = predictions.forecast_of(r)
        assert r["p_up"] == pytest.approx(forecast.p_up, abs=1e-12)
        if r["predicted_return"] == 0:
            assert 0.5 - forecast.scale < r["p_up"] < 0.5
        assert r["distribution"]["mu"] == r["predicted_return"]
        assert r["interval_50"]["low"] > r["interval"]["low"]
        assert r["interval_50"]["high"] < r["interval"]["high"]
        assert r["naive"] == {"predicted_return": 0.0, "predicted_close": r["open"]}
        assert r["action"] == r["decision"]["action"]
        if r["action"] == "NO_TRADE":
            assert r["decision"]["contracts"] == 0
            assert r["decision"]["cost_usd"] == 0.0
        # AAPL's same-day expiries were Fridays only in 2024.
        assert r["decision"]["expiry_today"] is (day.weekday() == 4)


def test_no_expiry_day_is_no_trade(records: dict[dt.date, dict[str, Any]]) -> None:
    tuesday = records[TUESDAY]
    assert tuesday["action"] == "NO_TRADE"
    assert tuesday["reason"].startswith("no expiry today")
    assert tuesday["decision"]["reason_code"] == "no_expiry"
    assert tuesday["decision"]["expiry_today"] is False
    for day, record in records.items():
        if day.weekday() != 4:
            assert record["action"] == "NO_TRADE", day
            assert record["reason"].startswith("no expiry today"), day


def test_missing_prediction_raises(replayed: Replayed) -> None:
    with pytest.raises(
        predictions.PredictionNotFound, match="no prediction for AAPL on 2024-11-11"
    ):
        predictions.read_prediction(TICKER, dt.date(2024, 11, 11), storage_url=replayed.storage)


# --- publishing to a real S3 server ---------------------------------------------------------------


def _get(bucket: S3Bucket, key: str) -> bytes:
    return bucket.client().get_object(Bucket=bucket.name, Key=key)["Body"].read()


def test_publish_to_s3_and_read_back_with_boto3(
    s3_bucket: S3Bucket, records: dict[dt.date, dict[str, Any]]
) -> None:
    store = storage.store_from_url(s3_bucket.url("zdte"))
    for record in records.values():
        json_url, table_url = predictions.publish(store, record)
        assert json_url == f"s3://{s3_bucket.name}/zdte/predictions/AAPL/{record['date']}.json"
        assert table_url == f"s3://{s3_bucket.name}/zdte/predictions/AAPL.parquet"

    for day, record in records.items():
        body = _get(s3_bucket, f"zdte/predictions/AAPL/{day.isoformat()}.json")
        assert json.loads(body) == record
    table = pl.read_parquet(io.BytesIO(_get(s3_bucket, "zdte/predictions/AAPL.parquet")))
    assert table["date"].to_list() == replayed_days()
    assert table["predicted_return"].to_list() == [r["predicted_return"] for r in records.values()]
    assert sorted(s3_bucket.keys("zdte/")) == sorted(
        ["zdte/predictions/AAPL.parquet"]
        + [f"zdte/predictions/AAPL/{d.isoformat()}.json" for d in records]
    )

    # Republishing a day replaces its JSON and its row; the table never holds a date twice.
    changed = copy.deepcopy(records[TUESDAY])
    changed["reason"] = "no expiry today: republished"
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
    others = {d: r["reason"] for d, r in records.items() if d != TUESDAY}
    assert {d: reasons[d] for d in others} == others
