"""Model lifecycle assets: weekly `tuned_params` (Optuna) and daily `daily_model` (LightGBM).

The heavy lifting is in `zdte_assets.model.training`; these functions choose the rows each partition may
see (strictly before its day), record everything in MLflow and keep the models in the registry.
Models never travel through the IO manager: the asset value is a JSON pointer to the registry.
"""

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

import zdte_assets
from zdte_assets.apps import plots
from zdte_assets.core import calendar, config, timing
from zdte_assets.core.config import STUDY_LOOKBACK_WEEKS
from zdte_assets.model import lifecycle, training
from zdte_assets.model.lifecycle import data_digest, labeled_rows, select_version
from zdte_assets.orchestration.io_manager import WINDOW_INPUT
from zdte_assets.orchestration.jobs import step_priority
from zdte_assets.orchestration.partitions import day_of
from zdte_assets.orchestration.resources import StoreResource
from zdte_assets.orchestration.tracking import MODEL_REQUIREMENTS, MlflowTracking

#: Sessions of history a daily retrain may draw from (the largest train_window in the search space).
MAX_TRAIN_SESSIONS = training.MAX_TRAIN_WINDOW


class TunedParamsConfig(dg.Config):
    """Study settings; `as_of` set by a triggered re-optimization (defaults to the week's eve)."""

    as_of: str = ""
    n_trials: int = 24
    train_days: int = 30
    test_days: int = 10
    n_windows: int = 4
    seed: int = 0


def optuna_storage() -> str:
    """`ZDTE_OPTUNA_STORAGE` (e.g. postgresql://...) or a SQLite file in the data directory."""
    url = os.environ.get("ZDTE_OPTUNA_STORAGE", "").strip()
    if url:
        return url
    config.zdte_home().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{config.zdte_home() / 'optuna.db'}"


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
    tuned_key = dg.AssetKey([ticker, "tuned_params"])

    @dg.asset(
        key=tuned_key,
        group_name=ticker,
        partitions_def=weeks,
        kinds={"optuna", "mlflow", "json"},
        ins={
            "features": dg.AssetIn(
                key=[ticker, "features"],
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-STUDY_LOOKBACK_WEEKS, end_offset=0
                ),
                metadata=WINDOW_INPUT,
            ),
            "daily_bar": dg.AssetIn(
                key=[ticker, "daily_bar"],
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
        cfg = training.WalkForwardConfig(
            train_days=config.train_days, test_days=config.test_days, n_windows=config.n_windows
        )
        study_name = lifecycle.study_name(ticker, day_of(week), as_of)
        storage_url = optuna_storage()
        with timing.part("storage"):
            previous = _previous_versions(store, tuned_key, week)
        # A version is reused only under the same settings, scoring scheme and code: after an
        # upgrade, re-running a week recomputes its study.
        settings = {
            "n_trials": config.n_trials,
            "seed": config.seed,
            **cfg.to_dict(),
            "evaluation": training.STUDY_EVALUATION_VERSION,
            "code_version": zdte_assets.__version__,
        }
        same = next(
            (
                v
                for v in previous
                if v["as_of"] == as_of.isoformat()
                and v.get("data_digest") == digest
                and v.get("settings") == settings
            ),
            None,
        )
        if same is not None:
            # A drift trigger on Friday and the Sunday schedule both study the coming week with
            # data through Friday: the second finds the first's version (same rows, same
            # settings, so the same result) and keeps it, with its MLflow run and stored study,
            # instead of recomputing and replacing what Monday's model may already point to.
            trigger = context.run.tags.get("zdte/trigger", "schedule")
            return _tuned_output(ticker, week, previous, same, rows.height, trigger, reused=True)
        with mlflow.run(
            ticker, f"study {week} as of {as_of}", _run_tags(context, ticker, digest)
        ) as (run_id, log):
            with timing.part("studies"):
                result = training.run_study_stored(
                    rows,
                    cfg,
                    n_trials=config.n_trials,
                    seed=config.seed,
                    storage=storage_url,
                    study_name=study_name,
                )
            summary = result.to_dict()
            chosen = summary["chosen"]
            log.params.update({f"chosen.{k}": v for k, v in chosen["params"].items()})
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
                    "val_rmse": chosen["rmse"],
                    "val_directional_accuracy": chosen["accuracy"],
                    "naive_rmse": result.naive_rmse,
                    "rmse_ratio": chosen["rmse"] / result.naive_rmse,
                    "base_rate_up": result.base_rate,
                    "pareto_size": len(summary["pareto"]),
                    "beats_naive": float(result.beats_naive),
                }
            )
            log.tags["zdte.kind"] = "weekly_study"
            log.write_json("study.json", summary)
            with timing.part("plots"):
                pareto = summary["pareto"]
                idx = next(i for i, t in enumerate(pareto) if t["number"] == chosen["number"])
                plots.pareto_front(
                    [t["rmse"] for t in pareto],
                    [t["accuracy"] for t in pareto],
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
                chosen_params = training.ModelParams.from_dict(chosen["params"])
                model = training.fit_model(rows.tail(chosen_params.train_window), chosen_params)
                names, gains = model.importance()
                plots.feature_importance(names, gains, log.artifact("feature_importance.png"))
            mlflow.log_dataset(run_id, rows, f"{ticker}-study-{week}", digest)

        version = {
            "week": week,
            "as_of": as_of.isoformat(),
            "params": chosen["params"],
            "rmse": chosen["rmse"],
            "accuracy": chosen["accuracy"],
            "naive_rmse": result.naive_rmse,
            "rmse_ratio": chosen["rmse"] / result.naive_rmse,
            "base_rate": result.base_rate,
            "beats_naive": result.beats_naive,
            "pareto": summary["pareto"],
            # Walk-forward out-of-sample errors of the chosen trial: the reference level the
            # drift report compares live errors with.
            "validation_errors": [
                a - p
                for a, p in zip(wins.get("actual", []), wins.get("predicted", []), strict=True)
            ],
            "mlflow_run_id": run_id,
            "study_name": study_name,
            "optuna_storage": storage_url if storage_url.startswith("sqlite") else "configured",
            "created_in_run": context.run.run_id,
            "trigger": context.run.tags.get("zdte/trigger", "schedule"),
            "data_digest": digest,
            "settings": settings,
        }
        versions = [v for v in previous if v["as_of"] != version["as_of"]]
        versions = sorted([*versions, version], key=lambda v: v["as_of"])
        return _tuned_output(
            ticker, week, versions, version, rows.height, version["trigger"], reused=False
        )

    @dg.asset(
        key=[ticker, "daily_model"],
        op_tags=step_priority("daily_model"),
        group_name=ticker,
        partitions_def=days,
        kinds={"lightgbm", "mlflow", "json"},
        ins={
            "features": dg.AssetIn(
                key=[ticker, "features"],
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-MAX_TRAIN_SESSIONS, end_offset=-1
                ),
                metadata=WINDOW_INPUT,
            ),
            "daily_bar": dg.AssetIn(
                key=[ticker, "daily_bar"],
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-MAX_TRAIN_SESSIONS, end_offset=-1
                ),
                metadata=WINDOW_INPUT,
            ),
            "tuned_params": dg.AssetIn(
                key=tuned_key,
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-5, end_offset=0),
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
        features: pl.DataFrame,
        daily_bar: pl.DataFrame,
        tuned_params: dict[str, Any],
    ) -> dg.Output[dict[str, Any]]:
        day = day_of(context.partition_key)
        versions = [v for week in tuned_params.values() for v in week["versions"]]
        tuned = select_version(versions, day)
        if tuned is None:
            raise dg.Failure(
                f"daily_model {day}: no tuned_params version with data before {day}; "
                "materialize the tuned_params of this or the previous week first"
            )
        params = training.ModelParams.from_dict(tuned["params"])
        with timing.part("compute"):
            rows = labeled_rows(features, daily_bar, before=day)
            # Every row the model and its calibration see: the key of an identical retrain.
            digest = data_digest(rows)
        train_rows = rows.tail(params.train_window)
        key = {
            "day": day.isoformat(),
            "data_digest": digest,
            "tuned_run_id": str(tuned["mlflow_run_id"]),
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
            # prediction asset): a model superseded before its day (the Friday retrain of
            # Monday's model, replaced after Sunday's study) is never promoted.
            mlflow.set_alias(ticker, "challenger", version)
            reused = False
        beats_naive = bool(tuned["beats_naive"])
        value = {
            "ticker": ticker,
            "day": day.isoformat(),
            "model_version": version,
            "model_uri": f"models:/zdte-{ticker}/{version}",
            "mlflow_run_id": run_id,
            "tuned_as_of": tuned["as_of"],
            "tuned_run_id": tuned["mlflow_run_id"],
            "beats_naive": beats_naive,
            "params": params.to_dict(),
            "features": model.features,
            "sigma": model.sigma,
            "shrinkage": model.shrinkage,
            "train_first": str(train_rows["date"][0]),
            "train_last": str(train_rows["date"][-1]),
            "reference_errors": tuned.get("validation_errors", []),
            "reference_returns": train_rows["target"].to_list(),
        }
        return dg.Output(
            value,
            metadata={
                "model_uri": value["model_uri"],
                "train_last": value["train_last"],
                "tuned_as_of": tuned["as_of"],
                "beats_naive": beats_naive,
                "sigma": model.sigma,
                "shrinkage": model.shrinkage,
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
    params: training.ModelParams,
    tuned: dict[str, Any],
    key: dict[str, str],
) -> tuple[training.FittedModel, str, str]:
    """Fit the day's model in an MLflow run and register it with `key` as version tags.

    The run's digest and dataset name the training rows (provenance); the version's
    `data_digest` covers every row passed, calibration rows included (identity of a retrain).
    """
    train_rows = rows.tail(params.train_window)
    digest = data_digest(train_rows)
    with mlflow.run(ticker, f"model {day}", _run_tags(context, ticker, digest)) as (run_id, log):
        with timing.part("training"):
            model = training.train_daily(rows, params, before=day)
        log.params.update({k: v for k, v in params.to_dict().items()})
        log.params.update(
            {
                "day": day.isoformat(),
                "tuned_as_of": tuned["as_of"],
                "tuned_run_id": tuned["mlflow_run_id"],
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
                "study_rmse_ratio": tuned["rmse_ratio"],
                "study_beats_naive": float(tuned["beats_naive"]),
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
            save_mlflow_model(model, model_dir)
        version = mlflow.register(
            ticker, run_id, model_dir, {**key, "dagster.run_id": context.run.run_id}
        )
        mlflow.seed_model_cache(ticker, version, run_id, model_dir)
    return model, run_id, version


def _tuned_output(
    ticker: str,
    week: str,
    versions: list[dict[str, Any]],
    version: dict[str, Any],
    n_rows: int,
    trigger: str,
    reused: bool,
) -> dg.Output[dict[str, Any]]:
    return dg.Output(
        {"ticker": ticker, "week": week, "versions": versions},
        metadata={
            "as_of": version["as_of"],
            # The drift sensor reads these to retrain the next session with this version.
            "trigger": trigger,
            "reused_version": reused,
            "rows": n_rows,
            "val_rmse": version["rmse"],
            "naive_rmse": version["naive_rmse"],
            "rmse_ratio": round(version["rmse_ratio"], 4),
            "directional_accuracy": version["accuracy"],
            "base_rate_up": version["base_rate"],
            "beats_naive": version["beats_naive"],
            "pareto_size": len(version["pareto"]),
            "mlflow_run_id": version["mlflow_run_id"],
            "versions": len(versions),
        },
    )


def save_mlflow_model(model: training.FittedModel, path: Path) -> None:
    """An MLflow lightgbm-flavour directory plus zdte's JSON metadata; explicit requirements keep it fast."""
    import mlflow.lightgbm

    mlflow.lightgbm.save_model(model.booster, str(path), pip_requirements=MODEL_REQUIREMENTS)
    model.to_dir(path / "zdte")


def load_model_dir(path: Path) -> training.FittedModel:
    return training.FittedModel.from_dir(path / "zdte")


def _previous_versions(store: StoreResource, key: dg.AssetKey, week: str) -> list[dict[str, Any]]:
    """Versions stored by earlier materializations of this week (kept so old days stay reproducible)."""
    from zdte_assets.storage import store as storage
    from zdte_assets.storage.keys import object_key

    k = object_key(key.path, week, "json")
    s = store.store()
    if not s.exists(k):
        return []
    return list(storage.read_json(s, k).get("versions", []))
