"""The `dg` commands on this project, run as a person runs them from the repository root: they load
the same code location as `dagster dev -m zdte_assets.definitions` (pyproject's [tool.dg]) and
see every ticker's jobs, schedules and sensors under the names `jobs` builds, with no deprecation
warning raised by our definitions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zdte_assets.orchestration.jobs import (
    JOB_SLOTS,
    SESSION_ASSETS,
    SLOT_ASSETS,
    asset_key,
    job_name,
    schedule_name,
    sensor_name,
)
from zdte_assets.orchestration.schedules import SLOTS

ROOT = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).parent / "dg"
TICKERS = ("AAPL", "SPY")


def dg(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`dg ARGS` from the repository root, with a scratch instance (the root's dagster.yaml is
    the production instance's, whose Postgres is not there) and this checkout's code first."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
        "ZDTE_TICKERS": ",".join(TICKERS),
        # Every deprecation shown, wherever it comes from, so one from our code cannot hide.
        "PYTHONWARNINGS": "always::DeprecationWarning",
    }
    return subprocess.run(
        [str(DG), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def our_deprecations(stderr: str) -> list[str]:
    """Deprecation warnings whose location is a module of this project."""
    return [
        line
        for line in stderr.splitlines()
        if "Deprecat" in line and f"{os.sep}zdte_assets{os.sep}" in line
    ]


@pytest.mark.skipif(not DG.exists(), reason="dagster-dg-cli is not installed in this environment")
def test_dg_lists_and_checks_the_code_location(tmp_path: Path) -> None:
    listed = dg("list", "defs", "--json", home=tmp_path)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert our_deprecations(listed.stderr) == []
    defs = json.loads(listed.stdout)

    assert {j["name"] for j in defs["jobs"]} == {
        job_name(t, slot) for t in TICKERS for slot in JOB_SLOTS
    }
    assert {s["name"] for s in defs["schedules"]} == {
        schedule_name(t, slot) for t in TICKERS for slot in SLOTS
    }
    assert {s["name"] for s in defs["sensors"]} == {sensor_name(t) for t in TICKERS} | {
        "run_watchdog"
    }
    names = {a for slot in SLOT_ASSETS.values() for a in slot} | set(SESSION_ASSETS)
    assert {tuple(a["asset_key_parts"]) for a in defs["assets"]} == {
        tuple(asset_key(t, a).path) for t in TICKERS for a in names
    }

    checked = dg("check", "defs", home=tmp_path)
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert our_deprecations(checked.stderr) == []
