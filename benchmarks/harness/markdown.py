"""Small markdown helpers for the sections' tables: number formatting, tables, ratios."""

from __future__ import annotations

import math
from collections import Counter


def fmt(value, digits: int = 3) -> str:
    """Numbers with ``digits`` significant digits; booleans as yes/**no**; None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) >= 10 ** (digits + 3) or abs(value) < 1e-3:
            return f"{value:.{digits - 1}e}"
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
        return f"{value:,.{decimals}f}"
    return str(value)


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table; cells go through :func:`fmt`."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(numerator, denominator) -> float | None:
    """``numerator / denominator``, or None when either is missing or the denominator is 0."""
    if not isinstance(numerator, int | float) or not isinstance(denominator, int | float):
        return None
    return numerator / denominator if denominator else None


def failed(result) -> str | None:
    """The error or skip message of a child result, else None."""
    if not isinstance(result, dict):
        return "missing"
    return result.get("error") or result.get("skipped")


def warnings_summary(rows: list[dict]) -> str:
    """``"none"`` or e.g. ``"2: ConvergenceWarning ×2 (at base.py)"``."""
    if not rows:
        return "none"
    kinds = Counter(w["category"] for w in rows)
    files = sorted({w["file"] for w in rows})
    text = ", ".join(f"{k} ×{n}" for k, n in kinds.items())
    return f"{len(rows)}: {text} (at {', '.join(files)})"


def median(values: list) -> float | None:
    values = [v for v in values if isinstance(v, int | float)]
    if not values:
        return None
    values = sorted(values)
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
