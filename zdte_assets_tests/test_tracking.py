"""What the MLflow UI opens on: the local store without an empty "Default" experiment, the
experiment in the model-training view, a described registered model whose versions carry a
signature and an input example, a readable importance plot, and a UI server of few processes.

Against real local MLflow SQLite stores (one per test) and a real `zdte mlflow-ui` process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import Model

from zdte_assets.apps import plots
from zdte_assets.model.fitting import fit_model
from zdte_assets.model.params import ModelParams, feature_matrix
from zdte_assets.orchestration.assets.model import save_mlflow_model
from zdte_assets.orchestration.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    INPUT_EXAMPLE_ROWS,
    MlflowTracking,
    experiment_name,
    registered_model_name,
)
from zdte_assets_tests.conftest import ZDTE_ENV
from zdte_assets_tests.services import free_ports
from zdte_assets_tests.test_training import make_frame

TICKER = "TEST"


def store_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def open_in_new_process(uri: str) -> dict[str, object]:
    """Experiment 0's state and the active experiments, as a fresh interpreter opening the store
    sees them (a store initializes itself once per process)."""
    code = textwrap.dedent(
        f"""
        import json
        from mlflow import MlflowClient
        c = MlflowClient(tracking_uri={uri!r})
        print(json.dumps({{
            "default": c.get_experiment("0").lifecycle_stage,
            "active": sorted(e.name for e in c.search_experiments()),
        }}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the "Default" experiment --------------------------------------------------------------------


def test_a_new_local_store_has_no_empty_default_and_stays_so(tmp_path: Path) -> None:
    uri = store_uri(tmp_path)
    tracking = MlflowTracking(tracking_uri=uri)
    client = tracking.client()
    assert client.get_experiment("0").lifecycle_stage == "deleted"
    assert "Default" not in {e.name for e in client.search_experiments()}
    # Creating zdte's experiment and opening the store again later bring no Default back.
    tracking.experiment_id(client, TICKER)
    assert open_in_new_process(uri) == {"default": "deleted", "active": [experiment_name(TICKER)]}


def test_a_default_experiment_holding_runs_is_kept(tmp_path: Path) -> None:
    uri = store_uri(tmp_path)
    plain = MlflowClient(tracking_uri=uri)
    run = plain.create_run("0")
    plain.set_terminated(run.info.run_id)
    MlflowTracking(tracking_uri=uri).client()
    assert plain.get_experiment("0").lifecycle_stage == "active"


# --- experiment kind -----------------------------------------------------------------------------


def test_the_experiment_opens_in_the_model_training_view(tmp_path: Path) -> None:
    tracking = MlflowTracking(tracking_uri=store_uri(tmp_path))
    client = tracking.client()
    created = tracking.experiment_id(client, TICKER)
    assert client.get_experiment(created).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    # An experiment created before the tag existed gets it when found.
    older = client.create_experiment(experiment_name("OLD"))
    assert tracking.experiment_id(client, "OLD") == older
    assert client.get_experiment(older).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


# --- registered model, signature, input example --------------------------------------------------


def register_a_model(tracking: MlflowTracking, tmp_path: Path) -> tuple[str, list[str], np.ndarray]:
    """Fit, save and register one model as the daily asset does; the version, the model's
    features and the feature values of the rows meant as its example."""
    rows = make_frame(90, seed=3).tail(60)
    model = fit_model(rows, ModelParams(n_features=4))
    with tracking.run(TICKER, "model", {}) as (run_id, _log):
        pass
    model_dir = tmp_path / "model"
    save_mlflow_model(model, model_dir, rows)
    version = tracking.register(TICKER, run_id, model_dir, {})
    features = list(model.features)
    return version, features, feature_matrix(rows.tail(INPUT_EXAMPLE_ROWS), features)


def test_registered_versions_are_described_with_signature_and_input_example(
    tmp_path: Path,
) -> None:
    tracking = MlflowTracking(tracking_uri=store_uri(tmp_path))
    version, features, example_rows = register_a_model(tracking, tmp_path)
    client = tracking.client()
    name = registered_model_name(TICKER)
    description = client.get_registered_model(name).description
    assert description and TICKER in description and "gate" in description

    dest = tmp_path / "downloaded"
    dest.mkdir()
    local = Path(tracking.download_model(TICKER, version, dest))
    mlmodel = Model.load(str(local))
    assert mlmodel.signature is not None
    assert mlmodel.signature.inputs.input_names() == features
    assert mlmodel.signature.outputs is not None
    example = mlmodel.load_input_example(str(local))
    assert isinstance(example, pd.DataFrame)
    assert list(example.columns) == features
    np.testing.assert_array_equal(example.to_numpy(), example_rows)

    # The logged model takes its own example: the signature and the booster agree.
    import mlflow.pyfunc

    predicted = mlflow.pyfunc.load_model(str(local)).predict(example)
    assert np.asarray(predicted).shape == (INPUT_EXAMPLE_ROWS,)


def test_a_registered_model_created_without_description_gets_one(tmp_path: Path) -> None:
    tracking = MlflowTracking(tracking_uri=store_uri(tmp_path))
    client = tracking.client()
    client.create_registered_model(registered_model_name(TICKER))
    register_a_model(tracking, tmp_path)
    assert client.get_registered_model(registered_model_name(TICKER)).description


# --- the importance plot -------------------------------------------------------------------------


def test_the_importance_plot_grows_with_the_features_and_keeps_long_labels(
    tmp_path: Path,
) -> None:
    few = plots.feature_importance(["gap", "rsi_14"], [2.0, 1.0], tmp_path / "few.png")
    names = [f"a_rather_long_feature_name_{i}" for i in range(30)]
    many = plots.feature_importance(names, list(np.linspace(30, 1, 30)), tmp_path / "many.png")
    assert few.read_bytes()[:8] == many.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    few_h = matplotlib.image.imread(few).shape[0]
    many_h = matplotlib.image.imread(many).shape[0]
    # Each further feature adds at least the height of a 9-point label (at 100 dpi): the labels
    # have room and cannot overlap, however many features there are.
    assert (many_h - few_h) / (len(names) - 2) >= 9 / 72 * 100


# --- `zdte mlflow-ui` ----------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> dict[int, str]:
    """Command lines of every process below `pid`."""
    tree, found, todo = _children(), {}, [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            try:
                raw = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            found[child] = raw.replace(b"\0", b" ").decode(errors="replace")
            todo.append(child)
    return found


def serving_processes(pid: int) -> tuple[int, dict[int, str]]:
    """How many processes serve requests below `pid`: uvicorn's spawned workers, or uvicorn
    itself when it runs a single worker in its own process."""
    below = _descendants(pid)
    uvicorn = [p for p, cmd in below.items() if " -m uvicorn " in cmd]
    assert len(uvicorn) == 1, below
    spawned = [p for p in _descendants(uvicorn[0]).values() if "spawn_main" in p]
    return (len(spawned) or 1), below


@pytest.mark.parametrize("workers", [None, 2], ids=["default", "two"])
def test_mlflow_ui_serves_with_the_given_number_of_workers(
    tmp_path: Path, workers: int | None
) -> None:
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if k not in ZDTE_ENV}
    env.update(ZDTE_HOME=str(tmp_path), PYTHONWARNINGS="ignore")
    env.pop("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", None)
    args = ["mlflow-ui", "--port", str(port)]
    if workers is not None:
        args += ["--workers", str(workers)]
    log = (tmp_path / "ui.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "zdte_assets.apps.cli", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so the whole tree (mlflow, uvicorn, workers) is stopped
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "ui.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "ui.log").read_text()
            time.sleep(0.5)
        count, below = serving_processes(proc.pid)
        assert count == (workers or 1), below
        assert not [c for c in below.values() if "_job_runner" in c], below
        # The UI's store is zdte's local one, without the empty Default experiment.
        assert (tmp_path / "mlflow.db").exists()
        ui_store = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
        assert ui_store.get_experiment("0").lifecycle_stage == "deleted"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # none left, as expected
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
