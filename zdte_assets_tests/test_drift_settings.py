"""The `drift_report` run config is the domain's `DriftConfig`, and names come from `jobs`."""

from __future__ import annotations

import datetime as dt
import typing

import dagster as dg
import pytest

from zdte_assets.monitoring.config import MONITORING_CONFIG, DriftConfig
from zdte_assets.orchestration.assets.monitoring import DriftSettings, build_monitoring_assets
from zdte_assets.orchestration.jobs import asset_op_name
from zdte_assets.orchestration.partitions import trading_day_partitions


def test_run_config_has_every_field_of_the_domain_config_with_its_type() -> None:
    domain = DriftConfig.model_fields
    run = DriftSettings.model_fields
    assert set(run) == set(domain)
    for name, field in domain.items():
        assert run[name].annotation == field.annotation, name


def test_run_config_defaults_are_what_the_platform_runs_with() -> None:
    settings = DriftSettings()
    assert isinstance(settings, dg.Config) and isinstance(settings, DriftConfig)
    assert settings.as_drift_config() == MONITORING_CONFIG
    assert type(settings.as_drift_config()) is DriftConfig


def test_run_config_validates_as_the_domain_does() -> None:
    with pytest.raises(ValueError, match="cooldown_days"):
        DriftSettings(cooldown_days=-1)
    with pytest.raises(ValueError):
        DriftSettings(data_method="median")  # type: ignore[arg-type]
    assert DriftSettings(data_method="psi").as_drift_config() == MONITORING_CONFIG.model_copy(
        update={"data_method": "psi"}
    )


def test_launchpad_schema_lists_every_field() -> None:
    """Dagster's config schema of the asset (what the launchpad shows and checks)."""
    days = trading_day_partitions(dt.date(2024, 1, 2))
    (asset,) = build_monitoring_assets("AAPL", days)
    schema = asset.op.config_schema.config_type
    assert schema is not None
    assert set(typing.cast(typing.Any, schema).fields) == set(DriftConfig.model_fields)


def test_asset_op_name_is_the_op_the_run_config_addresses() -> None:
    (asset,) = build_monitoring_assets("AAPL", trading_day_partitions(dt.date(2024, 1, 2)))
    assert asset_op_name("AAPL", "drift_report") == asset.op.name
