"""The synthetic POCO platform: deterministic, countable, dirty within the gates, realistic.

The quarantine audit below is written from the contract's rules, independently of the
seed's own bookkeeping, so that it checks what the seed plants rather than trusting it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from poco_migration.plan import GLOBAL_MARKET, load_plan
from poco_migration.schemas import (
    SOURCE,
    poco_initiative_participants,
    poco_initiatives,
    poco_points_accounts,
    poco_points_transactions,
    poco_products,
    poco_reviews,
    poco_site_pages,
    poco_users,
)
from poco_migration_tools.seed import seed_source

MARKETS = load_plan().codes
REASONS = {
    "points": {"unlinked_account", "negative_balance"},
    "reviews": {"unlinked_account", "unmapped_product", "invalid_rating", "empty_body", "duplicate"},
    "initiatives": {"invalid_dates"},
    "participants": {"unlinked_account", "orphan"},
}
MAX_QUARANTINE_RATIO = 0.01
SNAPSHOT = "2024-09-30 23:59:59"


def _digest(engine: sa.Engine) -> str:
    """sha256 of every source table, rows in primary key order."""
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for table in SOURCE.sorted_tables:
            digest.update(table.name.encode())
            for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def _table_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in SOURCE.sorted_tables}


def test_same_seed_same_rows_other_seed_other_rows(source_engine: sa.Engine) -> None:
    seed_source(source_engine, scale=300, seed=7, markets=MARKETS)
    first = _digest(source_engine)
    seed_source(source_engine, scale=300, seed=7, markets=MARKETS)
    assert _digest(source_engine) == first
    seed_source(source_engine, scale=300, seed=8, markets=MARKETS)
    assert _digest(source_engine) != first


def test_returned_counts_are_the_rows_written(source_engine: sa.Engine) -> None:
    counts = seed_source(source_engine, scale=400, seed=3, markets=MARKETS)
    assert counts == _table_counts(source_engine)
    assert all(counts.values()), counts
    assert abs(counts["poco_users"] - 400) <= 0.05 * 400
    assert seed_source(source_engine, scale=400, seed=3, markets=MARKETS) == counts


def test_a_market_unknown_to_the_seed_gets_a_default_profile(source_engine: sa.Engine) -> None:
    seed_source(source_engine, scale=100, seed=1, markets=["IT", "ZZ", GLOBAL_MARKET])
    with source_engine.connect() as conn:
        users = dict(conn.execute(sa.select(poco_users.c.market, sa.func.count()).group_by(poco_users.c.market)).all())
        home = conn.scalar(
            sa.select(poco_site_pages.c.url).where(poco_site_pages.c.market == "ZZ", poco_site_pages.c.kind == "home")
        )
    assert users["ZZ"] > 0
    assert home == "https://www.po.co/zz/"


@pytest.fixture
def seeded(source_engine: sa.Engine) -> sa.Engine:
    """The default platform: scale 1,000, seed 42, the plan's markets."""
    seed_source(source_engine, scale=1000, seed=42, markets=MARKETS)
    return source_engine


@dataclass
class Audit:
    """In-scope and quarantined rows per (domain, market), and quarantined rows per (domain, reason)."""

    in_scope: Counter[tuple[str, str]] = field(default_factory=Counter)
    quarantined: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, domain: str, market: str, failures: dict[str, bool]) -> None:
        self.in_scope[domain, market] += 1
        reason = next((r for r, failed in failures.items() if failed), None)
        if reason is not None:
            self.quarantined[domain, market] += 1
            self.reasons[domain, reason] += 1


def _audit(conn: sa.Connection) -> Audit:
    """The contract's scope and quarantine rules, applied literally to the source."""
    users = {u.user_id: u for u in conn.execute(sa.select(poco_users))}
    products = {p.sku: p.mi_product_id for p in conn.execute(sa.select(poco_products))}
    initiatives = {i.initiative_id: i for i in conn.execute(sa.select(poco_initiatives))}

    def known(market: str | None) -> str:
        return market if market in MARKETS else GLOBAL_MARKET

    def user_market(user_id: int) -> str:
        return known(users[user_id].market) if user_id in users else GLOBAL_MARKET

    def unlinked(user_id: int) -> bool:
        return user_id not in users or users[user_id].mi_account_id is None

    audit = Audit()
    for account in conn.execute(sa.select(poco_points_accounts)):
        if account.balance != 0:
            audit.add(
                "points",
                user_market(account.user_id),
                {"unlinked_account": unlinked(account.user_id), "negative_balance": account.balance < 0},
            )

    earlier: set[tuple[int, str, str]] = set()
    for review in conn.execute(sa.select(poco_reviews).order_by(poco_reviews.c.review_id)):
        same = (review.user_id, review.sku, (review.body or "").strip().casefold())
        if review.status != "deleted":
            audit.add(
                "reviews",
                user_market(review.user_id),
                {
                    "unlinked_account": unlinked(review.user_id),
                    "unmapped_product": products.get(review.sku) is None,
                    "invalid_rating": review.rating is None or not 1 <= review.rating <= 5,
                    "empty_body": not (review.body or "").strip(),
                    "duplicate": same in earlier,
                },
            )
        earlier.add(same)

    moving = set()
    for initiative in initiatives.values():
        if initiative.status in ("active", "ended"):
            invalid = initiative.ends_at < initiative.starts_at
            audit.add("initiatives", known(initiative.market), {"invalid_dates": invalid})
            if not invalid:
                moving.add(initiative.initiative_id)

    for participant in conn.execute(sa.select(poco_initiative_participants)):
        initiative = initiatives.get(participant.initiative_id)
        market = known(initiative.market) if initiative else user_market(participant.user_id)
        audit.add(
            "participants",
            market,
            {
                "unlinked_account": unlinked(participant.user_id),
                "orphan": participant.initiative_id not in moving,
            },
        )
    return audit


def test_every_defect_is_present_and_every_gate_passes(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        audit = _audit(conn)
    print("\nquarantined per reason:", dict(sorted(audit.reasons.items())))
    print(
        "quarantined per gate:", {f"{d}/{m}": f"{q}/{audit.in_scope[d, m]}" for (d, m), q in audit.quarantined.items()}
    )
    planted = {(domain, reason) for domain, reason in audit.reasons}
    assert planted == {(domain, reason) for domain, reasons in REASONS.items() for reason in reasons}
    assert all(count >= 1 for count in audit.reasons.values())
    too_dirty = {
        gate: (quarantined, audit.in_scope[gate])
        for gate, quarantined in audit.quarantined.items()
        if quarantined > MAX_QUARANTINE_RATIO * audit.in_scope[gate]
    }
    assert too_dirty == {}
    assert {market for _, market in audit.in_scope} == set(MARKETS)


def test_orphans_cover_every_case_of_the_rule(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        initiatives = {i.initiative_id: i for i in conn.execute(sa.select(poco_initiatives))}
        joined = [initiatives.get(p.initiative_id) for p in conn.execute(sa.select(poco_initiative_participants))]
    cases = Counter(
        "gone"
        if i is None
        else "out_of_scope"
        if i.status not in ("active", "ended")
        else "quarantined"
        if i.ends_at < i.starts_at
        else "moving"
        for i in joined
    )
    assert set(cases) == {"gone", "out_of_scope", "quarantined", "moving"}


def test_the_platform_looks_real(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        users = conn.execute(sa.select(poco_users)).all()
        reviews = conn.execute(sa.select(poco_reviews)).all()
        initiatives = conn.execute(sa.select(poco_initiatives)).all()
        pages = conn.execute(sa.select(poco_site_pages)).all()
        products = conn.execute(sa.select(poco_products)).all()
        balances = dict(conn.execute(sa.select(poco_points_accounts.c.user_id, poco_points_accounts.c.balance)).all())
        sums = dict(
            conn.execute(
                sa.select(poco_points_transactions.c.user_id, sa.func.sum(poco_points_transactions.c.delta)).group_by(
                    poco_points_transactions.c.user_id
                )
            ).all()
        )

    sizes = Counter(u.market for u in users if u.market is not None)
    assert len(sizes) >= 9 and set(sizes) == set(MARKETS)
    assert max(sizes.values()) >= 3 * min(sizes.values())
    assert any(u.market is None for u in users)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d+@example\.(com|org)", u.email) for u in users)
    assert 0.05 <= sum(u.mi_account_id is None for u in users) / len(users) <= 0.08
    linked = [u.mi_account_id for u in users if u.mi_account_id is not None]
    assert len(set(linked)) == len(linked)
    assert all("2019-01-01" <= str(u.created_at) <= str(u.updated_at) <= SNAPSHOT for u in users)

    bodies = " ".join(r.body for r in reviews)
    assert re.search("[\u0e00-\u0e7f]", bodies), "Thai"
    assert re.search("[\u0900-\u097f]", bodies), "Devanagari"
    assert re.search("[\U0001f300-\U0001faff]", bodies), "emoji"
    assert {"en", "it", "es", "fr", "de", "pl", "th", "id", "hi", "ms", "tl"} <= {r.language for r in reviews}
    assert {"published", "hidden", "pending", "deleted"} == {r.status for r in reviews}
    assert 1.5 <= len(reviews) / len(users) <= 3
    assert any(r.title is None for r in reviews) and any(r.title for r in reviews)
    assert any(p.mi_product_id is None for p in products) and any(p.name.startswith("POCO F6 Pro") for p in products)

    kinds = {"campaign", "event", "contest", "beta_program"}
    statuses = {"draft", "active", "ended", "cancelled"}
    for market in MARKETS:
        assert {i.kind for i in initiatives if i.market == market} == kinds, market
        assert {i.status for i in initiatives if i.market == market} == statuses, market

    page_kinds = {"home", "product", "review", "initiative", "community", "store", "support", "account", "other"}
    for market in MARKETS:
        assert {p.kind for p in pages if p.market == market} == page_kinds, market
    assert all(p.url.startswith("https://www.po.co/") for p in pages)
    assert all((p.ref is None) == (p.kind not in ("product", "review", "initiative")) for p in pages)
    assert {p.ref for p in pages if p.kind == "product"} == {p.sku for p in products}

    adding_up = sum(sums.get(user_id, 0) == balance for user_id, balance in balances.items())
    assert adding_up >= 0.99 * len(balances)
    assert adding_up < len(balances)
    assert 0.15 <= sum(b == 0 for b in balances.values()) / len(balances) <= 0.25
