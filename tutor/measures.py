"""Figures from measured times: the one percentile of the stats page and every benchmark."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], share: float, *, digits: int | None = 1) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `share` of the values
    at or below it (share=0.95 for p95). None for no values; rounded to `digits`."""
    ordered = sorted(values)
    if not ordered:
        return None
    value = ordered[max(0, math.ceil(share * len(ordered)) - 1)]
    return value if digits is None else round(value, digits)
