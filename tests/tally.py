"""What the robustness tests observed, counted over the session for the one-line summary.

The fault-injection, hostile-input and leak tests record here what they saw (a
trial run, a fault that really killed a process, a row lost, a duplicate, a leak);
``conftest.pytest_terminal_summary`` prints the totals, so that the line reports
observations and never a constant.
"""

from __future__ import annotations

from collections import Counter

FIELDS = ("trials", "faults injected", "hostile cases", "rows lost", "duplicates", "leaks found")
TALLY: Counter[str] = Counter()


def record(field: str, n: int = 1) -> None:
    """Add ``n`` observations to ``field`` (one of ``FIELDS``)."""
    if field not in FIELDS:
        raise KeyError(f"unknown tally field {field!r}; expected one of {FIELDS}")
    TALLY[field] += n


def summary() -> str:
    return "robustness: " + ", ".join(f"{field} {TALLY[field]}" for field in FIELDS)
