"""The redirect map built from the databases: one :class:`Redirect` per POCO page.

Each page of ``poco_site_pages`` goes to the target its kind's template gives
(:mod:`.rules`), filled from two databases: a product's (or a reviewed product's)
``mi_product_id`` from the POCO source, a moved initiative's id from the Xiaomi
target. A page whose ref cannot be mapped goes to ``fallback``. The pages are
streamed in URL order with one query, because a market has up to a million of
them; nothing here judges the map (that is :mod:`.validate`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.redirects.rules import FALLBACK, PAGE_KINDS, Rules
from poco_migration.refs import is_domain, source_ref

BATCH_ROWS = 5_000
# A review id as the POCO site prints it: the only refs that may be cast to a bigint.
REVIEW_ID = r"^[1-9][0-9]{0,17}$"


class Redirect(NamedTuple):
    """One POCO URL and where it goes; ``rule`` is the target template used (a page
    kind or ``fallback``), so that reports can count the fallbacks."""

    source: str
    target: str
    market: str | None
    kind: str | None
    ref: str | None
    rule: str


def build_map(
    source_engine: sa.Engine, target_engine: sa.Engine, market: str | None, rules: Rules
) -> Iterator[Redirect]:
    """The redirect of every POCO page of ``market`` (every market when None), by URL.

    Streamed: one query joins each page to what it needs from the source (the
    product's ``mi_product_id``; for a review, its product's), so that no table is
    held in memory; only the moved initiatives' ids, a short list, are read first,
    from the target, which lives in another database.
    """
    initiatives = _moved_initiatives(target_engine)
    with source_engine.connect() as conn:
        for row in conn.execution_options(yield_per=BATCH_ROWS).execute(_pages_query(market)):
            target, rule = _target(row, rules, initiatives)
            yield Redirect(row.url, target, row.market, row.kind, row.ref, rule)


def page_urls(source_engine: sa.Engine, market: str | None) -> Iterator[str]:
    """Every POCO URL of ``market`` (every market when None): what a map must cover."""
    pages = schemas.poco_site_pages
    query = sa.select(pages.c.url)
    if market is not None:
        query = query.where(pages.c.market == market)
    with source_engine.connect() as conn:
        yield from conn.execution_options(yield_per=BATCH_ROWS).scalars(query)


def _moved_initiatives(target_engine: sa.Engine) -> dict[str, int]:
    """source_ref -> mi_initiatives id of every moved POCO initiative."""
    initiatives = schemas.mi_initiatives
    query = sa.select(initiatives.c.source_ref, initiatives.c.initiative_id).where(
        is_domain(initiatives.c.source_ref, "initiatives")
    )
    with target_engine.connect() as conn:
        return dict(conn.execute(query).tuples().all())


def _pages_query(market: str | None) -> sa.Select:
    pages, reviews = schemas.poco_site_pages, schemas.poco_reviews
    product = schemas.poco_products.alias("product")
    reviewed = schemas.poco_products.alias("reviewed")
    # The ref is untrusted text: only a well-formed id is cast (PostgreSQL would fail
    # the whole query on one bad ref), and comparing the id column itself, not a cast
    # of it, lets both databases use the primary key.
    review_id = sa.case((pages.c.ref.regexp_match(REVIEW_ID), sa.cast(pages.c.ref, sa.BigInteger)))
    joined = (
        pages.outerjoin(product, sa.and_(pages.c.kind == "product", product.c.sku == pages.c.ref))
        .outerjoin(reviews, sa.and_(pages.c.kind == "review", reviews.c.review_id == review_id))
        .outerjoin(reviewed, reviewed.c.sku == reviews.c.sku)
    )
    query = (
        sa.select(
            pages.c.url,
            pages.c.market,
            pages.c.kind,
            pages.c.ref,
            sa.func.coalesce(product.c.mi_product_id, reviewed.c.mi_product_id).label("mi_product_id"),
        )
        .select_from(joined)
        .order_by(pages.c.url)
    )
    return query if market is None else query.where(pages.c.market == market)


def _target(row: sa.Row, rules: Rules, initiatives: Mapping[str, int]) -> tuple[str, str]:
    """The target of one page and the rule that gave it."""
    locale = rules.locale(row.market)
    kind = row.kind
    if kind in ("product", "review"):
        mapped = isinstance(row.mi_product_id, int) and row.mi_product_id > 0
        values = {"mi_product_id": row.mi_product_id} if mapped else None
    elif kind == "initiative":
        moved = initiatives.get(source_ref("initiatives", row.ref))
        values = None if moved is None else {"mi_initiative_id": moved}
    else:
        values = {} if kind in PAGE_KINDS else None
    if values is None:
        return rules.targets[FALLBACK].format(locale=locale), FALLBACK
    return rules.targets[kind].format(locale=locale, **values), kind
