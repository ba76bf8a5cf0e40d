"""Which tuned parameters a daily model may use, and a study shared through Postgres."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from zdte_assets.model import study, walkforward
from zdte_assets.orchestration.assets.model import select_version


def version(as_of: str, week: str, tag: str) -> dict[str, str]:
    return {"as_of": as_of, "week": week, "tag": tag}


def test_model_of_day_uses_only_versions_whose_data_ended_before_it() -> None:
    weekly = version("2024-06-07", "2024-06-10", "weekly")  # data through Friday
    reopt = version("2024-06-11", "2024-06-10", "reopt Tuesday evening")
    versions = [weekly, reopt]
    # Monday and Tuesday models were made before the re-optimization existed.
    assert select_version(versions, dt.date(2024, 6, 10)) is weekly
    assert select_version(versions, dt.date(2024, 6, 11)) is weekly
    # Wednesday's model picks the mid-week re-optimization up.
    assert select_version(versions, dt.date(2024, 6, 12)) is reopt
    # Nothing known before the first version: no model.
    assert select_version(versions, dt.date(2024, 6, 7)) is None


def test_ties_on_the_same_data_are_broken_deterministically() -> None:
    a = version("2024-06-07", "2024-06-03", "re-optimized Friday evening")
    b = version("2024-06-07", "2024-06-10", "weekly run of the next week")
    assert select_version([a, b], dt.date(2024, 6, 10)) is b
    assert select_version([b, a], dt.date(2024, 6, 10)) is b


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


def test_champion_moves_only_forward_and_only_with_an_edge() -> None:
    from zdte_assets.orchestration.assets.prediction import promotion_due

    assert promotion_due(True, None, "2024-06-10")
    assert promotion_due(True, "2024-06-07", "2024-06-10")
    assert promotion_due(True, "2024-06-10", "2024-06-10")
    # Re-running an older day never demotes the newer champion.
    assert not promotion_due(True, "2024-06-11", "2024-06-10")
    assert not promotion_due(False, None, "2024-06-10")
