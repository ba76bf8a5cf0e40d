"""The documents generated from the trading records: docs/prediction.schema.json and the field
tables of docs/CONTRACTS.md.

They are written by ``python -m zdte_assets.trading.contracts`` and a test fails when the
committed files differ from what this module generates, so the documents cannot drift from the
records the code builds and reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from zdte_assets.core.records import Outcome, Prediction, prediction_json_schema
from zdte_assets.trading.pricing import DecisionConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA_FILE = "prediction.schema.json"
CONTRACTS_FILE = "CONTRACTS.md"
#: The generated part of CONTRACTS.md lies between these two lines; the rest is written by hand.
BEGIN = "<!-- generated from zdte_assets.core.records by zdte_assets.trading.contracts -->"
END = "<!-- end of generated tables -->"
#: Records whose fields CONTRACTS.md lists, nested records after the one holding them.
TABLES: tuple[tuple[str, type[BaseModel]], ...] = (
    ("Prediction (predictions/{TICKER}/{date}.json)", Prediction),
    ("Outcome (outcomes/{TICKER}/{date}.json)", Outcome),
    ("DecisionConfig (decision.config, the prediction asset's run config)", DecisionConfig),
)


def schema_text() -> str:
    """docs/prediction.schema.json as it must be committed."""
    return json.dumps(prediction_json_schema(), indent=2) + "\n"


def _type_name(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_type_name(p) for p in prop["anyOf"])
    if "const" in prop:
        return f"const {json.dumps(prop['const'])}"
    if "enum" in prop:
        return " / ".join(json.dumps(v) for v in prop["enum"])
    kind = str(prop.get("type", "any"))
    if "format" in prop:
        kind = f"{kind} ({prop['format']})"
    return kind


def field_table(model: type[BaseModel]) -> str:
    """A markdown table of `model`'s fields: name, JSON type, required, description."""
    schema = model.model_json_schema(mode="serialization")
    required = set(schema.get("required", []))
    lines = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        kind = _type_name(prop)
        text = str(prop.get("description", "")).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{name}` | {kind} | {'yes' if name in required else 'no'} | {text} |")
    return "\n".join(lines)


def _nested_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    for field in model.model_fields.values():
        kind = field.annotation
        is_record = isinstance(kind, type) and issubclass(kind, BaseModel)
        if is_record and kind is not DecisionConfig and kind not in out:
            out.append(kind)  # type: ignore[arg-type]
    return out


def generated_tables() -> str:
    """The generated part of docs/CONTRACTS.md, markers included."""
    parts = [BEGIN]
    for title, model in TABLES:
        parts += ["", f"### {title}", "", field_table(model)]
        for nested in _nested_models(model):
            parts += ["", f"#### {title.split(' ')[0]}.{nested.__name__}", "", field_table(nested)]
    parts += ["", END]
    return "\n".join(parts)


def contracts_text(current: str) -> str:
    """docs/CONTRACTS.md with its generated part replaced (appended when it has none)."""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + generated_tables() + tail
    return current.rstrip("\n") + "\n\n" + generated_tables() + "\n"


def write(docs: Path = DOCS) -> None:
    """Regenerate both documents under `docs`."""
    (docs / SCHEMA_FILE).write_text(schema_text())
    contracts = docs / CONTRACTS_FILE
    contracts.write_text(contracts_text(contracts.read_text()))


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS)
