"""Tuned versions: which one a daily model may use, reuse, storage under concurrent writers,
champion promotion, and a study shared through Postgres."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from zdte_assets.core.records import ModelPointer, StudySettings, TunedVersion, TunedWeek
from zdte_assets.model import study, versions, walkforward
from zdte_assets.model.params import ModelParams
from zdte_assets.model.persistence import install_dir
from zdte_assets.model.study import StudyResult, TrialSummary
from zdte_assets.model.versions import (
    champion_due,
    promotion_due,
    reusable_version,
    select_version,
)
from zdte_assets.model.walkforward import WalkForwardConfig, WindowResult
from zdte_assets.storage.keys import asset_value_key
from zdte_assets.storage.store import LocalStore, write_json

TICKER = "TEST"
WEEK = "2024-06-10"
SETTINGS = StudySettings(
    n_trials=4, seed=0, train_days=30, test_days=10, n_windows=4, evaluation=3, code_version="x"
)


def tuned(as_of: dt.date, week: str = WEEK, run: str = "run", **changes: object) -> TunedVersion:
    """A stored version; only the fields a test looks at vary."""
    base = TunedVersion(
        week=week,
        as_of=as_of,
        params=ModelParams().to_dict(),
        rmse=0.01,
        accuracy=0.5,
        naive_rmse=0.011,
        rmse_ratio=0.01 / 0.011,
        base_rate=0.5,
        beats_naive=False,
        pareto=(),
        validation_errors=(0.001, -0.002),
        mlflow_run_id=run,
        study_name="s",
        optuna_storage="configured",
        created_in_run="dagster-run",
        trigger="schedule",
        data_digest="digest",
        settings=SETTINGS,
    )
    return base.model_copy(update=changes)


# --------------------------------------------------------------------------- selection


def test_model_of_day_uses_only_versions_whose_data_ended_before_it() -> None:
    weekly = tuned(dt.date(2024, 6, 7), run="weekly")  # data through Friday
    reopt = tuned(dt.date(2024, 6, 11), run="reopt Tuesday evening")
    known = [weekly, reopt]
    # Monday and Tuesday models were made before the re-optimization existed.
    assert select_version(known, dt.date(2024, 6, 10)) is weekly
    assert select_version(known, dt.date(2024, 6, 11)) is weekly
    # Wednesday's model picks the mid-week re-optimization up.
    assert select_version(known, dt.date(2024, 6, 12)) is reopt
    # Nothing known before the first version: no model.
    assert select_version(known, dt.date(2024, 6, 7)) is None


def test_ties_on_the_same_data_are_broken_deterministically() -> None:
    a = tuned(dt.date(2024, 6, 7), week="2024-06-03", run="re-optimized Friday evening")
    b = tuned(dt.date(2024, 6, 7), week="2024-06-10", run="weekly run of the next week")
    assert select_version([a, b], dt.date(2024, 6, 10)) is b
    assert select_version([b, a], dt.date(2024, 6, 10)) is b


def test_a_version_is_reused_only_for_the_same_cut_rows_and_settings() -> None:
    stored = tuned(dt.date(2024, 6, 7))
    assert reusable_version([stored], stored.as_of, "digest", SETTINGS) is stored
    assert reusable_version([stored], dt.date(2024, 6, 10), "digest", SETTINGS) is None
    assert reusable_version([stored], stored.as_of, "other rows", SETTINGS) is None
    upgraded = SETTINGS.model_copy(update={"code_version": "y"})
    assert reusable_version([stored], stored.as_of, "digest", upgraded) is None
    # A version stored before settings were recorded is never taken for an equal one.
    legacy = stored.model_copy(update={"settings": None, "data_digest": ""})
    assert reusable_version([legacy], stored.as_of, "", SETTINGS) is None


def test_tuned_version_carries_the_chosen_trial_and_its_out_of_sample_errors() -> None:
    chosen = TrialSummary(number=3, params=ModelParams(n_lags=2), rmse=0.009, accuracy=0.6)
    other = TrialSummary(number=1, params=ModelParams(), rmse=0.008, accuracy=0.5)
    day = dt.date(2024, 6, 3)
    windows = tuple(
        WindowResult(
            window=i,
            train_start=day,
            train_end=day,
            test_dates=(day, day),
            predicted=(0.001 * (i + 1), -0.002),
            actual=(0.004, 0.001 * i),
            features=("gap",),
            shrinkage=0.5,
        )
        for i in range(2)
    )
    result = StudyResult(
        study_name="s",
        config=WalkForwardConfig(),
        seed=0,
        n_complete_trials=4,
        pareto=(other, chosen),
        chosen=chosen,
        beats_naive=True,
        naive_rmse=0.012,
        base_rate=0.5,
        n_validation_rows=4,
        windows=windows,
    )
    common = dict(
        week=WEEK,
        as_of=dt.date(2024, 6, 7),
        mlflow_run_id="r",
        study_name="s",
        created_in_run="d",
        trigger="schedule",
        data_digest="digest",
        settings=SETTINGS,
    )
    v = versions.tuned_version(result, optuna_storage="sqlite:///x.db", **common)  # type: ignore[arg-type]
    assert v.params == chosen.params.to_dict()
    assert (v.rmse, v.accuracy, v.beats_naive) == (chosen.rmse, chosen.accuracy, True)
    assert v.rmse_ratio == pytest.approx(chosen.rmse / result.naive_rmse)
    assert [t.number for t in v.pareto] == [1, 3]
    expected = [a - p for w in windows for a, p in zip(w.actual, w.predicted, strict=True)]
    assert list(v.validation_errors) == pytest.approx(expected)
    assert v.optuna_storage == "sqlite:///x.db"
    # A server URL may carry credentials: it is not recorded.
    hidden = versions.tuned_version(result, optuna_storage="postgresql://u:pw@h/db", **common)  # type: ignore[arg-type]
    assert hidden.optuna_storage == "configured"
    # The record round-trips through the JSON the IO manager stores.
    assert TunedVersion.model_validate_json(v.model_dump_json()) == v


# --------------------------------------------------------------------------- storage


def test_versions_are_stored_one_object_each_and_replace_only_the_same_cut(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = tuned(dt.date(2024, 6, 7), run="a")
    versions.add_version(store, TICKER, first)
    later = tuned(dt.date(2024, 6, 11), run="b")
    versions.add_version(store, TICKER, later, [first])
    again = tuned(dt.date(2024, 6, 7), run="c")
    versions.add_version(store, TICKER, again, [first, later])
    assert [v.mlflow_run_id for v in versions.week_versions(store, TICKER, WEEK)] == ["c", "b"]
    assert versions.week_versions(store, TICKER, "2024-06-17") == []
    week = versions.tuned_week(store, TICKER, WEEK)
    assert TunedWeek.model_validate(week.model_dump(mode="json")) == week


def test_a_week_stored_as_one_value_keeps_its_versions_when_one_is_added(tmp_path: Path) -> None:
    """Weeks written before the per-version layout: their versions are read and carried over."""
    store = LocalStore(tmp_path)
    old = tuned(dt.date(2024, 6, 7), run="old")
    value = TunedWeek(ticker=TICKER, week=WEEK, versions=(old,)).model_dump(mode="json")
    # Versions of that time had no settings or digest yet.
    del value["versions"][0]["settings"], value["versions"][0]["data_digest"]
    write_json(store, asset_value_key(TICKER, "tuned_params", WEEK, "json"), value)
    previous = versions.week_versions(store, TICKER, WEEK)
    assert [v.mlflow_run_id for v in previous] == ["old"] and previous[0].settings is None
    versions.add_version(store, TICKER, tuned(dt.date(2024, 6, 11), run="new"), previous)
    runs = [v.mlflow_run_id for v in versions.week_versions(store, TICKER, WEEK)]
    assert runs == ["old", "new"]


def _write_version(root: str, day: int) -> None:
    """One writer as the `tuned_params` asset runs it: read the week, add its own version."""
    store = LocalStore(root)
    previous = versions.week_versions(store, TICKER, WEEK)
    mine = tuned(dt.date(2024, 6, 10) + dt.timedelta(days=day), run=f"writer-{day}")
    versions.add_version(store, TICKER, mine, previous)


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_concurrent_writers_of_a_week_lose_no_version(tmp_path: Path, pool: str) -> None:
    root = str(tmp_path / "store")
    versions.add_version(LocalStore(root), TICKER, tuned(dt.date(2024, 6, 7), run="weekly"))
    # Processes are what two Dagster runs are; each imports the model stack, so fewer of them.
    writers = 8 if pool == "threads" else 3
    executor = (
        ThreadPoolExecutor(writers)
        if pool == "threads"
        else ProcessPoolExecutor(writers, multiprocessing.get_context("spawn"))
    )
    with executor:
        list(executor.map(_write_version, [root] * writers, range(writers)))
    runs = {v.mlflow_run_id for v in versions.week_versions(LocalStore(root), TICKER, WEEK)}
    assert runs == {"weekly"} | {f"writer-{d}" for d in range(writers)}
    # And the week's record, as the asset returns it, lists them all.
    assert len(versions.tuned_week(LocalStore(root), TICKER, WEEK).versions) == writers + 1


def _fill_slowly(entry: Path, writer: int) -> None:
    (entry / "model").mkdir()
    for part in range(20):
        (entry / "model" / f"part-{part}").write_text(f"{writer}")
    (entry / "model" / "zdte").write_text(f"{writer}")


def test_concurrent_model_cache_installs_leave_one_whole_entry(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "1-run"

    def complete(entry: Path) -> bool:
        return (entry / "model" / "zdte").exists()

    def install(writer: int) -> Path:
        got = install_dir(dest, lambda tmp: _fill_slowly(tmp, writer), complete)
        # Whatever a caller gets back is whole and from one writer only.
        files = sorted((got / "model").iterdir())
        assert len(files) == 21
        assert len({f.read_text() for f in files}) == 1
        return got

    with ThreadPoolExecutor(8) as executor:
        results = list(executor.map(install, range(8)))
    assert set(results) == {dest}
    # No temporary copy is left behind.
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]


# --------------------------------------------------------------------------- promotion


def test_champion_moves_only_forward_and_only_with_an_edge() -> None:
    assert promotion_due(True, None, "2024-06-10")
    assert promotion_due(True, "2024-06-07", "2024-06-10")
    assert promotion_due(True, "2024-06-10", "2024-06-10")
    # Re-running an older day never demotes the newer champion.
    assert not promotion_due(True, "2024-06-11", "2024-06-10")
    assert not promotion_due(False, None, "2024-06-10")


def test_champion_due_judges_the_pointer_of_the_day_it_is_used() -> None:
    day = dt.date(2024, 6, 10)
    pointer = ModelPointer(
        ticker=TICKER,
        day=day,
        model_version="7",
        model_uri="models:/zdte-TEST/7",
        mlflow_run_id="r",
        tuned_as_of=dt.date(2024, 6, 7),
        tuned_run_id="t",
        beats_naive=True,
        params=ModelParams().to_dict(),
        features=("gap",),
        sigma=0.01,
        shrinkage=0.5,
        train_first=dt.date(2024, 3, 1),
        train_last=dt.date(2024, 6, 7),
    )
    assert champion_due(pointer, None)
    assert champion_due(pointer, day.isoformat())
    assert not champion_due(pointer, (day + dt.timedelta(days=1)).isoformat())
    assert not champion_due(pointer.model_copy(update={"beats_naive": False}), None)
    # The pointer is what the `daily_model` asset stores: it round-trips through its JSON.
    assert ModelPointer.model_validate(pointer.model_dump(mode="json")) == pointer


# --------------------------------------------------------------------------- Postgres


def synthetic_rows(n: int = 80, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    target = 0.004 * x[:, 0] + rng.normal(scale=0.01, size=n)
    start = dt.date(2024, 1, 1)
    data: dict[str, object] = {"date": [start + dt.timedelta(days=i) for i in range(n)]}
    names = ["gap", "rv_cc_20", "ret_oc_lag1", "ret_oc_lag2", "ret_cc_lag1", "ret_cc_lag2"]
    for j, name in enumerate(names):
        data[name] = x[:, j]
    data["target"] = target
    return pl.DataFrame(data)


def test_study_on_postgres_storage_is_shared_and_reproducible(pg_database: str) -> None:
    import optuna

    rows = synthetic_rows()
    cfg = walkforward.WalkForwardConfig()
    first = study.run_study(rows, cfg, n_trials=5, seed=1, storage=pg_database, study_name="w1")
    # Another worker opens the same study by name and sees every trial.
    loaded = optuna.load_study(study_name="w1", storage=pg_database)
    assert len(loaded.trials) == 5
    assert {t.number for t in loaded.best_trials} == {t.number for t in first.pareto}
    again = study.run_study(rows, cfg, n_trials=5, seed=1)
    assert again.to_dict()["chosen"]["params"] == first.to_dict()["chosen"]["params"]


def test_optuna_storage_is_the_configured_url_or_sqlite_in_the_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from zdte_assets.core.config import optuna_storage

    monkeypatch.setenv("ZDTE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZDTE_OPTUNA_STORAGE", "  ")
    assert optuna_storage() == f"sqlite:///{tmp_path / 'home' / 'optuna.db'}"
    assert (tmp_path / "home").is_dir()
    monkeypatch.setenv("ZDTE_OPTUNA_STORAGE", " postgresql://db/optuna ")
    assert optuna_storage() == "postgresql://db/optuna"


def test_an_incomplete_cache_entry_is_replaced_by_a_whole_one(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "1-run"
    (dest / "model").mkdir(parents=True)
    (dest / "model" / "part-0").write_text("half")
    install_dir(dest, lambda tmp: _fill_slowly(tmp, 1), lambda e: (e / "model" / "zdte").exists())
    assert {f.read_text() for f in (dest / "model").iterdir()} == {"1"}
