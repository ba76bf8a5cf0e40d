"""The documents generated from the records (docs/prediction.schema.json, the field tables of
docs/CONTRACTS.md) match the records, and the run config of the decision is the domain's."""

import json
from pathlib import Path

import dagster as dg
import pydantic
import pytest

from zdte_assets.core.records import Prediction
from zdte_assets.orchestration.assets.prediction import DecisionSettings
from zdte_assets.trading import contracts
from zdte_assets.trading.pricing import DecisionConfig

REGENERATE = "regenerate with: python -m zdte_assets.trading.contracts"


def test_committed_schema_is_the_generated_one() -> None:
    committed = (contracts.DOCS / contracts.SCHEMA_FILE).read_text()
    assert committed == contracts.schema_text(), REGENERATE


def test_committed_contract_tables_are_the_generated_ones() -> None:
    committed = (contracts.DOCS / contracts.CONTRACTS_FILE).read_text()
    assert contracts.generated_tables() in committed, REGENERATE
    assert contracts.contracts_text(committed) == committed


def test_every_prediction_field_is_in_the_tables() -> None:
    tables = contracts.generated_tables()
    for name in Prediction.model_fields:
        assert f"| `{name}` |" in tables, name
    for name in DecisionConfig.model_fields:
        assert f"| `{name}` |" in tables, name


def test_regenerating_rewrites_a_stale_document(tmp_path: Path) -> None:
    (tmp_path / contracts.SCHEMA_FILE).write_text("{}")
    stale = "# hand-written\n\n" + contracts.BEGIN + "\n| old |\n" + contracts.END + "\n\ntail\n"
    (tmp_path / contracts.CONTRACTS_FILE).write_text(stale)
    contracts.write(tmp_path)
    assert json.loads((tmp_path / contracts.SCHEMA_FILE).read_text())["title"]
    text = (tmp_path / contracts.CONTRACTS_FILE).read_text()
    assert text.startswith("# hand-written\n") and text.endswith("\n\ntail\n")
    assert "| old |" not in text and contracts.generated_tables() in text


# --- the run config is the domain config --------------------------------------------------------


def test_run_config_has_exactly_the_domain_fields() -> None:
    assert set(DecisionSettings.model_fields) == set(DecisionConfig.model_fields)
    assert issubclass(DecisionSettings, DecisionConfig)
    assert issubclass(DecisionSettings, dg.Config)


def test_run_config_defaults_are_the_domain_defaults() -> None:
    assert DecisionSettings().to_config() == DecisionConfig()
    assert type(DecisionSettings().to_config()) is DecisionConfig


def test_run_config_takes_ticker_increments_as_a_mapping_and_checks_like_the_domain() -> None:
    settings = DecisionSettings.model_validate(
        {"ticker_strike_increments": {"aapl": 5.0}, "min_edge": 0.05}
    )
    config = settings.to_config()
    assert config.strike_increment("AAPL", 10.0) == 5.0
    assert config.min_edge == 0.05
    # Stored with the prediction as pairs, the layout of schema_version 2.
    assert config.to_dict()["ticker_strike_increments"] == [["AAPL", 5.0]]
    with pytest.raises(pydantic.ValidationError, match="iv_ratio"):
        DecisionSettings(iv_ratio=0.9)


@dg.asset
def probe(config: DecisionSettings) -> None:
    del config


def test_dagster_sees_every_domain_field_in_the_run_config_schema() -> None:
    fields = probe.op.config_schema.config_type.fields  # type: ignore[union-attr]
    assert set(fields) == set(DecisionConfig.model_fields)
