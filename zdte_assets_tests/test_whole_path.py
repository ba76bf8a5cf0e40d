"""The whole path through the real Dagster definitions, on a series whose answers are known.

Each session runs as production runs it (the schedules' own request functions, the jobs, the
drift sensor's tick and the re-optimizations it asks for, the IO manager, MLflow and Optuna;
a file source), over a synthetic series with a planted lag-1 signal whose volatility jumps
after some weeks (`synthetic.synthetic_bars("signal_regime")`). Every setting is the
platform's default except those that only make the walk shorter: the study's trials, and the
gate's minimum history (``GATE_MIN_DAYS`` past forecasts instead of 60) and significance levels
(``GATE_ALPHA`` instead of 0.05), so that the trade path runs within weeks. At the default levels
the gate needs about 60 sessions of this signal to open in 80% of seeds
(`test_gate_power.py` derives it), a walk too long for a test. The drift settings are the
defaults. The planted answers:

* today's open-to-close return is ``SIGNAL`` times yesterday's plus noise, so the weekly
  study beats the naive (zero) forecast, but no model beats the oracle, whose RMSE is
  ``sqrt(1 - SIGNAL**2)`` of the naive one (an AR(1) with coefficient ``SIGNAL``);
* the significance gate weighs one recorded forecast per walked session and stays shut before
  ``GATE_MIN_DAYS`` of them; a trade's P&L is the option's payoff at the synthetic close minus
  what was paid for it, and with the gate open some sessions' expected payoff beats the
  premium, so trades happen;
* from ``REGIME_AT`` the noise is ``REGIME_FACTOR`` times larger, so the 3-session RMSE is about
  that factor over its out-of-sample reference, above the default 1.2 threshold, and the drift
  sensor must re-optimize;
* the version used on a morning whose study beat naive becomes the registry's champion.

One walk is shared by the tests of this module (its cost: BENCHMARKS.md, "whole-path test").
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl
import pytest

from zdte_assets.core import calendar
from zdte_assets.core.config import STUDY_LOOKBACK_WEEKS
from zdte_assets.data import synthetic
from zdte_assets.definitions import build_definitions
from zdte_assets.features.rows import LOOKBACK
from zdte_assets.monitoring.config import MONITORING_CONFIG
from zdte_assets.orchestration import metadata
from zdte_assets.orchestration.runner import QUIET, local_instance, materialize_range
from zdte_assets.orchestration.schedules import session_requests, weekly_requests
from zdte_assets.orchestration.sensors import evaluate_drift
from zdte_assets.storage import store as storage
from zdte_assets.storage.keys import asset_value_key
from zdte_assets.trading.pricing import DecisionConfig

#: The walk with its fixture takes minutes, more on a loaded machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

TICKER = "SPY"  # daily expiries by default, so every session can trade
SEED = 22
SIGNAL = 0.8
#: Sessions of history before the first walked session (what the weekly study looks back on).
HISTORY = LOOKBACK + STUDY_LOOKBACK_WEEKS * 5 + 5
GATE_MIN_DAYS = 10
#: The gate's Diebold-Mariano and Pesaran-Timmermann levels in this walk: all but open once
#: GATE_MIN_DAYS forecasts are in, so the decision's own rule (expected payoff against the
#: premium and costs) is what chooses the trades.
GATE_ALPHA = 0.99
#: Walked sessions: the gate's minimum history, some weeks of trading, the regime change.
SESSIONS = 28
#: Walked session (index) from which the volatility is REGIME_FACTOR times larger.
REGIME_AT = 18
REGIME_FACTOR = 3.0
TRIALS = 4


@dataclass(frozen=True)
class WholePath:
    bars: pl.DataFrame
    days: list[dt.date]
    store: storage.Store
    instance: dg.DagsterInstance
    #: Drift days on which the sensor's re-optimization ran.
    reoptimized: list[dt.date]

    def read(self, asset: str, partition: str) -> dict[str, Any]:
        return storage.read_json(self.store, asset_value_key(TICKER, asset, partition, "json"))

    def materializations(self, asset: str) -> list[dg.EventLogRecord]:
        return list(
            self.instance.fetch_materializations(
                dg.AssetKey([TICKER, asset]), limit=10_000, ascending=True
            ).records
        )


def _run_config(request: dg.RunRequest) -> dict[str, Any]:
    """The request's own config, plus the two settings this test changes (see the docstring)."""
    config: dict[str, Any] = json.loads(json.dumps(request.run_config or {}))
    ops = config.setdefault("ops", {})
    slot = request.tags.get("zdte/slot")
    if slot in ("weekly", "reoptimization"):
        op = ops.setdefault(f"{TICKER}__tuned_params", {"config": {}})
        op["config"]["n_trials"] = TRIALS
    if slot == "session":
        op = ops.setdefault(f"{TICKER}__prediction", {"config": {}})
        op["config"]["gate_min_days"] = GATE_MIN_DAYS
        op["config"]["gate_dm_alpha"] = GATE_ALPHA
        op["config"]["gate_pt_alpha"] = GATE_ALPHA
    return {**QUIET, **config}


def walk(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    store: storage.Store,
    days: list[dt.date],
) -> list[dt.date]:
    """Each session as production runs it: the weekly study on the week's first session, the
    session run (retrain, 09:30 prediction, evening bar, outcome, drift report), then the drift
    sensor's tick and the re-optimization it asks for. Returns the re-optimized drift days."""
    reoptimized: list[dt.date] = []
    cursor: dict[str, Any] = {"drift_id": 0, "tuned_id": 0}  # a fresh instance

    def run(request: dg.RunRequest) -> None:
        job = defs.resolve_job_def(request.job_name or "")
        result = job.execute_in_process(
            run_config=_run_config(request),
            instance=instance,
            partition_key=request.partition_key,
            tags=dict(request.tags),
        )
        assert result.success, (request.job_name, request.partition_key)

    def requests(value: list[dg.RunRequest] | dg.SkipReason) -> list[dg.RunRequest]:
        return [] if isinstance(value, dg.SkipReason) else value

    for i, day in enumerate(days):
        monday = calendar.week_start(day)
        if i == 0 or monday != calendar.week_start(days[i - 1]):
            for request in requests(weekly_requests(TICKER, monday)):
                run(request)
        for request in requests(session_requests(TICKER, day)):
            run(request)
        asked, cursor, _ = evaluate_drift(TICKER, instance, cursor, store)
        # Retrains after a study are the next session run's first step; studies run now.
        studies = [r for r in asked if r.tags.get("zdte/slot") == "reoptimization"]
        for request in studies:
            run(request)
            reoptimized.append(dt.date.fromisoformat(request.tags["zdte/drift_day"]))
        if studies:
            _, cursor, _ = evaluate_drift(TICKER, instance, cursor, store)
    return reoptimized


@pytest.fixture(scope="module")
def whole_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WholePath]:
    home = tmp_path_factory.mktemp("whole-path")
    bars = synthetic.synthetic_bars(
        "signal_regime",
        HISTORY + SESSIONS,
        seed=SEED,
        signal=SIGNAL,
        regime_at=HISTORY + REGIME_AT,
        regime_factor=REGIME_FACTOR,
    )
    path = home / "bars.csv"
    bars.drop("adj_close").write_csv(path)
    all_days = bars["date"].to_list()
    days = all_days[HISTORY:]
    # A home of its own: the registry's champion and the instance's events are this test's.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZDTE_HOME", str(home / "zdte"))
        mp.setenv("DAGSTER_HOME", str(home / "zdte" / "dagster"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("ZDTE_OPTUNA_STORAGE", raising=False)
        store_dir = home / "storage"
        defs = build_definitions(
            tickers=[TICKER],
            source_kind="file",
            source_path=str(path),
            storage_url=str(store_dir),
            start=all_days[0],
        )
        instance = local_instance()
        # What was known before the first session: bars, opens and feature rows.
        before = all_days[HISTORY - 1].isoformat()
        keys = [f"{TICKER}/daily_bar", f"{TICKER}/session_open"]
        materialize_range(defs, keys, all_days[0].isoformat(), before, instance)
        first_features = all_days[LOOKBACK].isoformat()
        materialize_range(defs, [f"{TICKER}/features"], first_features, before, instance)
        reoptimized = walk(defs, instance, storage.store_from_url(str(store_dir)), days)
        yield WholePath(
            bars=bars,
            days=days,
            store=storage.store_from_url(str(store_dir)),
            instance=instance,
            reoptimized=reoptimized,
        )


def test_every_session_was_walked(whole_path: WholePath) -> None:
    predicted = {r.partition_key for r in whole_path.materializations("prediction")}
    assert predicted == {d.isoformat() for d in whole_path.days}


def test_the_weekly_study_beats_naive_but_not_the_oracle(whole_path: WholePath) -> None:
    weeks = sorted({r.partition_key or "" for r in whole_path.materializations("tuned_params")})
    regime_day = whole_path.days[REGIME_AT]
    versions = [
        v
        for week in weeks
        for v in whole_path.read("tuned_params", week)["versions"]
        if dt.date.fromisoformat(v["as_of"]) < regime_day  # the planted signal, one regime
    ]
    assert len(versions) >= SESSIONS // 5 // 2
    oracle = math.sqrt(1.0 - SIGNAL**2)
    ratios = sorted(v["rmse_ratio"] for v in versions)
    median = ratios[len(ratios) // 2]
    # Below naive, and not below the oracle by more than the sampling error of 40 rows
    # (a relative standard error of about 1 / sqrt(2 * 40) = 11% on an RMSE).
    assert oracle * (1 - 3 / math.sqrt(80)) < median < 1.0, (oracle, ratios)
    # "Beats naive" also asks for more hits than the majority sign; a persistent AR(1) makes
    # long runs of one sign, so that bar is high on 40 rows, and not every study clears it.
    beating = [v for v in versions if v["beats_naive"]]
    assert any(v["trigger"] == "schedule" for v in beating), [
        (v["as_of"], v["trigger"], v["rmse_ratio"], v["accuracy"], v["base_rate"]) for v in versions
    ]
    for v in beating:
        assert v["rmse"] < v["naive_rmse"]
        assert v["accuracy"] > max(v["base_rate"], 1 - v["base_rate"])


def _intrinsic(option: str, strike: float, close: float) -> float:
    assert option in ("call", "put"), option
    return max(close - strike, 0.0) if option == "call" else max(strike - close, 0.0)


def _trades(whole_path: WholePath) -> list[dict[str, Any]]:
    outcomes = [whole_path.read("prediction_outcome", d.isoformat()) for d in whole_path.days]
    return [o for o in outcomes if o["action"] != "NO_TRADE"]


def test_the_gate_weighs_the_platforms_own_forecasts_and_trades_settle_at_the_close(
    whole_path: WholePath,
) -> None:
    closes = dict(zip(whole_path.bars["date"].to_list(), whole_path.bars["close"], strict=True))
    window = DecisionConfig().gate_window
    outcome_meta = {
        r.partition_key: r.asset_materialization.metadata
        for r in whole_path.materializations("prediction_outcome")
        if r.asset_materialization is not None
    }
    for i, day in enumerate(whole_path.days):
        prediction = whole_path.read("prediction", day.isoformat())
        outcome = whole_path.read("prediction_outcome", day.isoformat())
        gate = prediction["gate"]
        # The evidence is one recorded outcome per walked session before the day, no more.
        assert gate["n"] == min(i, window), (day, gate)
        if i < GATE_MIN_DAYS:
            assert (gate["open"], gate["code"]) == (False, "too_few_days"), (day, gate)
        # The instance shows the stored P&L, to the cent, on the outcome's materialization.
        assert outcome_meta[day.isoformat()]["pnl_usd"].value == metadata.price(outcome["pnl_usd"])
        if prediction["action"] == "NO_TRADE":
            assert outcome["pnl_usd"] == 0.0
            continue
        assert gate["open"]
        assert outcome["action"] == prediction["action"] in ("CALL", "PUT")
        assert outcome["close"] == pytest.approx(closes[day], rel=1e-12)
        decision = prediction["decision"]
        assert decision["contracts"] > 0
        paid = decision["cost_per_share"]
        expected = (_intrinsic(decision["option"], decision["strike"], closes[day]) - paid) * (
            decision["config"]["contract_multiplier"] * decision["contracts"]
        )
        assert outcome["pnl_usd"] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_trades_happen(whole_path: WholePath) -> None:
    trades = _trades(whole_path)
    assert trades, "no trade in the whole walk"
    assert any(t["pnl_usd"] != 0.0 for t in trades)
    for trade in trades:
        # Never a trade without an edge: the forecast's expected payoff beat what it cost.
        decision = whole_path.read("prediction", trade["date"])["decision"]
        assert decision["expected_value"] > 0, (trade["date"], decision)


def test_a_drift_trigger_fires_after_the_regime_change_and_reoptimizes(
    whole_path: WholePath,
) -> None:
    config = MONITORING_CONFIG
    # A firing just before the change may hold the cooldown over it; after that, the 3-session
    # RMSE holds REGIME_FACTOR-times larger errors within `rmse_window` sessions.
    horizon = whole_path.days[REGIME_AT : REGIME_AT + config.cooldown_days + config.rmse_window + 1]
    fired: dict[dt.date, list[str]] = {}
    for record in whole_path.materializations("drift_report"):
        day = dt.date.fromisoformat(record.partition_key or "")
        report = whole_path.read("drift_report", day.isoformat())
        assert report["config"] == config.to_dict()  # the default settings, nothing overridden
        meta = record.asset_materialization
        assert meta is not None
        assert meta.metadata["fired_triggers"].value == (", ".join(report["fired"]) or "none")
        if report["fired"]:
            fired[day] = report["fired"]
    assert config.rmse_ratio_threshold < REGIME_FACTOR
    after = [d for d in horizon if d in fired]
    assert after, f"nothing fired in {horizon[0]}..{horizon[-1]}; fired: {sorted(fired)}"
    assert any("rmse_ratio" in fired[d] for d in after), {d: fired[d] for d in after}

    reopt_days = whole_path.reoptimized
    assert any(d in horizon for d in reopt_days), (reopt_days, horizon)
    # Each re-optimization left a study version with data through its drift day.
    for day in reopt_days:
        assert day in fired
        weeks = {r.partition_key or "" for r in whole_path.materializations("tuned_params")}
        as_ofs = {
            v["as_of"]: v["trigger"]
            for week in weeks
            for v in whole_path.read("tuned_params", week)["versions"]
        }
        assert as_ofs.get(day.isoformat(), "schedule") != "schedule", day


def test_the_used_version_of_a_beating_study_is_champion(whole_path: WholePath) -> None:
    from mlflow import MlflowClient

    from zdte_assets.core import config
    from zdte_assets.orchestration.tracking import registered_model_name

    used = {day: whole_path.read("daily_model", day.isoformat()) for day in whole_path.days}
    beating = [day for day, model in used.items() if model["beats_naive"]]
    assert beating, "no morning used a model whose study beat naive"
    # The rule: the newest morning's version among those whose study beat naive.
    expected = used[max(beating)]
    uri = config.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias(registered_model_name(TICKER), "champion")
    assert str(champion.version) == str(expected["model_version"])
    assert champion.tags["day"] == max(beating).isoformat()
    promoted = {
        dt.date.fromisoformat(r.partition_key or "")
        for r in whole_path.materializations("prediction")
        if r.asset_materialization is not None
        and r.asset_materialization.metadata["promoted_to_champion"].value
    }
    assert max(beating) in promoted
    assert promoted <= set(beating)
