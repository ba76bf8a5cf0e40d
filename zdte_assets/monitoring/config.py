"""The drift configuration: trigger thresholds and guards, and the settings the platform runs with.

A frozen pydantic model rather than a dataclass, so the Dagster run config of the
``drift_report`` asset can be this very class (``orchestration/assets/monitoring.py`` derives it
mechanically) and every field is validated where it is read, whichever way it came in (Python,
JSON, the launchpad).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

DataMethod = Literal["ks", "psi"]


class DriftConfig(BaseModel):
    """Trigger thresholds and guards; JSON-able so a run can record exactly what it applied.

    Defaults keep the original design: 3-day RMSE more than 1.2x its reference level, and
    directional accuracy below 55%. The guard fields default to "off" (None/False) and are
    switched on together by ``DriftConfig.guarded()``.

    ``accuracy_window`` is 20 sessions (one trading month) rather than 10: the standard error
    of a hit rate is ``sqrt(0.55 * 0.45 / n)``, 16 points at n = 10 and 11 at n = 20, so a
    10-day window cannot tell a 55% model from a 40% one at all, and 20 days, while still
    noisy, is the longest window that still reacts within a month. It also matches
    ``recent_window``, so every rule looks at the same month.

    ``data_alpha`` and ``target_alpha`` are 1% rather than 5% because the tests run every
    trading day: at 5% a perfectly stable feature set would be flagged about a dozen days a
    year by construction. ``data_alpha`` is a family-wise level (Holm over all features).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rmse_window: int = 3
    rmse_ratio_threshold: float = 1.2
    #: Guard: also require a one-sided F-test p-value (recent vs reference MSE) below this.
    rmse_alpha: float | None = None
    accuracy_window: int = 20
    accuracy_floor: float = 0.55
    #: Fewer calls than this (non-zero predictions) in the window: no accuracy verdict.
    accuracy_min_calls: int = 10
    #: Guard: also require accuracy below the better of "always up" and "always down".
    accuracy_below_base_rate: bool = False
    #: Guard: also require an exact binomial p-value for "true accuracy >= floor" below this.
    accuracy_alpha: float | None = None
    #: "ks": Holm-corrected KS p-value < data_alpha per feature; "psi": PSI > psi_threshold.
    data_method: DataMethod = "ks"
    data_alpha: float = 0.01
    #: Guard: use KS p-values at AR(1) effective sample sizes (see ks_pvalue_effective).
    data_autocorr_adjust: bool = False
    #: Data drift fires when at least this many features are flagged.
    data_min_features: int = 1
    psi_threshold: float = 0.25
    psi_bins: int = 10
    target_alpha: float = 0.01
    #: Days of recent features / realized returns compared with the reference.
    recent_window: int = 20
    #: After a firing, this many following trading days cannot fire again.
    cooldown_days: int = 5

    @model_validator(mode="after")
    def _check(self) -> DriftConfig:
        for name in ("rmse_window", "accuracy_window", "recent_window", "accuracy_min_calls"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.data_min_features < 1:
            raise ValueError(f"data_min_features must be >= 1, got {self.data_min_features}")
        if self.cooldown_days < 0:
            raise ValueError(f"cooldown_days must be >= 0, got {self.cooldown_days}")
        if self.psi_bins < 2:
            raise ValueError(f"psi_bins must be >= 2, got {self.psi_bins}")
        if not self.rmse_ratio_threshold > 0:
            raise ValueError("rmse_ratio_threshold must be > 0")
        if not 0.0 < self.accuracy_floor < 1.0:
            raise ValueError("accuracy_floor must be in (0, 1)")
        for name in ("rmse_alpha", "accuracy_alpha", "data_alpha", "target_alpha"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        return self

    @classmethod
    def guarded(cls, **overrides: Any) -> DriftConfig:
        """Same thresholds with every guard on; the measured table shows what they buy."""
        values: dict[str, Any] = {
            "rmse_alpha": 0.01,
            "accuracy_below_base_rate": True,
            "accuracy_alpha": 0.05,
            "data_autocorr_adjust": True,
        }
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Only the fields of ``DriftConfig`` (a subclass such as the run config adds none)."""
        return {name: getattr(self, name) for name in DriftConfig.model_fields}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def as_drift_config(self) -> DriftConfig:
        """This configuration as a plain ``DriftConfig`` (from a subclass, e.g. a run config)."""
        return DriftConfig(**self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftConfig:
        """Refuses unknown keys, so a misspelt threshold fails instead of silently defaulting."""
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"unknown DriftConfig keys: {unknown}")
        return cls.model_validate(dict(data))

    @classmethod
    def from_json(cls, text: str) -> DriftConfig:
        return cls.from_dict(json.loads(text))


#: The drift settings the platform runs with (see docs/monitoring.md for their false-alarm rates):
#: the original RMSE and accuracy thresholds; data drift with KS at effective sample sizes, since
#: plain KS flags moving-window features as drifted on most days of unchanged data.
MONITORING_CONFIG = DriftConfig(data_autocorr_adjust=True)
