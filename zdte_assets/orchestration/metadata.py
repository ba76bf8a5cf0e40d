"""Numbers as the Dagster UI shows and plots them: rounded, never -0.0, never NaN.

Every per-session asset attaches its key figures as float metadata, which the UI plots across
partitions (an asset's "Plots" in partition mode). The figures pass through `number` (six
significant digits: returns, probabilities, statistics) or `price` (cents), so the UI never shows
fourteen decimals and a series reads the same as the stored record rounded. Undefined values
(None, NaN, infinities) are left out rather than shown as blanks; readers read the record, never
this metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: Significant digits of a figure that is not a price.
SIGNIFICANT_DIGITS = 6
#: Decimals of a price or an amount in USD (cents).
PRICE_DECIMALS = 2


def _finite(value: float | int | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def number(value: float | int | None, digits: int = SIGNIFICANT_DIGITS) -> float | None:
    """`value` to `digits` significant digits (0.0 for -0.0); None when undefined."""
    x = _finite(value)
    if x is None:
        return None
    return float(f"{x:.{digits}g}") + 0.0  # + 0.0 turns -0.0 into 0.0


def price(value: float | int | None) -> float | None:
    """A price or an amount in USD, to the cent (0.0 for -0.0); None when undefined."""
    x = _finite(value)
    if x is None:
        return None
    return round(x, PRICE_DECIMALS) + 0.0


def numbers(values: Mapping[str, float | int | None]) -> dict[str, float]:
    """`number` of each value, without the undefined ones."""
    out = {k: number(v) for k, v in values.items()}
    return {k: v for k, v in out.items() if v is not None}


def prices(values: Mapping[str, float | int | None]) -> dict[str, float]:
    """`price` of each value, without the undefined ones."""
    out = {k: price(v) for k, v in values.items()}
    return {k: v for k, v in out.items() if v is not None}
