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

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from poco_migration import schemas
from poco_migration.moves.initiatives import IN_SCOPE, initiative_ref
from poco_migration.moves.landing import SEQ, Landing
from poco_migration.moves.move import Move
from poco_migration.moves.rules import UNLINKED, Rule, first_reason, kept, not_in, out_of_range
from poco_migration.moves.sql import market_expr
from poco_migration.moves.types import MoveRequest
from poco_migration.refs import ref_ids, ref_sql

STATUSES = ("joined", "winner", "withdrawn")

# The reasons judged before the initiative: final even while the initiative waits.
BEFORE_INITIATIVE = (UNLINKED,)
# "mi_initiative_id" is the Xiaomi id of the initiative, where it moved (``ParticipantsMove.judge``).
RULES = (
    *BEFORE_INITIATIVE,
    Rule("orphan", lambda row: row["mi_initiative_id"].is_(None)),
    Rule("invalid_status", lambda row: not_in(row["status"], STATUSES)),
    out_of_range("reward_points"),
)

participants, initiatives, users = schemas.poco_initiative_participants, schemas.poco_initiatives, schemas.poco_users
KEPT = ("joined_at", "reward_points", "status")


class ParticipantsMove(Move):
    domain = "participants"
    rules = RULES
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

    def judge(self, req: MoveRequest, landing: Landing) -> sa.Select:
        """A participant whose initiative is in scope but has neither moved nor been
        quarantined waits: only the reasons judged before the initiative apply to it."""
        land, t, q = landing.rows.c, schemas.mi_initiatives, schemas.quarantine
        ref = ref_sql("initiatives", land.initiative_id)
        joined = landing.rows.outerjoin(t, t.c.source_ref == ref).outerjoin(
            q, sa.and_(q.c.domain == "initiatives", q.c.source_ref == ref)
        )
        row = {**land, "mi_initiative_id": t.c.initiative_id}
        in_scope = sa.and_(land.initiative_status.is_not(None), land.initiative_status.in_(IN_SCOPE))
        waits = sa.and_(t.c.initiative_id.is_(None), q.c.source_ref.is_(None), in_scope)
        reason = sa.case((waits, first_reason(BEFORE_INITIATIVE, row)), else_=first_reason(self.rules, row))
        return sa.select(
            land[SEQ],
            ref_sql(self.domain, land.initiative_id, land.user_id).label("source_ref"),
            reason.label("reason"),
            # A waiting row is neither written nor quarantined: see ``waiting``.
            sa.or_(sa.not_(waits), reason.is_not(None)).label("insertable"),
            t.c.initiative_id,
            land.mi_account_id,
            *kept(land, KEPT, reason),
        ).select_from(joined)

    def waiting(self, conn: Connection, req: MoveRequest) -> str | None:
        """Every participant is in scope, so a staged row that is valid but not insertable is
        one whose initiative is in scope and has not moved yet."""
        s = self.stage.c
        refs: Iterable[str] = conn.execute(
            sa.select(s.source_ref).where(s.reason.is_(None), ~s.insertable).order_by(s.source_ref)
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
