"""zdte: same-day-close prediction and 0-DTE decisions as Dagster assets."""

import os
from importlib.metadata import PackageNotFoundError, version

# On premises nothing leaves the machine: MLflow 3 starts a usage-telemetry client when it is
# imported unless this is set, so it must be set before any zdte module imports mlflow (the
# `zdte mlflow-ui` server inherits it too). An explicit setting by the operator wins.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

try:
    __version__ = version("zdte")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"
