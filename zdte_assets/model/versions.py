"""Tuned versions: how they are kept, which one a day uses, and when a model becomes champion.

These are the rules the `tuned_params` and `daily_model` assets and the prediction only wire:

* **Storage, one object per version.** A week keeps every version (the scheduled study, the
  re-optimizations triggered during the week), each under its own key
  ``{ticker}/tuned_versions/{week}/{as_of}.json``. Two runs studying the same week at once write
  two objects, so neither can drop the other's version, as a read-modify-write of one list
  would. A second version with the same ``as_of`` replaces the first (same data cut).
* **Selection.** The model of day t uses the newest version whose data ended before t (what was
  known that morning); ties on ``as_of`` go to the later week, deterministically.
* **Reuse.** A study of the same week, data cut, rows and settings (code version included) is
  not recomputed: the stored version is kept, with its MLflow run and stored study.
* **Promotion.** The version a morning prediction uses becomes champion when its study beat
  naive and the current champion is not from a later day (re-running an old day never demotes
  a newer champion); a model superseded before its day is never promoted.

Nothing here imports Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from zdte_assets.core.records import (
    ModelPointer,
    ParetoTrial,
    StudySettings,
    TunedVersion,
    TunedWeek,
)
from zdte_assets.storage.keys import asset_value_key, object_key
from zdte_assets.storage.store import Store, read_json, write_json

if TYPE_CHECKING:  # the study stack (Optuna) is not needed to read or select versions
    import polars as pl

    from zdte_assets.model.fitting import FittedModel
    from zdte_assets.model.params import ModelParams
    from zdte_assets.model.study import StudyResult

#: Where the one-object-per-version layout lives, next to the `tuned_params` asset values.
VERSIONS_ASSET = "tuned_versions"
#: The asset whose value is the week's record (a snapshot; the version objects are the truth).
TUNED_ASSET = "tuned_params"


class Versioned(Protocol):
    """What selection needs of a version: its data cut and its week."""

    @property
    def as_of(self) -> dt.date: ...

    @property
    def week(self) -> str: ...


V = TypeVar("V", bound=Versioned)


class StudySource(Protocol):
    """What a day's model pointer takes from the study version its parameters came from."""

    @property
    def as_of(self) -> dt.date: ...

    @property
    def mlflow_run_id(self) -> str: ...

    @property
    def beats_naive(self) -> bool: ...

    @property
    def validation_errors(self) -> tuple[float, ...]: ...


def select_version(versions: Sequence[V], day: dt.date) -> V | None:
    """The newest version whose data ended before `day`: what was known that morning."""
    known = [v for v in versions if v.as_of < day]
    # Ties (a triggered re-optimization and the next weekly run on the same data) go to the later
    # week, deterministically; both saw the same rows.
    return max(known, key=lambda v: (v.as_of, v.week)) if known else None


def reusable_version(
    previous: Sequence[TunedVersion], as_of: dt.date, data_digest: str, settings: StudySettings
) -> TunedVersion | None:
    """A stored version of the same data cut, rows and settings, which a new study would repeat.

    A drift trigger on Friday and the Sunday schedule both study the coming week with data
    through Friday: the second finds the first's version and keeps it instead of recomputing
    and replacing what Monday's model may already point to.
    """
    return next(
        (
            v
            for v in previous
            if v.as_of == as_of and v.data_digest == data_digest and v.settings == settings
        ),
        None,
    )


def tuned_version(
    result: StudyResult,
    *,
    week: str,
    as_of: dt.date,
    mlflow_run_id: str,
    study_name: str,
    optuna_storage: str,
    created_in_run: str,
    trigger: str,
    data_digest: str,
    settings: StudySettings,
) -> TunedVersion:
    """The version a finished study leaves; a storage URL other than SQLite is not recorded
    (a server URL may carry credentials)."""
    chosen = result.chosen
    validation = [
        (a, p) for w in result.windows for a, p in zip(w.actual, w.predicted, strict=True)
    ]
    return TunedVersion(
        week=week,
        as_of=as_of,
        params=chosen.params.to_dict(),
        rmse=chosen.rmse,
        accuracy=chosen.accuracy,
        naive_rmse=result.naive_rmse,
        rmse_ratio=chosen.rmse / result.naive_rmse,
        base_rate=result.base_rate,
        beats_naive=result.beats_naive,
        pareto=tuple(
            ParetoTrial(
                number=t.number, params=t.params.to_dict(), rmse=t.rmse, accuracy=t.accuracy
            )
            for t in result.pareto
        ),
        validation_errors=tuple(a - p for a, p in validation),
        mlflow_run_id=mlflow_run_id,
        study_name=study_name,
        optuna_storage=optuna_storage if optuna_storage.startswith("sqlite") else "configured",
        created_in_run=created_in_run,
        trigger=trigger,
        data_digest=data_digest,
        settings=settings,
    )


# --------------------------------------------------------------------------- storage


def version_key(ticker: str, week: str, as_of: dt.date) -> str:
    """The object of one version (see the module docstring)."""
    return object_key([ticker, VERSIONS_ASSET, week], as_of.isoformat(), "json")


def save_version(store: Store, ticker: str, version: TunedVersion) -> str:
    """Store `version` as its own object (an atomic write); returns its key."""
    key = version_key(ticker, version.week, version.as_of)
    write_json(store, key, version.model_dump(mode="json"))
    return key


def add_version(
    store: Store, ticker: str, version: TunedVersion, previous: Sequence[TunedVersion] = ()
) -> None:
    """Store `version` next to the week's `previous` versions without touching other objects.

    Versions read from a week's old single value (see ``week_versions``) get their own objects
    first, so adding one does not hide them; a version already stored is not rewritten. Then
    `version` is written, replacing only a version of the same ``as_of``.
    """
    for old in previous:
        if old.week == version.week and not store.exists(version_key(ticker, old.week, old.as_of)):
            save_version(store, ticker, old)
    save_version(store, ticker, version)


def week_versions(store: Store, ticker: str, week: str) -> list[TunedVersion]:
    """Every version of `week`, oldest ``as_of`` first.

    Weeks stored before versions had their own objects keep them in the `tuned_params` value
    only; that value is read when the week has no version objects, so old days stay
    reproducible.
    """
    prefix = version_key(ticker, week, dt.date.min).rpartition("/")[0] + "/"
    keys = [k for k in store.list_keys(prefix) if k.endswith(".json")]
    if keys:
        found = [TunedVersion.model_validate(read_json(store, k)) for k in keys]
    else:
        legacy = asset_value_key(ticker, TUNED_ASSET, week, "json")
        if not store.exists(legacy):
            return []
        found = list(TunedWeek.model_validate(read_json(store, legacy)).versions)
    return sorted(found, key=lambda v: v.as_of)


def tuned_week(store: Store, ticker: str, week: str) -> TunedWeek:
    """The week's record as the `tuned_params` asset returns it, from the version objects."""
    return TunedWeek(ticker=ticker, week=week, versions=tuple(week_versions(store, ticker, week)))


def model_pointer(
    ticker: str,
    day: dt.date,
    *,
    version: str,
    run_id: str,
    tuned: StudySource,
    params: ModelParams,
    model: FittedModel,
    train_rows: pl.DataFrame,
) -> ModelPointer:
    """The `daily_model` value of `day`: the registered `version` (trained in MLflow run
    `run_id` on `train_rows`) with the study version it came from; the drift report's reference
    is the study's out-of-sample errors and the training window's returns. One constructor for
    the asset and the benchmark's plain loop, so both point the same way."""
    return ModelPointer(
        ticker=ticker,
        day=day,
        model_version=version,
        model_uri=f"models:/zdte-{ticker}/{version}",
        mlflow_run_id=run_id,
        tuned_as_of=tuned.as_of,
        tuned_run_id=tuned.mlflow_run_id,
        beats_naive=tuned.beats_naive,
        params=params.to_dict(),
        features=model.features,
        sigma=model.sigma,
        shrinkage=model.shrinkage,
        train_first=train_rows["date"][0],
        train_last=train_rows["date"][-1],
        reference_errors=tuned.validation_errors,
        reference_returns=tuple(train_rows["target"].to_list()),
    )


# --------------------------------------------------------------------------- promotion


def promotion_due(beats_naive: bool, champion_day: str | None, day: str) -> bool:
    """The version used on `day` becomes champion when its study beat naive and the current
    champion is not from a later day (re-running an old day never demotes a newer one)."""
    return beats_naive and (champion_day is None or champion_day <= day)


def champion_due(pointer: ModelPointer, champion_day: str | None) -> bool:
    """Whether the model `pointer` names, used on its day, becomes champion."""
    return promotion_due(pointer.beats_naive, champion_day, pointer.day.isoformat())
