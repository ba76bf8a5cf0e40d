"""The re-optimization cooldown: after a firing, the next few sessions cannot fire again.

A re-optimization takes time to show in the errors, and the rules look back over windows that
still contain the bad days, so without a cooldown one episode would fire day after day. One
rule serves the drift sensor (``in_cooldown``, from the day of the last firing), the
day-by-day sequences (``apply_cooldown``) and the false-alarm simulation (``cooldown_rows``), so
the documented rates are the rates of what the sensor does.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from numpy.typing import ArrayLike, NDArray

from zdte_assets.core import calendar


def sessions_between(earlier: dt.date, later: dt.date) -> int:
    """Trading sessions after ``earlier`` up to and including ``later``."""
    return len(calendar.trading_days(earlier + dt.timedelta(days=1), later))


def cooldown_active(days_since_last_firing: int | None, cooldown_days: int) -> bool:
    """Whether a firing now would be suppressed.

    ``days_since_last_firing`` counts trading days (1 = the previous session); None means
    never fired. The same rule as ``apply_cooldown``: a firing on day t blocks t+1 .. t+c.
    """
    return days_since_last_firing is not None and days_since_last_firing <= cooldown_days


def in_cooldown(day: dt.date, last_fired: dt.date | None, cooldown_days: int) -> bool:
    """Whether a firing on trading day ``day`` is held back by the one on ``last_fired``."""
    since = None if last_fired is None else sessions_between(last_fired, day)
    return cooldown_active(since, cooldown_days)


def cooldown_rows(fired: NDArray[np.bool_], cooldown_days: int) -> NDArray[np.bool_]:
    """``apply_cooldown`` for each row of a (paths, days) array of raw verdicts."""
    f = np.asarray(fired, dtype=bool)
    out = np.zeros(f.shape, dtype=bool)
    last = np.full(f.shape[0], -(10**9), dtype=np.int64)
    for j in range(f.shape[1]):
        ok = f[:, j] & ~cooldown_active_array(j - last, cooldown_days)
        out[:, j] = ok
        last = np.where(ok, j, last)
    return out


def cooldown_active_array(days_since: NDArray[np.int64], cooldown_days: int) -> NDArray[np.bool_]:
    """``cooldown_active`` for an array of sessions since the last firing (all have fired)."""
    return np.asarray(days_since <= cooldown_days, dtype=bool)


def apply_cooldown(fired: ArrayLike, cooldown_days: int) -> NDArray[np.bool_]:
    """Firings that survive a cooldown, for a day-by-day sequence of raw verdicts."""
    f = np.asarray(fired, dtype=bool).ravel()
    if cooldown_days < 0:
        raise ValueError("cooldown_days must be >= 0")
    out: NDArray[np.bool_] = cooldown_rows(f[None, :], cooldown_days)[0]
    return out
