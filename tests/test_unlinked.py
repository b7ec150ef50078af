"""Unlinked users with points (``support.unlinked``): read from POCO before any sync, exact per
market, the same users the points move then quarantines as ``unlinked_account``, and in the report.

Only balances above 0 count: an unlinked account at 0 (out of scope), below 0 or without a
balance has no points to lose, so no reminder or claim concerns it, though the move quarantines
the last two as unlinked too."""

from __future__ import annotations

import dataclasses

import pytest
from migration import RELAXED, Migration
from sources import ACCOUNTS, USERS, account, insert, user

from poco_migration.report import UNLINKED_LEGEND, build_report, render_text
from poco_migration.support.unlinked import by_market

PLAN = dataclasses.replace(RELAXED, max_quarantine_ratio=1.0)
MASKED = "u***@e***.com"  # every builder's email is user<id>@example.com


@pytest.fixture(autouse=True)
def _no_data_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCO_MIGRATION_DATA_DOCS", "off")


def build(mig: Migration) -> None:
    """IT: 2 and 6 (market " it ") unlinked with points; 1 linked; 3 at 0, 4 negative, 5 without a
    balance. FR: 7, 10, 11, 12. GL: 8 (market XX) and 9's account, which has no user row."""
    unlinked = {"mi_account_id": None}
    insert(
        mig.source,
        USERS,
        user(1),
        *(user(u, **unlinked) for u in (2, 3, 4, 5)),
        user(6, market=" it ", **unlinked),
        *(user(u, market="FR", **unlinked) for u in (7, 10, 11, 12)),
        user(8, market="XX", **unlinked),
    )
    it = (account(1, 100), account(2, 40, tier="silver"), account(3, 0), account(4, -5), account(5, None))
    fr = (account(7, 1234, tier="platinum"), *(account(u, 1, tier="bronze") for u in (10, 11, 12)))
    insert(mig.source, ACCOUNTS, *it, account(6, 10), *fr, account(8, 5), account(9, 25))


def listed(user_id: int, balance: int, tier: str = "gold", email: str | None = MASKED) -> dict:
    return {"user_id": user_id, "email": email, "balance": balance, "tier": tier}


EXPECTED = {
    **{market: {"count": 0, "points": 0, "users": []} for market in PLAN.codes},
    "IT": {"count": 2, "points": 50, "users": [listed(2, 40, "silver"), listed(6, 10)]},
    "FR": {
        "count": 4,
        "points": 1237,
        "users": [listed(7, 1234, "platinum"), *(listed(u, 1, "bronze") for u in (10, 11, 12))],
    },
    "GL": {"count": 2, "points": 30, "users": [listed(8, 5), listed(9, 25, email=None)]},
}


def test_unlinked_users_with_points_per_market_before_any_sync(mig: Migration) -> None:
    build(mig)
    found = by_market(mig.source, PLAN)
    assert list(found) == list(PLAN.codes)
    assert found == EXPECTED
    first = by_market(mig.source, PLAN, limit=1)
    assert {m: (f["count"], f["points"], f["users"]) for m, f in first.items()} == {
        m: (e["count"], e["points"], e["users"][:1]) for m, e in EXPECTED.items()
    }


def test_they_are_the_accounts_with_points_the_move_quarantines_as_unlinked(mig: Migration) -> None:
    build(mig)
    for market in PLAN.codes:
        mig.run("points", market, plan=PLAN)
    quarantined = {ref for domain, ref, reason, _ in mig.quarantine() if reason == "unlinked_account"}
    assert quarantined == {f"poco:points:{u}" for u in (2, 4, 5, 6, 7, 8, 9, 10, 11, 12)}
    with_points = {f"poco:points:{x['user_id']}" for f in by_market(mig.source, PLAN).values() for x in f["users"]}
    assert with_points == quarantined - {"poco:points:4", "poco:points:5"}  # negative, no balance
    assert by_market(mig.source, PLAN) == EXPECTED  # read from POCO: the same after the move


def test_the_report_counts_them_and_names_the_first(mig: Migration) -> None:
    build(mig)
    report = build_report(mig.source, mig.target, PLAN)
    assert report["unlinked"] == EXPECTED
    lines = render_text(report).splitlines()
    first = lines.index(f"IT           2 users            50 POCO points  first: 2 ({MASKED}), 6 ({MASKED})")
    shown = dict(zip(PLAN.codes, lines[first : first + len(PLAN.codes)], strict=True))
    assert shown["PL"] == "PL           0 users             0 POCO points"
    fr = f"FR           4 users         1,237 POCO points  first: 7 ({MASKED}), 10 ({MASKED}), 11 ({MASKED}), ..."
    assert shown["FR"] == fr
    assert shown["GL"] == f"GL           2 users            30 POCO points  first: 8 ({MASKED}), 9 (no user row)"
    assert lines[first + len(PLAN.codes)] == UNLINKED_LEGEND
