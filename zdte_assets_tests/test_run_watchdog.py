"""The run watchdog's liveness rule on real processes (the sensor itself is exercised on the
real stack: a killed run worker, in test_stack_faults.py)."""

from __future__ import annotations

import subprocess
import time

from zdte_assets.orchestration.run_watchdog import worker_alive


def test_a_running_worker_is_alive_and_a_killed_one_is_not() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.1)
        assert worker_alive(proc.pid, time.time())
        proc.kill()
        # Not yet reaped: a zombie is no worker.
        time.sleep(0.2)
        assert not worker_alive(proc.pid, time.time())
    finally:
        proc.kill()
        proc.wait()
    assert not worker_alive(proc.pid, time.time())


def test_a_process_started_after_the_worker_reported_is_another_process() -> None:
    reported = time.time()
    time.sleep(1.5)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert worker_alive(proc.pid, time.time())
        # Same id, but started after the event: the worker's id was reused.
        assert not worker_alive(proc.pid, reported)
    finally:
        proc.kill()
        proc.wait()
