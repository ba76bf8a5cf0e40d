"""The two objectives the study scores a forecast by, built on ``evaluation.metrics``.

Both are the platform's one definitions (``evaluation.metrics``: an error is
``actual - predicted``; directional accuracy is hits over calls, a forecast of exactly 0 is no
call and a call on a flat day is a miss). The one objective-specific rule lives here:

* **An abstaining forecast scores** ``ABSTAIN_ACCURACY`` **(0.5, a coin).** Over a window in
  which the model never calls, ``evaluation.metrics.directional_accuracy`` is NaN ("nothing to
  judge"), but an Optuna objective must be a number, and a model that always abstains has shown
  no directional skill, which is exactly what a coin scores.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from zdte_assets.evaluation import metrics

#: Directional accuracy the study gives a forecast that never calls (no skill shown).
ABSTAIN_ACCURACY = 0.5


def _pair(pred: npt.ArrayLike, actual: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if p.shape != a.shape or p.size == 0:
        raise ValueError("pred and actual must be non-empty and of equal shape")
    return p, a


def objective_accuracy(pred: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """``evaluation.metrics.directional_accuracy``, or ``ABSTAIN_ACCURACY`` without any call."""
    p, a = _pair(pred, actual)
    acc = metrics.directional_accuracy(a, p)
    return ABSTAIN_ACCURACY if math.isnan(acc) else acc


def rmse(pred: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Root-mean-square error (``evaluation.metrics.forecast_metrics``'s ``rmse``)."""
    p, a = _pair(pred, actual)
    return metrics.forecast_metrics(a, p)["rmse"]
