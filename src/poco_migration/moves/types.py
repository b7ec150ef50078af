"""What a move is asked (``MoveRequest``), what it answers (``MoveResult``), and how it fails."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from poco_migration.gates import CheckpointOutcome
from poco_migration.plan import Plan


@dataclass(frozen=True)
class TaskOrigin:
    """The Airflow task instance a move runs in, recorded with the move so that the dashboard
    links each market's domain to its run and its log."""

    dag_id: str
    task_id: str
    map_index: int = -1


@dataclass(frozen=True)
class MoveRequest:
    domain: str
    market: str
    plan: Plan
    as_of: dt.datetime
    run_id: str | None = None
    full: bool = False
    dry_run: bool = False
    origin: TaskOrigin | None = None


@dataclass
class MoveResult:
    move_id: str
    domain: str
    market: str
    status: str
    staged: int = 0
    changes: dict[str, int] = field(default_factory=dict)
    checkpoints: list[CheckpointOutcome] = field(default_factory=list)
    message: str = ""

    @property
    def failed_gate(self) -> CheckpointOutcome | None:
        return next((c for c in self.checkpoints if not c.success), None)


class GateFailed(RuntimeError):
    """A checkpoint refused a move; nothing of it was written to the Xiaomi tables."""

    def __init__(self, result: MoveResult) -> None:
        self.result = result
        super().__init__(result.message)


class MoveError(RuntimeError):
    """A move that cannot run at all: a missing table, a bad column, no database."""
