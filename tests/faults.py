"""The child side of the fault-injection tests: run a move and SIGKILL this very process
when it reaches a named point.

The points are reached through the pipeline's own functions, wrapped here in the child
only (production code carries no hook): the kill is a real ``SIGKILL`` of a process
holding an open target transaction, as a crashed worker or an OOM kill would leave it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from poco_migration.moves import MOVES, landing, pipeline
from poco_migration.moves.move import Move
from poco_migration.moves.pipeline import run_move
from poco_migration.moves.types import MoveRequest
from poco_migration.plan import Plan

# Small chunks, so that rows streamed through Python land in several chunks and "mid-extract" exists.
CHILD_CHUNK_ROWS = 7
POINTS = ("extract", "staging", "merge-start", "merge-end", "gate", "record")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(function: Callable[..., Any], nth: int = 1) -> Callable[..., Any]:
    """``function`` that kills the process right after its ``nth`` call returns."""
    calls = 0

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = function(*args, **kwargs)
        calls += 1
        if calls == nth:
            die()
        return result

    return wrapped


def _before(function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        die()
        return function(*args, **kwargs)

    return wrapped


def _landing_after(nth: int) -> None:
    """Kill once ``nth`` source rows have landed: rows streamed through Python land a chunk at
    a time; rows piped PostgreSQL to PostgreSQL land in one COPY, killed once it is done."""
    insert_rows, landed = landing.insert_rows, 0

    def counting(conn: Any, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        nonlocal landed
        insert_rows(conn, table, rows)
        landed += len(rows) if table.name.startswith("poco_migration_land_") and "folds" not in table.name else 0
        if landed >= nth:
            die()

    landing.insert_rows = counting
    landing.pipe = _after(landing.pipe)


def arm(move: Move, point: str, nth: int) -> None:
    """Make this process kill itself at ``point`` of the next move (``nth`` landed row)."""
    landing.CHUNK_ROWS = CHILD_CHUNK_ROWS
    if point == "extract":
        _landing_after(nth)
    elif point == "staging":
        # Right after the one INSERT ... SELECT that judges the landed rows into the stage.
        landing.Landing.latest = _before(landing.Landing.latest)
    elif point == "merge-start":
        move.record_quarantine = _after(move.record_quarantine)
    elif point == "merge-end":
        move.note_moved = _before(move.note_moved)
    elif point == "gate":
        pipeline.write_totals = _after(pipeline.write_totals)
    elif point == "record":
        pipeline.record = _after(pipeline.record)
    else:
        raise ValueError(f"unknown fault point {point!r}; expected one of {POINTS}")


def killed_move(source_url: str, target_url: str, domain: str, plan: Plan, as_of: dt.datetime, point: str, nth: int):
    """The child process: arm the point, run the move; returning at all means the point was never reached."""
    os.environ["POCO_MIGRATION_DATA_DOCS"] = "off"
    move = MOVES[domain]
    arm(move, point, nth)
    source = sa.create_engine(source_url)
    run_move(move, MoveRequest(domain, "IT", plan, as_of), source, sa.make_url(target_url))
