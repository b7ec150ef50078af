"""Participants: who joined which initiative, after the initiatives have moved.

A participant follows its initiative: it moves under the initiative's Xiaomi id,
and is an ``orphan`` when the initiative does not exist, is out of scope or is
quarantined. A participant of an initiative that should have moved but has not
(its own move failed its gate) is not an orphan: it *waits*, staged neither to
move nor to quarantine, and the move stops with a message once the rows that do
not depend on that initiative (its unlinked participants, the orphans of other
initiatives) are quarantined.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from poco_migration import schemas
from poco_migration.moves.initiatives import IN_SCOPE, initiative_ref
from poco_migration.moves.move import Move
from poco_migration.moves.rules import UNLINKED, Rule, first_reason, kept, out_of_range
from poco_migration.moves.sql import market_expr
from poco_migration.moves.types import MoveRequest
from poco_migration.refs import ref_ids, source_ref

STATUSES = ("joined", "winner", "withdrawn")

# The reasons judged before the initiative: final even while the initiative waits.
BEFORE_INITIATIVE = (UNLINKED,)
RULES = (
    *BEFORE_INITIATIVE,
    Rule("orphan", lambda row: row["mi_initiative_id"] is None),
    Rule("invalid_status", lambda row: row["status"] not in STATUSES),
    out_of_range("reward_points"),
)

participants, initiatives, users = schemas.poco_initiative_participants, schemas.poco_initiatives, schemas.poco_users
KEPT = ("joined_at", "reward_points", "status")


class ParticipantsMove(Move):
    domain = "participants"
    stage = schemas.stage_participants
    target = schemas.mi_initiative_participants
    content = ("initiative_id", "mi_account_id", *KEPT)
    keys = (participants.c.initiative_id, participants.c.user_id)
    changed_at = (participants.c.updated_at, users.c.updated_at, initiatives.c.updated_at)
    change_columns = ("updated_at", "user_updated_at", "initiative_updated_at")

    def _source(self, req: MoveRequest) -> sa.Select:
        market = sa.case(
            (initiatives.c.initiative_id.is_not(None), market_expr(initiatives.c.market, req.plan)),
            else_=market_expr(users.c.market, req.plan),
        )
        return (
            sa.select(
                participants,
                users.c.mi_account_id,
                users.c.updated_at.label("user_updated_at"),
                initiatives.c.initiative_id.label("known_initiative"),
                initiatives.c.status.label("initiative_status"),
                initiatives.c.updated_at.label("initiative_updated_at"),
            )
            .select_from(
                participants.outerjoin(users, users.c.user_id == participants.c.user_id).outerjoin(
                    initiatives, initiatives.c.initiative_id == participants.c.initiative_id
                )
            )
            .where(market == req.market)
            .order_by(participants.c.initiative_id, participants.c.user_id)
        )

    def stage_rows(self, rows: Iterable[Mapping[str, Any]], req: MoveRequest, conn: Connection) -> Iterator[dict]:
        t, q = schemas.mi_initiatives, schemas.quarantine
        moved = {ref: mi_id for ref, mi_id in conn.execute(sa.select(t.c.source_ref, t.c.initiative_id))}
        quarantined: set[str] = set(
            conn.execute(sa.select(q.c.source_ref).where(q.c.domain == "initiatives")).scalars()
        )
        for row in rows:
            ref = initiative_ref(row["initiative_id"])
            waits = ref not in moved and ref not in quarantined and row["initiative_status"] in IN_SCOPE
            if waits:
                reason = first_reason(BEFORE_INITIATIVE, row)
            else:
                reason = first_reason(RULES, {**row, "mi_initiative_id": moved.get(ref)})
            yield {
                "source_ref": source_ref(self.domain, row["initiative_id"], row["user_id"]),
                "reason": reason,
                # A waiting row is neither written nor quarantined: see ``waiting``.
                "insertable": not waits or reason is not None,
                "initiative_id": moved.get(ref),
                "mi_account_id": row["mi_account_id"],
                **kept(row, KEPT, reason),
            }

    def waiting(self, conn: Connection, req: MoveRequest) -> str | None:
        """Every participant is in scope, so a staged row that is valid but not insertable is
        one whose initiative is in scope and has not moved yet."""
        s = self.stage.c
        refs: Iterable[str] = conn.execute(
            sa.select(s.source_ref).where(self.batch(req), s.reason.is_(None), ~s.insertable).order_by(s.source_ref)
        ).scalars()
        waiting = sorted({ref_ids(ref)[0] for ref in refs})
        if not waiting:
            return None
        named = ", ".join(initiative_ref(i) for i in waiting[:10]) + (", ..." if len(waiting) > 10 else "")
        return (
            f"participants {req.market}: {len(waiting)} initiatives are in scope but have not moved yet ({named}); "
            f"their participants wait (the rest of the quarantine is recorded): run the initiatives move of "
            f"{req.market} first (did its gate fail?)"
        )


MOVE = ParticipantsMove()
