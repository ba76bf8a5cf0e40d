"""The model lifecycle as recorded by a real replay: MLflow runs and registry, no look-ahead,
reproducible training, and the failures a scheduler must see clearly."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
import pytest
from mlflow import MlflowClient
from mlflow.models import Model

import zdte_assets
from zdte_assets.model import fitting
from zdte_assets.model.params import ModelParams, feature_matrix
from zdte_assets.orchestration.runner import QUIET, local_instance
from zdte_assets.orchestration.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    INPUT_EXAMPLE_ROWS,
    MlflowTracking,
    TrackingError,
)
from zdte_assets.storage import store as storage
from zdte_assets_tests.conftest import REPLAY_END, REPLAY_START, Replayed

TICKER = "AAPL"
NAME = "zdte-AAPL"
WEEK = REPLAY_START  # the replayed week's partition key (its Monday)
#: The Friday before the replayed week: the last session the week's study may see.
EVE = dt.date(2024, 11, 1)


def replayed_days() -> list[dt.date]:
    start, end = dt.date.fromisoformat(REPLAY_START), dt.date.fromisoformat(REPLAY_END)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [d for d in days if d.weekday() < 5]  # no holiday in that week


def previous_weekday(day: dt.date) -> dt.date:
    day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


@pytest.fixture(scope="module")
def client(replayed: Replayed) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{replayed.home}/mlflow.db")


@pytest.fixture(scope="module")
def models(replayed: Replayed) -> dict[dt.date, dict[str, Any]]:
    """The stored `daily_model` values of the replayed days."""
    root = Path(replayed.storage) / TICKER / "daily_model"
    return {d: json.loads((root / f"{d.isoformat()}.json").read_text()) for d in replayed_days()}


@pytest.fixture(scope="module")
def study_version(replayed: Replayed) -> dict[str, Any]:
    path = Path(replayed.storage) / TICKER / "tuned_params" / f"{WEEK}.json"
    versions = json.loads(path.read_text())["versions"]
    assert len(versions) == 1
    return dict(versions[0])


@pytest.fixture(scope="module")
def records(replayed: Replayed) -> dict[dt.date, dict[str, Any]]:
    root = Path(replayed.storage) / "predictions" / TICKER
    return {d: json.loads((root / f"{d.isoformat()}.json").read_text()) for d in replayed_days()}


def stored_frame(replayed: Replayed, asset: str) -> pl.DataFrame:
    files = sorted((Path(replayed.storage) / TICKER / asset).glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]).sort("date")


def training_rows(replayed: Replayed, day: dt.date) -> pl.DataFrame:
    """Feature rows before `day` with their realized target log(close/open), rebuilt from the
    stored asset values."""
    features = stored_frame(replayed, "features").filter(pl.col("date") < day)
    bars = stored_frame(replayed, "daily_bar")
    target = np.log(bars["close"].to_numpy() / bars["open"].to_numpy())
    targets = pl.DataFrame({"date": bars["date"], "target": target})
    return features.join(targets, on="date", how="inner").sort("date")


def feature_row(replayed: Replayed, day: dt.date) -> pl.DataFrame:
    return pl.read_parquet(Path(replayed.storage) / TICKER / "features" / f"{day}.parquet")


def check_dagster_run(run_id: str, partition: str) -> None:
    """The tag points at a real run of the Dagster instance, for the same partition."""
    run = local_instance().get_run_by_id(run_id)
    assert run is not None, run_id
    assert run.tags.get("dagster/partition") == partition


def check_dataset_input(run: Any, digest: str) -> None:
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.digest == digest[:36]
    assert {(t.key, t.value) for t in inputs[0].tags} == {("mlflow.data.context", "training")}


# --- MLflow runs --------------------------------------------------------------------------------


def test_the_weeks_value_lists_its_version_objects(
    replayed: Replayed, study_version: dict[str, Any]
) -> None:
    """Each version is its own object; the `tuned_params` value is the week's list of them."""
    from zdte_assets.model import versions

    stored = versions.week_versions(storage.store_from_url(replayed.storage), TICKER, WEEK)
    assert [v.model_dump(mode="json") for v in stored] == [study_version]
    key = versions.version_key(TICKER, WEEK, EVE)
    assert storage.store_from_url(replayed.storage).exists(key)


def test_experiment_holds_study_and_model_runs(
    client: MlflowClient, models: dict[dt.date, dict[str, Any]], study_version: dict[str, Any]
) -> None:
    exp = client.get_experiment_by_name(NAME)
    assert exp is not None

    def run_ids(kind: str) -> set[str]:
        runs = client.search_runs([exp.experiment_id], f"tags.`zdte.kind` = '{kind}'")
        return {r.info.run_id for r in runs}

    assert study_version["mlflow_run_id"] in run_ids("weekly_study")
    assert {m["mlflow_run_id"] for m in models.values()} <= run_ids("daily_model")


def test_study_run_records_provenance_metrics_and_artifacts(
    client: MlflowClient, study_version: dict[str, Any], tmp_path: Path
) -> None:
    run = client.get_run(study_version["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["zdte.kind"] == "weekly_study"
    assert tags["dagster.partition_key"] == WEEK
    assert tags["dagster.asset_key"] == f"{TICKER}/tuned_params"
    assert tags["zdte.code_version"] == zdte_assets.__version__
    assert len(tags["zdte.data_digest"]) == 64
    int(tags["zdte.data_digest"], 16)
    check_dagster_run(tags["dagster.run_id"], WEEK)

    metrics = run.data.metrics
    assert metrics["val_rmse"] == study_version["rmse"]
    assert metrics["naive_rmse"] == study_version["naive_rmse"]
    assert metrics["rmse_ratio"] == pytest.approx(metrics["val_rmse"] / metrics["naive_rmse"])
    assert run.data.params["as_of"] == study_version["as_of"] == EVE.isoformat()
    check_dataset_input(run, tags["zdte.data_digest"])

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"pareto_front.png", "study.json"} <= artifacts
    png = Path(client.download_artifacts(run.info.run_id, "pareto_front.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    study = json.loads(
        Path(client.download_artifacts(run.info.run_id, "study.json", str(tmp_path))).read_text()
    )
    assert study["chosen"]["params"] == study_version["params"]
    assert len(study["pareto"]) >= 1


def test_daily_model_runs_record_provenance(
    client: MlflowClient, replayed: Replayed, models: dict[dt.date, dict[str, Any]]
) -> None:
    for day, value in models.items():
        run = client.get_run(value["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        assert tags["zdte.kind"] == "daily_model"
        assert tags["dagster.partition_key"] == day.isoformat()
        assert tags["dagster.asset_key"] == f"{TICKER}/daily_model"
        assert tags["zdte.code_version"] == zdte_assets.__version__
        check_dagster_run(tags["dagster.run_id"], day.isoformat())
        check_dataset_input(run, tags["zdte.data_digest"])
        params = run.data.params
        assert params["train_last"] == value["train_last"]
        assert params["tuned_as_of"] == value["tuned_as_of"]
        assert run.data.metrics["sigma"] == value["sigma"]
        # The digest names exactly the rows before the day that the model was trained on.
        rows = training_rows(replayed, day).tail(value["params"]["train_window"])
        assert str(rows["date"][-1]) == value["train_last"]
        assert tags["zdte.data_digest"] == hashlib.sha256(rows.write_csv().encode()).hexdigest()


def test_registry_has_each_days_version_and_challenger_is_newest(
    client: MlflowClient, models: dict[dt.date, dict[str, Any]]
) -> None:
    versions = client.search_model_versions(f"name='{NAME}'")
    numbers = sorted(int(v.version) for v in versions)
    assert len(numbers) >= len(models)
    ours = []
    for day, value in models.items():
        mv = client.get_model_version(NAME, value["model_version"])
        assert mv.run_id == value["mlflow_run_id"]
        assert mv.tags["day"] == day.isoformat()
        assert value["model_uri"] == f"models:/{NAME}/{value['model_version']}"
        ours.append(int(value["model_version"]))
    assert ours == sorted(set(ours))  # one new version per day, in day order
    aliases = client.get_registered_model(NAME).aliases
    assert int(aliases["challenger"]) == max(numbers)


def test_the_store_opens_on_the_models_they_are_described_and_show_their_inputs(
    client: MlflowClient,
    replayed: Replayed,
    models: dict[dt.date, dict[str, Any]],
    study_version: dict[str, Any],
    tmp_path: Path,
) -> None:
    experiment = client.get_experiment_by_name(NAME)
    assert experiment is not None
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert "Default" not in {e.name for e in client.search_experiments()}
    assert client.get_registered_model(NAME).description
    study_artifacts = {a.path for a in client.list_artifacts(study_version["mlflow_run_id"])}
    assert "feature_importance.png" in study_artifacts
    for day, value in models.items():
        features = client.get_run(value["mlflow_run_id"]).data.params["features"].split(",")
        # The version's model directory (a version's run is its day's run, tested above).
        local = client.download_artifacts(value["mlflow_run_id"], "model", str(tmp_path / str(day)))
        mlmodel = Model.load(local)
        assert mlmodel.signature is not None
        assert mlmodel.signature.inputs.input_names() == features
        example = mlmodel.load_input_example(local)
        assert isinstance(example, pd.DataFrame)
        assert list(example.columns) == features
        # The example is the last rows the model was trained on.
        rows = training_rows(replayed, day).tail(value["params"]["train_window"])
        expected = feature_matrix(rows.tail(INPUT_EXAMPLE_ROWS), features)
        np.testing.assert_array_equal(example.to_numpy(), expected)


# --- causality and reproducibility ----------------------------------------------------------------


def test_no_model_sees_its_own_day(
    models: dict[dt.date, dict[str, Any]],
    study_version: dict[str, Any],
    records: dict[dt.date, dict[str, Any]],
) -> None:
    for day, value in models.items():
        train_last = dt.date.fromisoformat(value["train_last"])
        tuned_as_of = dt.date.fromisoformat(value["tuned_as_of"])
        assert train_last < day
        assert tuned_as_of < day
        # ... and is as fresh as allowed: trained through the previous session.
        assert train_last == previous_weekday(day)
        assert tuned_as_of == EVE == dt.date.fromisoformat(study_version["as_of"])
        assert records[day]["model"]["trained_through"] == value["train_last"]
        assert records[day]["model"]["tuned_as_of"] == value["tuned_as_of"]


def test_each_prediction_comes_from_its_days_registered_model(
    client: MlflowClient,
    replayed: Replayed,
    models: dict[dt.date, dict[str, Any]],
    records: dict[dt.date, dict[str, Any]],
    tmp_path: Path,
) -> None:
    for day, value in models.items():
        record = records[day]
        assert record["model"]["version"] == value["model_version"]
        assert record["model"]["mlflow_run_id"] == value["mlflow_run_id"]
        assert record["model"]["uri"] == value["model_uri"]
        mv = client.get_model_version(NAME, value["model_version"])
        assert mv.run_id == value["mlflow_run_id"]
        dest = tmp_path / day.isoformat()
        dest.mkdir()
        model_dir = Path(client.download_artifacts(value["mlflow_run_id"], "model", str(dest)))
        model = fitting.FittedModel.from_dir(model_dir / "zdte")
        assert model.predict(feature_row(replayed, day))[0] == record["predicted_return"]
        assert model.sigma == value["sigma"]
        assert model.calibration.factor == record["distribution"]["calibration_factor"]


def test_retraining_on_the_same_rows_is_deterministic(
    replayed: Replayed,
    models: dict[dt.date, dict[str, Any]],
    records: dict[dt.date, dict[str, Any]],
) -> None:
    day = dt.date(2024, 11, 7)
    params = ModelParams.from_dict(models[day]["params"])
    # The stored rows of later days are passed too: `before=day` must cut them off.
    rows = training_rows(replayed, day + dt.timedelta(days=30))
    assert rows["date"].to_list()[-2:] == [day, dt.date.fromisoformat(REPLAY_END)]
    first = fitting.train_daily(rows, params, before=day)
    second = fitting.train_daily(rows.clone(), params, before=day)
    row = feature_row(replayed, day)
    assert first.booster.model_to_string() == second.booster.model_to_string()
    assert first.predict(row)[0] == second.predict(row)[0]
    assert (first.sigma, first.shrinkage) == (second.sigma, second.shrinkage)
    # The same rows and parameters reproduce the model the replay registered and used.
    assert first.predict(row)[0] == records[day]["predicted_return"]
    assert first.sigma == models[day]["sigma"]
    assert list(first.features) == models[day]["features"]


def _daily_model_job(store_dir: Path) -> Any:
    """A job of `daily_model` alone over a copy of the replay's storage."""
    from zdte_assets.definitions import build_definitions

    first_bar = min(p.stem for p in (store_dir / TICKER / "daily_bar").glob("*.parquet"))
    defs = build_definitions(
        tickers=[TICKER],
        source_kind="sample",
        storage_url=str(store_dir),
        start=dt.date.fromisoformat(first_bar),
    )
    selection = dg.AssetSelection.assets(dg.AssetKey([TICKER, "daily_model"]))
    return dg.Definitions.merge(
        defs, dg.Definitions(jobs=[dg.define_asset_job("daily_model_only", selection=selection)])
    ).resolve_job_def("daily_model_only")


def test_a_repeated_retrain_registers_no_second_version_and_moves_no_alias(
    client: MlflowClient,
    replayed: Replayed,
    models: dict[dt.date, dict[str, Any]],
    tmp_path: Path,
) -> None:
    day = dt.date(2024, 11, 7)
    store_dir = tmp_path / "storage"
    shutil.copytree(replayed.storage, store_dir)
    job = _daily_model_job(store_dir)
    versions_before = client.search_model_versions(f"name='{NAME}'")
    challenger = client.get_model_version_by_alias(NAME, "challenger").version

    result = job.execute_in_process(
        run_config=QUIET, partition_key=day.isoformat(), instance=dg.DagsterInstance.ephemeral()
    )

    assert result.success
    value = storage.read_json(
        storage.store_from_url(str(store_dir)), f"{TICKER}/daily_model/{day}.json"
    )
    assert value["model_version"] == models[day]["model_version"]
    assert value["mlflow_run_id"] == models[day]["mlflow_run_id"]
    assert len(client.search_model_versions(f"name='{NAME}'")) == len(versions_before)
    assert client.get_model_version_by_alias(NAME, "challenger").version == challenger
    (mat,) = [
        e.event_specific_data.materialization  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    assert mat.metadata["reused_registered_version"].value is True
    # The registered version carries the key it was recognized by.
    mv = client.get_model_version(NAME, value["model_version"])
    assert mv.tags["day"] == day.isoformat() and len(mv.tags["data_digest"]) == 64


# --- failures -------------------------------------------------------------------------------------


def test_daily_model_without_tuned_params_fails_and_registers_nothing(
    client: MlflowClient, replayed: Replayed, tmp_path: Path
) -> None:
    # A fresh storage holding the replay's bars and features but no study for October.
    store_dir = tmp_path / "storage"
    shutil.copytree(replayed.storage, store_dir)
    day = "2024-10-28"
    assert not list((store_dir / TICKER / "tuned_params").glob("2024-10-*"))
    job = _daily_model_job(store_dir)
    before = len(client.search_model_versions(f"name='{NAME}'"))

    with pytest.raises(dg.Failure, match=f"daily_model {day}: no tuned_params version") as info:
        job.execute_in_process(
            run_config=QUIET, partition_key=day, instance=dg.DagsterInstance.ephemeral()
        )

    assert "\n" not in str(info.value)
    assert len(client.search_model_versions(f"name='{NAME}'")) == before
    exp = client.get_experiment_by_name(NAME)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], f"tags.`dagster.partition_key` = '{day}'")
    assert len(runs) == 0
    assert not storage.store_from_url(str(store_dir)).exists(f"{TICKER}/daily_model/{day}.json")


def test_unreachable_tracking_server_is_one_line_tracking_error() -> None:
    uri = "http://127.0.0.1:9"
    with pytest.raises(TrackingError) as info:
        MlflowTracking(tracking_uri=uri).client()
    message = str(info.value)
    assert message.startswith(f"MLflow tracking server {uri} is unreachable")
    assert "\n" not in message


def test_a_run_abandoned_by_a_dead_attempt_is_failed_by_the_next_one(tmp_path: Path) -> None:
    tracking = MlflowTracking(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = tracking.client()
    experiment = tracking.experiment_id(client, "TEST")
    tags = {"dagster.asset_key": "TEST/daily_model", "dagster.partition_key": "2024-06-11"}
    dead = client.create_run(experiment, tags={**tags, "dagster.run_id": "dead-attempt"})
    other_day = client.create_run(
        experiment,
        tags={**tags, "dagster.partition_key": "2024-06-12", "dagster.run_id": "live"},
    )

    with (
        pytest.raises(ValueError, match="bad rows"),
        tracking.run("TEST", "retry", {**tags, "dagster.run_id": "retry"}) as (failing_id, _),
    ):
        raise ValueError("bad rows")
    with tracking.run("TEST", "retry", {**tags, "dagster.run_id": "retry-2"}) as (run_id, _):
        pass

    status = {r: client.get_run(r).info.status for r in (dead.info.run_id, failing_id, run_id)}
    assert status == {
        dead.info.run_id: "FAILED",
        failing_id: "FAILED",
        run_id: "FINISHED",
    }
    # Another partition's run is none of this attempt's business.
    assert client.get_run(other_day.info.run_id).info.status == "RUNNING"
