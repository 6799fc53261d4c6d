"""Lenient readers for optional values inside free-form objects (context, properties)."""

from __future__ import annotations

import math
from typing import Any

MAX_TEXT = 2048


def text(value: Any) -> str | None:
    """A short string from a str or number; None for anything else or empty."""
    if isinstance(value, str):  # first: what it is nearly always
        return value[:MAX_TEXT] or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def number(*values: Any) -> float | None:
    """The first finite number among values (booleans are not numbers)."""
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None
