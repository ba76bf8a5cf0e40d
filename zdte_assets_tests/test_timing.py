"""The replay's time accounting: nested parts are exclusive, so nothing is counted twice.

The accounting is checked against a clock the test advances by hand, so the figures are exact
and no sleep or machine load can make the test pass or fail; how long things take on a real
machine is measured by the benchmarks, not here.
"""

from __future__ import annotations

import types

import pytest

from zdte_assets.core import timing


class Clock:
    """A `perf_counter` that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    # Only the timing module's view of the clock; the rest of the process keeps the real one.
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=fake))
    return fake


def test_nested_parts_pause_their_parent_and_add_up_to_the_wall_time(clock: Clock) -> None:
    before = timing.snapshot()
    start = clock()
    with timing.part("test-outer"):
        clock.advance(0.05)
        with timing.part("test-inner"):
            clock.advance(0.1)
        clock.advance(0.25)
    wall = clock() - start
    timing.count("test-events", 2)
    parts, counts = timing.since(before)
    assert parts["test-inner"] == pytest.approx(0.1)
    assert parts["test-outer"] == pytest.approx(0.05 + 0.25)
    assert parts["test-outer"] + parts["test-inner"] == pytest.approx(wall)
    assert counts == {"test-events": 2}


def test_a_part_entered_again_adds_up_and_an_exception_still_counts(clock: Clock) -> None:
    before = timing.snapshot()
    for seconds in (0.5, 0.25):
        with timing.part("test-repeated"):
            clock.advance(seconds)
    with pytest.raises(RuntimeError), timing.part("test-failing"):
        clock.advance(2.0)
        raise RuntimeError("the block failed")
    parts, counts = timing.since(before)
    assert parts == {"test-repeated": pytest.approx(0.75), "test-failing": pytest.approx(2.0)}
    assert counts == {}


def test_since_reports_only_what_was_added(clock: Clock) -> None:
    with timing.part("test-earlier"):
        clock.advance(3.0)
    timing.count("test-earlier-events")
    before = timing.snapshot()
    with timing.part("test-later"):
        clock.advance(1.0)
    parts, counts = timing.since(before)
    assert parts == {"test-later": pytest.approx(1.0)}
    assert counts == {}
