"""The replay's time accounting: nested parts are exclusive, so nothing is counted twice."""

from __future__ import annotations

import time

from zdte_assets.core import timing


def test_nested_parts_pause_their_parent_and_add_up_to_the_wall_time() -> None:
    before = timing.snapshot()
    start = time.perf_counter()
    with timing.part("test-outer"):
        time.sleep(0.05)
        with timing.part("test-inner"):
            time.sleep(0.1)
        time.sleep(0.05)
    wall = time.perf_counter() - start
    timing.count("test-events", 2)
    parts, counts = timing.since(before)
    assert 0.1 <= parts["test-inner"] < 0.1 + 0.05
    assert 0.1 <= parts["test-outer"] < parts["test-inner"] + 0.1
    assert abs(parts["test-outer"] + parts["test-inner"] - wall) < 0.01
    assert counts == {"test-events": 2}
