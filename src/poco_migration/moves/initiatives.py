"""Initiatives: campaigns, events, contests and beta programmes, under the POCO brand.

Only active and ended initiatives are in scope. One moved before and since
cancelled is not unmoved: its target row takes the new status, like any edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from poco_migration import schemas
from poco_migration.moves.move import Move
from poco_migration.moves.rules import Rule, first_reason, invalid_text, kept
from poco_migration.moves.sql import market_expr
from poco_migration.moves.types import MoveRequest
from poco_migration.refs import source_ref

IN_SCOPE = ("active", "ended")
KINDS = ("campaign", "event", "contest", "beta_program")
BRAND = "POCO"

RULES = (
    Rule(
        "invalid_dates",
        lambda row: row["starts_at"] is None or row["ends_at"] is None or row["ends_at"] < row["starts_at"],
    ),
    Rule("invalid_kind", lambda row: row["kind"] not in KINDS),
    invalid_text("market", "title"),
)

initiatives = schemas.poco_initiatives
KEPT = ("market", "kind", "title", "starts_at", "ends_at", "status")


def initiative_ref(initiative_id: Any) -> str:
    return source_ref("initiatives", initiative_id)


class InitiativesMove(Move):
    domain = "initiatives"
    stage = schemas.stage_initiatives
    target = schemas.mi_initiatives
    content = ("brand", *KEPT)
    keys = (initiatives.c.initiative_id,)
    changed_at = (initiatives.c.updated_at,)

    def _source(self, req: MoveRequest) -> sa.Select:
        return (
            sa.select(initiatives)
            .where(market_expr(initiatives.c.market, req.plan) == req.market)
            .order_by(initiatives.c.initiative_id)
        )

    def stage_rows(self, rows: Iterable[Mapping[str, Any]], req: MoveRequest, conn: Connection) -> Iterator[dict]:
        for row in rows:
            reason = first_reason(RULES, row)
            yield {
                "source_ref": initiative_ref(row["initiative_id"]),
                "reason": reason,
                "insertable": row["status"] in IN_SCOPE,
                "brand": BRAND,
                **kept(row, KEPT, reason),
            }

    def in_scope(self) -> sa.ColumnElement[bool]:
        return initiatives.c.status.in_(IN_SCOPE)


MOVE = InitiativesMove()
