"""Where a process spends its wall time, by part: the replay's "where the time went".

Code wraps its pieces in ``part("mlflow")``, ``part("studies")`` and so on; nested parts pause
their parent, so every second is counted once, under the innermost part. What no part covers
(Dagster's own machinery around the assets) is the remainder the caller computes. Written by
hand because profilers sample rather than attribute, and the replay wants an exact,
always-on split at a cost of two clock reads per part.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

_totals: defaultdict[str, float] = defaultdict(float)
_counts: defaultdict[str, int] = defaultdict(int)
_local = threading.local()


@dataclass
class _Frame:
    name: str
    since: float


def _stack() -> list[_Frame]:
    stack: list[_Frame] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = []
        _local.stack = stack
    return stack


@contextlib.contextmanager
def part(name: str) -> Iterator[None]:
    """Count the wall time of the block under `name` (exclusive of nested parts)."""
    stack = _stack()
    now = time.perf_counter()
    if stack:
        _totals[stack[-1].name] += now - stack[-1].since
    stack.append(_Frame(name, now))
    try:
        yield
    finally:
        end = time.perf_counter()
        _totals[name] += end - stack.pop().since
        if stack:
            stack[-1].since = end


def count(name: str, n: int = 1) -> None:
    """Count an event (a reused study, a cached model) next to the times."""
    _counts[name] += n


def snapshot() -> tuple[dict[str, float], dict[str, int]]:
    """Seconds by part and event counts so far (copies)."""
    return dict(_totals), dict(_counts)


def since(
    before: tuple[dict[str, float], dict[str, int]],
) -> tuple[dict[str, float], dict[str, int]]:
    """What was added after `before` (a `snapshot()`)."""
    times, counts = snapshot()
    return (
        {k: v - before[0].get(k, 0.0) for k, v in times.items() if v - before[0].get(k, 0.0) > 0},
        {k: v - before[1].get(k, 0) for k, v in counts.items() if v - before[1].get(k, 0) > 0},
    )


def peak_rss_mib() -> float:
    """This process's peak resident memory (the kernel's high-water mark of its own address
    space; unlike `getrusage`, it does not include what a spawned worker inherited from its
    parent before `exec`). 0.0 where /proc is not available."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
