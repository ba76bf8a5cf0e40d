"""MLflow tracking and registry as a Pythonic Dagster resource.

Why not dagster-mlflow's `mlflow_tracking`: it binds one MLflow run to a whole Dagster run through
MLflow's global state, while zdte logs one run per partition (a range run holds many) and manages
registry aliases; so this wraps `MlflowClient` in a `ConfigurableResource` instead.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import dagster as dg
import polars as pl

from zdte_assets.core import config, timing
from zdte_assets.core.errors import ZdteError, first_line
from zdte_assets.model.fitting import FittedModel
from zdte_assets.model.params import feature_matrix
from zdte_assets.model.persistence import install_dir

P = ParamSpec("P")
R = TypeVar("R")

#: Requirements written next to each model, so logging does not spend seconds inferring them.
MODEL_REQUIREMENTS = ["lightgbm>=4.6,<5", "numpy", "polars"]

#: The experiment tag MLflow 3's UI reads to choose its view, and the value of model training
#: (the classic runs, metrics and models view, not the GenAI traces view). Spelled out: MLflow
#: has no public constant for it (the UI's `ExperimentKind.CUSTOM_MODEL_DEVELOPMENT`).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

#: Rows of the training features stored as each version's input example.
INPUT_EXAMPLE_ROWS = 5

#: Local stores whose empty "Default" experiment this process already dealt with.
_pruned_stores: set[str] = set()


def _timed(method: Callable[P, R]) -> Callable[P, R]:
    """Count a tracking call under the "mlflow" part of `zdte_assets.core.timing`."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with timing.part("mlflow"):
            return method(*args, **kwargs)

    return wrapper


def _server_errors() -> tuple[type[BaseException], ...]:
    """What a tracking server that went away raises through the client (not our own bugs)."""
    import botocore.exceptions
    import requests
    from mlflow.exceptions import MlflowException

    return (
        MlflowException,
        requests.exceptions.RequestException,
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
    )


class TrackingError(ZdteError, RuntimeError):
    """The tracking server is unreachable or refused a write."""


def quiet_mlflow() -> None:
    """No download progress bars or pip-version notes in the run logs of every daily model."""
    import logging

    # Set, not read: MLflow reads this variable itself (an explicit setting still wins).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)


def experiment_name(ticker: str) -> str:
    return f"zdte-{ticker.upper()}"


def registered_model_name(ticker: str) -> str:
    return f"zdte-{ticker.upper()}"


def registered_model_description(ticker: str) -> str:
    """What a version of the ticker's registered model is, for the registry page."""
    t = ticker.upper()
    return (
        f"Daily LightGBM forecast of {t}'s open-to-close log return (close = open * exp(return)), "
        "refitted each session on the sessions strictly before it. Inputs: features known at "
        "the open (the overnight gap, realized volatilities, RSI, MACD, ATR, volume z-score, "
        "momentum, weekday and lagged open-to-close and close-to-close returns), the columns "
        "named in each version's signature. The booster's raw output is shrunk by the version's "
        "`shrinkage` (zdte's metadata under `model/zdte`). A forecast is traded only while the "
        "significance gate is open: the past out-of-sample forecasts beat the naive forecast "
        "(Diebold-Mariano) and the base rate (Pesaran-Timmermann) at 5%. Aliases: `challenger` "
        "is the newest version, `champion` the promoted one."
    )


def signature_and_example(model: FittedModel, rows: pl.DataFrame) -> tuple[Any, Any]:
    """The MLflow signature of the booster the model directory holds (its feature columns in,
    its raw prediction out) and its input example: the last `INPUT_EXAMPLE_ROWS` training rows'
    features as a pandas frame. Both given explicitly, so MLflow neither loads the model again
    to infer them nor depends on anything but the rows."""
    import pandas as pd
    from mlflow.models import infer_signature

    sample = rows.tail(INPUT_EXAMPLE_ROWS)
    example = pd.DataFrame(feature_matrix(sample, model.features), columns=list(model.features))
    return infer_signature(example, model.predict_raw(sample)), example


def drop_empty_default_experiment(client: Any) -> bool:
    """Delete the "Default" experiment (id 0) that a new SQLite store creates, when it holds no
    run, so the UI opens on zdte's experiments. Deleted, not removed: the store sees it and does
    not create it again. Returns whether it was deleted now."""
    from mlflow.entities import ViewType

    try:
        default = client.get_experiment("0")
    except Exception:  # no such experiment
        return False
    if default.name != "Default" or default.lifecycle_stage != "active":
        return False
    if client.search_runs(["0"], run_view_type=ViewType.ALL, max_results=1):
        return False
    try:
        client.delete_experiment("0")
    except Exception:  # deleted concurrently by another process
        return False
    return True


@dataclass
class RunLog:
    """Collects what one MLflow run records, then writes it in a few batched calls."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifact_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="zdte-run-")))

    def artifact(self, name: str) -> Path:
        path = self.artifact_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, name: str, obj: Any) -> None:
        self.artifact(name).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))


class MlflowTracking(dg.ConfigurableResource):  # type: ignore[type-arg]
    """One experiment and one registered model per ticker; a run per study and per daily model."""

    tracking_uri: str = ""

    def uri(self) -> str:
        return self.tracking_uri or config.mlflow_tracking_uri()

    def _is_local(self) -> bool:
        return self.uri().startswith(("sqlite:", "file:", "/")) or "://" not in self.uri()

    def client(self) -> Any:
        quiet_mlflow()
        # Set, not read: MLflow's HTTP client reads these itself (an explicit setting still wins).
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        uri = self.uri()
        if uri.startswith(("http://", "https://")):
            try:
                urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).read()
            except (urllib.error.URLError, OSError) as exc:
                raise TrackingError(f"MLflow tracking server {uri} is unreachable: {exc}") from None
        elif uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        if uri.startswith("sqlite:") and uri not in _pruned_stores:
            # Only zdte's own local store: a remote server's Default belongs to its other users.
            drop_empty_default_experiment(client)
            _pruned_stores.add(uri)
        return client

    def experiment_id(self, client: Any, ticker: str) -> str:
        name = experiment_name(ticker)
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # created before the tag
                client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return str(exp.experiment_id)
        location = None
        if self._is_local():
            # A SQLite store would otherwise put artifacts in ./mlruns of whatever directory runs it.
            location = (config.zdte_home() / "mlartifacts" / ticker.upper()).as_uri()
        try:
            return str(
                client.create_experiment(
                    name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
                )
            )
        except Exception:  # created concurrently by another run
            return str(client.get_experiment_by_name(name).experiment_id)

    @contextlib.contextmanager
    def run(self, ticker: str, run_name: str, tags: dict[str, str]) -> Iterator[tuple[str, RunLog]]:
        """An MLflow run that is FINISHED when the block succeeds and FAILED when it raises."""
        with timing.part("mlflow"):
            client = self.client()
            experiment = self.experiment_id(client, ticker)
            self._fail_abandoned_runs(client, experiment, tags)
            run = client.create_run(experiment, run_name=run_name, tags=tags)
        run_id = run.info.run_id
        log = RunLog()
        try:
            yield run_id, log
            try:
                self._finish(client, run, log)
            except _server_errors() as exc:
                # The server went away (or refused) after the work was done: say so in one line
                # instead of the client's retry trace; the run is marked FAILED below if the
                # server answers, else by the partition's next attempt.
                first = first_line(str(exc), type(exc).__name__)
                raise TrackingError(
                    f"MLflow tracking server {self.uri()} failed while recording run {run_id}: "
                    f"{first[:300]}"
                ) from exc
        except BaseException:
            try:
                client.set_terminated(run_id, "FAILED")
            except Exception as mark:  # the server went away: keep the original error alone
                first = first_line(str(mark), type(mark).__name__)
                logging.getLogger("zdte").warning(
                    "MLflow run %s could not be marked FAILED (%s); the next attempt for this "
                    "partition marks it",
                    run_id,
                    first[:300],
                )
            raise

    @staticmethod
    def _finish(client: Any, run: Any, log: RunLog) -> None:
        """Everything the block collected in a few batched calls, then FINISHED."""
        from mlflow.entities import Metric, Param, RunTag

        run_id = run.info.run_id
        with timing.part("mlflow"):
            stamp = run.info.start_time
            client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), stamp, 0) for k, v in sorted(log.metrics.items())],
                params=[Param(k, str(v)[:6000]) for k, v in sorted(log.params.items())],
                tags=[RunTag(k, str(v)) for k, v in sorted(log.tags.items())],
            )
            if any(log.artifact_dir.iterdir()):
                client.log_artifacts(run_id, str(log.artifact_dir))
            client.set_terminated(run_id, "FINISHED")

    @staticmethod
    def _fail_abandoned_runs(client: Any, experiment: str, tags: dict[str, str]) -> None:
        """Runs of the same asset partition left RUNNING by an earlier attempt that died (a
        killed process, a tracking server that went away) are marked FAILED, so that a retry
        leaves no run RUNNING for ever."""
        key, partition = tags.get("dagster.asset_key"), tags.get("dagster.partition_key")
        if not key or not partition:
            return
        stale = client.search_runs(
            [experiment],
            f"tags.`dagster.asset_key` = '{key}' and tags.`dagster.partition_key` = "
            f"'{partition}' and attributes.status = 'RUNNING'",
        )
        for old in stale:
            if old.data.tags.get("dagster.run_id") != tags.get("dagster.run_id"):
                client.set_terminated(old.info.run_id, "FAILED")

    @_timed
    def log_dataset(
        self, run_id: str, frame: Any, name: str, digest: str, context: str = "training"
    ) -> None:
        """Record the rows a model saw as an MLflow dataset input of the run."""
        import mlflow.data
        from mlflow.entities import Dataset, DatasetInput, InputTag

        # Dates as ISO strings: MLflow's schema has no date type and would warn on every run.
        frame = frame.with_columns(pl.col(pl.Date).cast(pl.String))
        dataset = mlflow.data.from_polars(  # type: ignore[attr-defined]
            frame,
            name=name,
            targets="target" if "target" in frame.columns else None,
            digest=digest[:36] if digest else None,
        )
        # The dataset's public description (name, digest, source, schema, profile) is exactly
        # the fields of the entity the client logs.
        fields = dataset.to_dict()
        entity = Dataset(
            name=fields["name"],
            digest=fields["digest"],
            source_type=fields["source_type"],
            source=fields["source"],
            schema=fields.get("schema"),
            profile=fields.get("profile"),
        )
        self.client().log_inputs(
            run_id, datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])]
        )

    @_timed
    def register(self, ticker: str, run_id: str, model_dir: Path, tags: dict[str, str]) -> str:
        """Log `model_dir` (an MLflow model directory) under the run and register it; returns the version."""
        client = self.client()
        client.log_artifacts(run_id, str(model_dir), "model")
        name = registered_model_name(ticker)
        description = registered_model_description(ticker)
        try:
            client.create_registered_model(
                name, tags={"ticker": ticker.upper()}, description=description
            )
        except Exception:  # exists already (or created concurrently)
            if client.get_registered_model(name).description != description:
                client.update_registered_model(name, description=description)
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        version = client.create_model_version(name, source=source, run_id=run_id, tags=tags)
        return str(version.version)

    @_timed
    def find_version(self, ticker: str, tags: dict[str, str]) -> Any | None:
        """The newest registered version carrying all of `tags` whose run finished, or None:
        how a retried or repeated retrain recognizes the model it already registered."""
        client = self.client()
        query = " and ".join(
            [f"name='{registered_model_name(ticker)}'"]
            + [f"tags.`{k}`='{v}'" for k, v in sorted(tags.items())]
        )
        try:
            found = client.search_model_versions(query)
        except Exception:  # no registered model yet
            return None
        for mv in sorted(found, key=lambda v: int(v.version), reverse=True):
            if mv.run_id and client.get_run(mv.run_id).info.status == "FINISHED":
                return mv
        return None

    @_timed
    def set_alias(self, ticker: str, alias: str, version: str) -> None:
        self.client().set_registered_model_alias(registered_model_name(ticker), alias, version)

    @_timed
    def alias_version(self, ticker: str, alias: str) -> Any | None:
        try:
            return self.client().get_model_version_by_alias(registered_model_name(ticker), alias)
        except Exception:
            return None

    def model_cache_dir(self, ticker: str, version: str, run_id: str) -> Path:
        """Where a registered version's model directory is kept locally. Keyed by tracking
        store, version and the run that logged it: version numbers start again in a recreated
        store, a run id does not repeat."""
        store = hashlib.sha256(self.uri().encode()).hexdigest()[:12]
        return config.zdte_home() / "model_cache" / store / ticker.upper() / f"{version}-{run_id}"

    @_timed
    def cached_model(self, ticker: str, version: str, run_id: str) -> Path:
        """The model directory of a registered version; registry versions are immutable, so
        one local copy per version is safe to reuse. Installed whole (`persistence.install_dir`):
        two runs downloading the same version at once never see or leave a half copy."""
        dest = self.model_cache_dir(ticker, version, run_id)
        install_dir(
            dest, lambda tmp: self.download_model(ticker, str(version), tmp), _cache_complete
        )
        return dest / "model"

    @_timed
    def seed_model_cache(self, ticker: str, version: str, run_id: str, model_dir: Path) -> None:
        """Keep the directory just registered as `version`, so the morning's prediction does
        not download what this process wrote a moment ago. Atomic: a rename of a full copy."""
        dest = self.model_cache_dir(ticker, version, run_id)
        install_dir(dest, lambda tmp: _copy_model(model_dir, tmp), _cache_complete)

    @_timed
    def download_model(self, ticker: str, version: str, dest: Path) -> Path:
        """Download a registered version's model directory (used by the prediction)."""
        client = self.client()
        mv = client.get_model_version(registered_model_name(ticker), version)
        dest.mkdir(parents=True, exist_ok=True)
        return Path(client.download_artifacts(mv.run_id, "model", str(dest)))


def _cache_complete(entry: Path) -> bool:
    return (entry / "model" / "zdte").exists()


def _copy_model(model_dir: Path, entry: Path) -> None:
    shutil.copytree(model_dir, entry / "model")
