"""Model lifecycle assets: weekly `tuned_params` (Optuna) and daily `daily_model` (LightGBM).

The heavy lifting is in `zdte_assets.model` (fitting, walkforward, study) and the rules on tuned
versions (storage, selection, reuse) in `zdte_assets.model.versions`; these functions choose the
rows each partition may see (strictly before its day), record everything in MLflow and keep the
models in the registry. Models never travel through the IO manager: the asset values are the
records `TunedWeek` and `ModelPointer` (a pointer to the registry) as JSON.
"""

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

import zdte_assets
from zdte_assets.apps import plots
from zdte_assets.core import calendar, timing
from zdte_assets.core.config import STUDY_LOOKBACK_WEEKS, optuna_storage
from zdte_assets.core.records import StudySettings, TunedVersion, TunedWeek
from zdte_assets.model import lifecycle, versions
from zdte_assets.model.fitting import FittedModel, fit_model, train_daily
from zdte_assets.model.lifecycle import data_digest, labeled_rows
from zdte_assets.model.params import ModelParams
from zdte_assets.model.persistence import load_model_dir as load_model_files
from zdte_assets.model.persistence import save_model_dir
from zdte_assets.model.study import STUDY_EVALUATION_VERSION, run_study_stored
from zdte_assets.model.walkforward import MAX_TRAIN_WINDOW, WalkForwardConfig
from zdte_assets.orchestration.io_manager import WINDOW_INPUT
from zdte_assets.orchestration.jobs import DAILY_BACKFILL, asset_key, step_priority
from zdte_assets.orchestration.metadata import numbers
from zdte_assets.orchestration.partitions import day_of, one_session, weeks_of_day_and_previous
from zdte_assets.orchestration.resources import StoreResource
from zdte_assets.orchestration.tracking import (
    MODEL_REQUIREMENTS,
    MlflowTracking,
    signature_and_example,
)

#: Sessions of history a daily retrain may draw from (the largest train_window in the search space).
MAX_TRAIN_SESSIONS = MAX_TRAIN_WINDOW


class TunedParamsConfig(dg.Config):
    """Study settings; `as_of` set by a triggered re-optimization (defaults to the week's eve)."""

    as_of: str = ""
    n_trials: int = 24
    train_days: int = 30
    test_days: int = 10
    n_windows: int = 4
    seed: int = 0


def _run_tags(context: dg.AssetExecutionContext, ticker: str, digest: str) -> dict[str, str]:
    return {
        "dagster.run_id": context.run.run_id,
        "dagster.asset_key": context.asset_key.to_user_string(),
        "dagster.partition_key": context.partition_key,
        "zdte.code_version": zdte_assets.__version__,
        "zdte.data_digest": digest,
        "ticker": ticker,
    }


def _week_as_of(week_key: str, as_of: str) -> dt.date:
    monday = day_of(week_key)
    sessions = calendar.trading_days(monday, monday + dt.timedelta(days=4))
    if not sessions:
        raise dg.Failure(f"week {week_key} has no trading days; nothing to optimize for")
    if not as_of:
        return calendar.previous_trading_day(monday)
    day = dt.date.fromisoformat(as_of)
    if not (calendar.previous_trading_day(monday) <= day <= sessions[-1]):
        raise dg.Failure(f"as_of {day} is not within week {week_key} (or its eve)")
    return day


def build_model_assets(
    ticker: str, days: dg.PartitionsDefinition, weeks: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    tuned_key = asset_key(ticker, "tuned_params")

    @dg.asset(
        key=tuned_key,
        group_name=ticker,
        partitions_def=weeks,
        kinds={"optuna", "mlflow", "json"},
        ins={
            "features": dg.AssetIn(
                key=asset_key(ticker, "features"),
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-STUDY_LOOKBACK_WEEKS, end_offset=0
                ),
                metadata=WINDOW_INPUT,
            ),
            "daily_bar": dg.AssetIn(
                key=asset_key(ticker, "daily_bar"),
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-STUDY_LOOKBACK_WEEKS, end_offset=0
                ),
                metadata=WINDOW_INPUT,
            ),
        },
        description=(
            "Weekly multi-objective Optuna study (min RMSE, max directional accuracy), walk-forward on "
            "windows that end before the week (or before `as_of` for a triggered re-optimization). "
            "Keeps every version, each with the day its data ended."
        ),
    )
    def tuned_params(
        context: dg.AssetExecutionContext,
        config: TunedParamsConfig,
        mlflow: MlflowTracking,
        store: StoreResource,
        features: pl.DataFrame,
        daily_bar: pl.DataFrame,
    ) -> dg.Output[dict[str, Any]]:
        week = context.partition_key
        as_of = _week_as_of(week, config.as_of)
        with timing.part("compute"):
            rows = lifecycle.study_rows(features, daily_bar, day_of(week), as_of)
            digest = data_digest(rows)
        cfg = WalkForwardConfig(
            train_days=config.train_days, test_days=config.test_days, n_windows=config.n_windows
        )
        study_name = lifecycle.study_name(ticker, day_of(week), as_of)
        storage_url = optuna_storage()
        s = store.store()
        with timing.part("storage"):
            previous = versions.week_versions(s, ticker, week)
        # A version is reused only under the same settings, scoring scheme and code: after an
        # upgrade, re-running a week recomputes its study.
        settings = StudySettings(
            n_trials=config.n_trials,
            seed=config.seed,
            **cfg.to_dict(),
            evaluation=STUDY_EVALUATION_VERSION,
            code_version=zdte_assets.__version__,
        )
        trigger = context.run.tags.get("zdte/trigger", "schedule")
        same = versions.reusable_version(previous, as_of, digest, settings)
        if same is not None:
            value = TunedWeek(ticker=ticker, week=week, versions=tuple(previous))
            return _tuned_output(value, same, rows.height, trigger, reused=True)
        with mlflow.run(
            ticker, f"study {week} as of {as_of}", _run_tags(context, ticker, digest)
        ) as (run_id, log):
            with timing.part("studies"):
                result = run_study_stored(
                    rows,
                    cfg,
                    n_trials=config.n_trials,
                    seed=config.seed,
                    storage=storage_url,
                    study_name=study_name,
                )
            summary = result.to_dict()
            chosen = result.chosen
            log.params.update({f"chosen.{k}": v for k, v in chosen.params.to_dict().items()})
            log.params.update(
                {
                    "week": week,
                    "as_of": as_of.isoformat(),
                    "n_trials": config.n_trials,
                    "train_days": cfg.train_days,
                    "test_days": cfg.test_days,
                    "n_windows": cfg.n_windows,
                    "seed": config.seed,
                    "study_name": study_name,
                }
            )
            log.metrics.update(
                {
                    "val_rmse": chosen.rmse,
                    "val_directional_accuracy": chosen.accuracy,
                    "naive_rmse": result.naive_rmse,
                    "rmse_ratio": chosen.rmse / result.naive_rmse,
                    "base_rate_up": result.base_rate,
                    "pareto_size": len(result.pareto),
                    "beats_naive": float(result.beats_naive),
                }
            )
            log.tags["zdte.kind"] = "weekly_study"
            log.write_json("study.json", summary)
            with timing.part("plots"):
                pareto = result.pareto
                idx = next(i for i, t in enumerate(pareto) if t.number == chosen.number)
                plots.pareto_front(
                    [t.rmse for t in pareto],
                    [t.accuracy for t in pareto],
                    idx,
                    result.naive_rmse,
                    result.base_rate,
                    log.artifact("pareto_front.png"),
                )
                wins = summary.get("validation", {})
                if wins.get("actual"):
                    plots.predicted_vs_actual(
                        wins["actual"],
                        wins["predicted"],
                        log.artifact("predicted_vs_actual.png"),
                        "chosen trial, validation windows",
                    )
                model = fit_model(rows.tail(chosen.params.train_window), chosen.params)
                names, gains = model.importance()
                plots.feature_importance(names, gains, log.artifact("feature_importance.png"))
            mlflow.log_dataset(run_id, rows, f"{ticker}-study-{week}", digest)

        version = versions.tuned_version(
            result,
            week=week,
            as_of=as_of,
            mlflow_run_id=run_id,
            study_name=study_name,
            optuna_storage=storage_url,
            created_in_run=context.run.run_id,
            trigger=trigger,
            data_digest=digest,
            settings=settings,
        )
        with timing.part("storage"):
            # One object per version: a concurrent run of the same week cannot drop this one.
            versions.add_version(s, ticker, version, previous)
            value = versions.tuned_week(s, ticker, week)
        return _tuned_output(value, version, rows.height, trigger, reused=False)

    @dg.asset(
        key=asset_key(ticker, "daily_model"),
        backfill_policy=DAILY_BACKFILL,
        op_tags=step_priority("daily_model"),
        group_name=ticker,
        partitions_def=days,
        kinds={"lightgbm", "mlflow", "json"},
        ins={
            "features": dg.AssetIn(
                key=asset_key(ticker, "features"),
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-MAX_TRAIN_SESSIONS, end_offset=-1
                ),
                metadata=WINDOW_INPUT,
            ),
            "daily_bar": dg.AssetIn(
                key=asset_key(ticker, "daily_bar"),
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-MAX_TRAIN_SESSIONS, end_offset=-1
                ),
                metadata=WINDOW_INPUT,
            ),
            # Not loaded through the IO manager: the versions are read from their own objects
            # (`versions.week_versions`), which concurrent studies of a week cannot overwrite.
            "tuned_params": dg.AssetIn(
                key=tuned_key,
                partition_mapping=weeks_of_day_and_previous(),
                dagster_type=dg.Nothing,
                metadata=WINDOW_INPUT,
            ),
        },
        description=(
            "The model used on day t: retrained on rows strictly before t with the tuned parameters "
            "known at that moment; registered in MLflow (alias challenger; champion once used)."
        ),
    )
    def daily_model(
        context: dg.AssetExecutionContext,
        mlflow: MlflowTracking,
        store: StoreResource,
        features: pl.DataFrame,
        daily_bar: pl.DataFrame,
    ) -> dg.Output[dict[str, Any]]:
        day = one_session(context)
        s = store.store()
        with timing.part("storage"):
            known = [
                v
                for week in context.asset_partition_keys_for_input("tuned_params")
                for v in versions.week_versions(s, ticker, week)
            ]
        tuned = versions.select_version(known, day)
        if tuned is None:
            raise dg.Failure(
                f"daily_model {day}: no tuned_params version with data before {day}; "
                "materialize the tuned_params of this or the previous week first"
            )
        params = ModelParams.from_dict(tuned.params)
        with timing.part("compute"):
            rows = labeled_rows(features, daily_bar, before=day)
            # Every row the model and its calibration see: the key of an identical retrain.
            digest = data_digest(rows)
        train_rows = rows.tail(params.train_window)
        key = {
            "day": day.isoformat(),
            "data_digest": digest,
            "tuned_run_id": tuned.mlflow_run_id,
            "zdte.code_version": zdte_assets.__version__,
        }
        existing = mlflow.find_version(ticker, key)
        if existing is not None:
            # A retried or repeated run on the same rows and study: the model it would train is
            # the one already registered (training is deterministic), so neither a second
            # version nor an alias move.
            version, run_id = str(existing.version), str(existing.run_id)
            with timing.part("storage"):
                model = load_model_dir(mlflow.cached_model(ticker, version, run_id))
            reused = True
        else:
            model, run_id, version = _train_and_register(
                context, mlflow, ticker, day, rows, params, tuned, key
            )
            # `champion` moves only when the morning prediction uses a version (see the
            # prediction asset and `versions.champion_due`): a model superseded before its day
            # (the Friday retrain of Monday's model, replaced after Sunday's study) is never
            # promoted.
            mlflow.set_alias(ticker, "challenger", version)
            reused = False
        pointer = versions.model_pointer(
            ticker,
            day,
            version=version,
            run_id=run_id,
            tuned=tuned,
            params=params,
            model=model,
            train_rows=train_rows,
        )
        return dg.Output(
            pointer.model_dump(mode="json"),
            metadata={
                "model_uri": pointer.model_uri,
                "train_last": pointer.train_last.isoformat(),
                "tuned_as_of": tuned.as_of.isoformat(),
                "beats_naive": pointer.beats_naive,
                "model_version": version,
                "train_rows": train_rows.height,
                **numbers(
                    {
                        "sigma": model.sigma,
                        "shrinkage": model.shrinkage,
                        "tuned_rmse": tuned.rmse,
                        "tuned_rmse_ratio": tuned.rmse_ratio,
                        **model.validation_metrics(),
                    }
                ),
                "mlflow_run_id": run_id,
                "reused_registered_version": reused,
            },
        )

    return [tuned_params, daily_model]


def _train_and_register(
    context: dg.AssetExecutionContext,
    mlflow: MlflowTracking,
    ticker: str,
    day: dt.date,
    rows: pl.DataFrame,
    params: ModelParams,
    tuned: TunedVersion,
    key: dict[str, str],
) -> tuple[FittedModel, str, str]:
    """Fit the day's model in an MLflow run and register it with `key` as version tags.

    The run's digest and dataset name the training rows (provenance); the version's
    `data_digest` covers every row passed, calibration rows included (identity of a retrain).
    """
    train_rows = rows.tail(params.train_window)
    digest = data_digest(train_rows)
    with mlflow.run(ticker, f"model {day}", _run_tags(context, ticker, digest)) as (run_id, log):
        with timing.part("training"):
            model = train_daily(rows, params, before=day)
        log.params.update({k: v for k, v in params.to_dict().items()})
        log.params.update(
            {
                "day": day.isoformat(),
                "tuned_as_of": tuned.as_of.isoformat(),
                "tuned_run_id": tuned.mlflow_run_id,
                "train_first": str(train_rows["date"][0]),
                "train_last": str(train_rows["date"][-1]),
                "features": ",".join(model.features),
            }
        )
        log.metrics.update(model.validation_metrics())
        log.metrics.update(
            {
                "sigma": model.sigma,
                "shrinkage": model.shrinkage,
                "study_rmse_ratio": tuned.rmse_ratio,
                "study_beats_naive": float(tuned.beats_naive),
            }
        )
        log.tags["zdte.kind"] = "daily_model"
        # Importances as JSON, not a PNG: a plot per trading day cost more than the fit; the
        # weekly study's run keeps the rendered plots.
        names, gains = model.importance()
        log.write_json("feature_importance.json", dict(zip(names, gains, strict=True)))
        mlflow.log_dataset(run_id, train_rows, f"{ticker}-train-{day}", digest)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        with timing.part("mlflow"):
            save_mlflow_model(model, model_dir, train_rows)
        version = mlflow.register(
            ticker, run_id, model_dir, {**key, "dagster.run_id": context.run.run_id}
        )
        mlflow.seed_model_cache(ticker, version, run_id, model_dir)
    return model, run_id, version


def _tuned_output(
    value: TunedWeek, version: TunedVersion, n_rows: int, trigger: str, reused: bool
) -> dg.Output[dict[str, Any]]:
    return dg.Output(
        value.model_dump(mode="json"),
        metadata={
            "as_of": version.as_of.isoformat(),
            # The drift sensor reads these to retrain the next session with this version.
            "trigger": trigger,
            "reused_version": reused,
            "rows": n_rows,
            **numbers(
                {
                    "val_rmse": version.rmse,
                    "naive_rmse": version.naive_rmse,
                    "rmse_ratio": version.rmse_ratio,
                    "directional_accuracy": version.accuracy,
                    "base_rate_up": version.base_rate,
                }
            ),
            "beats_naive": version.beats_naive,
            "pareto_size": len(version.pareto),
            "mlflow_run_id": version.mlflow_run_id,
            "versions": len(value.versions),
        },
    )


def save_mlflow_model(model: FittedModel, path: Path, rows: pl.DataFrame) -> None:
    """An MLflow lightgbm-flavour directory plus zdte's JSON metadata; explicit requirements keep it
    fast. `rows` (the training rows) give the signature and the input example."""
    import mlflow.lightgbm

    signature, example = signature_and_example(model, rows)
    mlflow.lightgbm.save_model(
        model.booster,
        str(path),
        pip_requirements=MODEL_REQUIREMENTS,
        signature=signature,
        input_example=example,
    )
    save_model_dir(model, path / "zdte")


def load_model_dir(path: Path) -> FittedModel:
    """The model of an MLflow model directory `save_mlflow_model` wrote."""
    return load_model_files(path / "zdte")
