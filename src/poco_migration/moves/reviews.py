"""Reviews: author and product mapped to Xiaomi ids, every other column kept byte for byte.

The duplicate rule needs a review's earlier siblings (same author, same SKU), so
the source is read in (user_id, sku, review_id) order and an incremental move
takes whole groups: every review of a group in which anything changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from poco_migration import schemas
from poco_migration.moves.move import Move
from poco_migration.moves.rules import UNLINKED, Rule, first_reason, invalid_text, kept, out_of_range
from poco_migration.moves.sql import at_or_after, changed_since, market_expr
from poco_migration.moves.types import MoveRequest
from poco_migration.refs import ref_ids, source_ref

DUPLICATE = "duplicate"  # judged per group of an author's reviews of a SKU, after RULES
STATUSES = ("published", "hidden", "pending", "deleted")
# POCO's statuses on the Xiaomi side: a review deleted on POCO is removed there.
STATUS_MAP = {"published": "published", "hidden": "hidden", "pending": "pending", "deleted": "removed"}

RULES = (
    UNLINKED,
    Rule("unmapped_product", lambda row: row["mi_product_id"] is None),
    Rule("invalid_rating", lambda row: row["rating"] is None or not 1 <= row["rating"] <= 5),
    Rule("empty_body", lambda row: not (row["body"] or "").strip()),
    Rule("invalid_status", lambda row: row["status"] not in STATUSES),
    invalid_text("title", "body", "language"),
    out_of_range("helpful_votes"),
)

reviews, users, products = schemas.poco_reviews, schemas.poco_users, schemas.poco_products
KEPT = ("rating", "title", "body", "language", "helpful_votes", "created_at", "updated_at")


def normalised_body(body: str) -> str:
    """What makes two bodies "the same" for the duplicate rule: trimmed and case-folded."""
    return body.strip().casefold()


class ReviewsMove(Move):
    domain = "reviews"
    stage = schemas.stage_reviews
    target = schemas.mi_reviews
    content = ("mi_account_id", "mi_product_id", "status", *KEPT)
    keys = (reviews.c.review_id,)
    change_columns = ("updated_at", "user_updated_at")

    def _source(self, req: MoveRequest) -> sa.Select:
        return (
            sa.select(
                reviews,
                users.c.mi_account_id,
                users.c.updated_at.label("user_updated_at"),
                products.c.mi_product_id,
            )
            .select_from(
                reviews.outerjoin(users, users.c.user_id == reviews.c.user_id).outerjoin(
                    products, products.c.sku == reviews.c.sku
                )
            )
            .where(market_expr(users.c.market, req.plan) == req.market)
            .order_by(reviews.c.user_id, reviews.c.sku, reviews.c.review_id)
        )

    def _groups_where(self, condition: sa.ColumnElement[bool], sibling: sa.FromClause) -> sa.ColumnElement[bool]:
        return sa.exists().where(sibling.c.user_id == reviews.c.user_id, sibling.c.sku == reviews.c.sku, condition)

    def extract(self, req: MoveRequest, watermark: dt.datetime | None) -> sa.Select:
        if watermark is None:
            return self._source(req)
        sibling = reviews.alias("sibling")
        changed = self._groups_where(changed_since(watermark, sibling.c.updated_at), sibling)
        return self._source(req).where(sa.or_(changed, at_or_after(users.c.updated_at, watermark)))

    def extract_keys(self, req: MoveRequest, refs: Sequence[str]) -> sa.Select:
        sibling = reviews.alias("sibling")
        ids = [ref_ids(ref)[0] for ref in refs]
        return self._source(req).where(self._groups_where(sibling.c.review_id.in_(ids), sibling))

    def stage_rows(self, rows: Iterable[Mapping[str, Any]], req: MoveRequest, conn: Connection) -> Iterator[dict]:
        group: tuple[Any, Any] | None = None
        originals: set[str] = set()
        for row in rows:
            if (row["user_id"], row["sku"]) != group:
                group, originals = (row["user_id"], row["sku"]), set()
            reason = first_reason(RULES, row)
            live = row["status"] != "deleted"
            if reason is None and live:
                body = normalised_body(row["body"])
                reason = DUPLICATE if body in originals else None
                originals.add(body)
            yield {
                "source_ref": source_ref(self.domain, row["review_id"]),
                "reason": reason,
                "insertable": live,
                "mi_account_id": row["mi_account_id"],
                "mi_product_id": row["mi_product_id"],
                "status": STATUS_MAP.get(row["status"]),
                **kept(row, KEPT, reason),
            }

    def in_scope(self) -> sa.ColumnElement[bool]:
        return sa.or_(reviews.c.status != "deleted", reviews.c.status.is_(None))


MOVE = ReviewsMove()
