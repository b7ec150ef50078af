"""Reviews: author and product mapped to Xiaomi ids, every other column kept byte for byte.

The duplicate rule needs a review's earlier siblings (same author, same SKU), so
the source is read in (user_id, sku, review_id) order and an incremental move
takes whole groups: every review of a group in which anything changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.moves.landing import SEQ, Landing
from poco_migration.moves.move import Move
from poco_migration.moves.rules import (
    UNLINKED,
    Row,
    Rule,
    first_reason,
    fractional,
    invalid_text,
    kept,
    not_in,
    out_of_range,
    python_whitespace,
)
from poco_migration.moves.sql import at_or_after, changed_since, market_expr
from poco_migration.moves.types import MoveRequest
from poco_migration.refs import ref_ids, ref_sql

DUPLICATE = "duplicate"  # judged per group of an author's reviews of a SKU, after RULES
STATUSES = ("published", "hidden", "pending", "deleted")
# POCO's statuses on the Xiaomi side: a review deleted on POCO is removed there.
STATUS_MAP = {"published": "published", "hidden": "hidden", "pending": "pending", "deleted": "removed"}

RULES = (
    UNLINKED,
    Rule("unmapped_product", lambda row: row["mi_product_id"].is_(None)),
    Rule(
        "invalid_rating",
        lambda row: sa.or_(row["rating"].is_(None), sa.not_(row["rating"].between(1, 5)), fractional(row["rating"])),
    ),
    Rule("empty_body", lambda row: sa.func.coalesce(sa.func.trim(row["body"], python_whitespace()), "") == ""),
    Rule("invalid_status", lambda row: not_in(row["status"], STATUSES)),
    invalid_text("title", "body", "language"),
    out_of_range("helpful_votes"),
)

reviews, users, products = schemas.poco_reviews, schemas.poco_users, schemas.poco_products
KEPT = ("rating", "title", "body", "language", "helpful_votes", "created_at", "updated_at")


class ReviewsMove(Move):
    domain = "reviews"
    rules = RULES
    folded = "body"
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

    def judge(self, req: MoveRequest, landing: Landing) -> sa.Select:
        """The rules, then the duplicate rule: a live review whose body folds to that of an
        earlier valid live review of the same author and SKU (source order) is a duplicate."""
        land = landing.rows.c
        base = first_reason(self.rules, land)
        live = sa.or_(land.status.is_(None), land.status != "deleted")
        ruled = sa.select(
            *land, base.label("base_reason"), live.label("live"), landing.fold_key().label("fold")
        ).select_from(landing.joined())
        rows = ruled.subquery()
        candidate = sa.and_(rows.c.base_reason.is_(None), rows.c.live)
        nth = sa.func.row_number().over(
            partition_by=(rows.c.user_id, rows.c.sku, rows.c.fold, candidate), order_by=rows.c[SEQ]
        )
        marked = sa.select(rows, sa.and_(candidate, nth > 1).label("repeated")).subquery()
        reason = sa.case((marked.c.repeated, DUPLICATE), else_=marked.c.base_reason)
        status = sa.case(*((marked.c.status == poco, mi) for poco, mi in STATUS_MAP.items()), else_=sa.null())
        return sa.select(
            marked.c[SEQ],
            ref_sql(self.domain, marked.c.review_id).label("source_ref"),
            reason.label("reason"),
            marked.c.live.label("insertable"),
            marked.c.mi_account_id,
            marked.c.mi_product_id,
            status.label("status"),
            *kept(marked.c, KEPT, reason),
        )

    def in_scope(self, row: Row | None = None) -> sa.ColumnElement[bool]:
        status = self._row(row)["status"]
        return sa.or_(status != "deleted", status.is_(None))


MOVE = ReviewsMove()
