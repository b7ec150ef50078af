"""Which alerts go out, from the log of those sent (``poco_migration_alerts`` in the target).

A market whose source stays bad is refused by the same gate every day until someone fixes
it: one alert says so, and the next days' identical refusals are not sent again (with
``POCO_MIGRATION_ALERT_REMINDER_HOURS`` set, a reminder goes at most that often). The
refusal stays open until the market's domain moves again, which sends one "resolved"
message. A refusal of another stage or by other expectations is new and goes at once, and
so does every other failure: only identical refusals are held back.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from poco_migration import schemas
from poco_migration.gates import CheckpointOutcome

REFUSED, REMINDER, RESOLVED, FAILED, LATE = "refused", "reminder", "resolved", "failed", "late"
REMINDER_ENV = "POCO_MIGRATION_ALERT_REMINDER_HOURS"


@dataclass(frozen=True)
class Refusal:
    """A gate's refusal of one market's domain: what an on-call engineer must fix."""

    market: str
    domain: str
    stage: str
    expectations: tuple[str, ...]

    @classmethod
    def of(cls, market: str, domain: str, checkpoint: CheckpointOutcome) -> Refusal:
        """Keyed by the expectations that failed, not by what they observed: a count of bad
        rows that changes from one day to the next is still the same refusal."""
        failed = {f"{f.suite}:{f.expectation}" + (f"({f.column})" if f.column else "") for f in checkpoint.failures}
        return cls(market, domain, checkpoint.stage, tuple(sorted(failed)))

    @property
    def key(self) -> str:
        return f"{REFUSED}:{self.market}/{self.domain}/{self.stage}:{','.join(self.expectations)}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def reminder_interval() -> dt.timedelta | None:
    hours = os.environ.get(REMINDER_ENV)
    return dt.timedelta(hours=float(hours)) if hours else None


@dataclass(frozen=True)
class OpenRefusal:
    """A refusal alerted and not resolved since: the dashboard lists them."""

    key: str
    market: str
    domain: str
    stage: str
    opened_at: dt.datetime
    last_sent_at: dt.datetime
    run_id: str | None


def open_refusals(conn: Connection) -> list[OpenRefusal]:
    """Every refusal whose latest alert is not a resolution, oldest first."""
    a = schemas.alerts
    if not sa.inspect(conn).has_table(a.name):  # a target made before the alert log existed
        return []
    query = sa.select(a).where(a.c.kind.in_((REFUSED, REMINDER, RESOLVED))).order_by(a.c.id)
    opened: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for row in conn.execute(query):
        if row.kind == REFUSED:
            opened.setdefault(row.key, row)
        elif row.kind == RESOLVED:
            opened.pop(row.key, None)
        last[row.key] = row
    return [
        OpenRefusal(key, row.market, row.domain, row.stage, row.sent_at, last[key].sent_at, row.run_id)
        for key, row in opened.items()
    ]


def to_announce(conn: Connection, refusals: list[Refusal], at: dt.datetime) -> list[tuple[Refusal, str]]:
    """The refusals to send now and as what: new ones as refused, open ones as a reminder
    once the interval has passed since their last alert; the rest not at all."""
    opened, every = {o.key: o for o in open_refusals(conn)}, reminder_interval()
    out = []
    for refusal in refusals:
        if refusal.key not in opened:
            out.append((refusal, REFUSED))
        elif every is not None and at - opened[refusal.key].last_sent_at >= every:
            out.append((refusal, REMINDER))
    return out


def resolved_by(conn: Connection, market: str, domain: str) -> list[OpenRefusal]:
    """The open refusals of a market's domain, which a move that passed has just resolved."""
    return [o for o in open_refusals(conn) if (o.market, o.domain) == (market, domain)]


def record(conn: Connection, body: dict[str, Any], at: dt.datetime) -> None:
    """One row per alert sent, with what it was about."""
    columns = ("key", "kind", "market", "domain", "stage", "dag_id", "run_id", "text")
    conn.execute(schemas.alerts.insert().values(**{c: body.get(c) for c in columns}, sent_at=at))


def sent(conn: Connection) -> int:
    a = schemas.alerts
    if not sa.inspect(conn).has_table(a.name):
        return 0
    return int(conn.execute(sa.select(sa.func.count()).select_from(a)).scalar_one())
