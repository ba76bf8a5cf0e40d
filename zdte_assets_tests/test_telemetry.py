"""On premises nothing leaves the machine: importing zdte switches MLflow's telemetry off."""

from __future__ import annotations

import os
import subprocess
import sys

#: Variables under which MLflow disables telemetry by itself (CI, pytest); removed so the child
#: process sees what a trader's server sees.
CI_MARKERS = (
    "CI",
    "PYTEST_CURRENT_TEST",
    "GITHUB_ACTIONS",
    "CIRCLECI",
    "GITLAB_CI",
    "JENKINS_URL",
    "TRAVIS",
    "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER",
    "MLFLOW_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
)


def test_mlflow_telemetry_is_off_once_zdte_is_imported() -> None:
    env = {k: v for k, v in os.environ.items() if k not in CI_MARKERS}
    code = (
        "import zdte_assets, mlflow, os\n"
        "from mlflow.telemetry.client import get_telemetry_client\n"
        "print(os.environ['MLFLOW_DISABLE_TELEMETRY'], get_telemetry_client() is None)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["true", "True"]
