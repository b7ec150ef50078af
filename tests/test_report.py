"""The reconciliation report after live changes: a correct migration always reconciles to drift 0.

The contract's rules for rows that change after their move: a moved review deleted
on POCO becomes ``removed``, a moved balance that drops to 0 is adjusted down to 0,
a moved initiative cancelled since takes its new status, a quarantined row that
leaves scope stays in the quarantine, and a moved row that becomes invalid is held
where it is. Each stays where the contract puts it, so none of them is drift.
"""

from __future__ import annotations

import pytest
from migration import LATER, LEDGER, MI_INITIATIVES, MI_REVIEWS, RELAXED, T1, Migration
from sources import (
    ACCOUNTS,
    INITIATIVES,
    PARTICIPANTS,
    PRODUCTS,
    REVIEWS,
    USERS,
    account,
    initiative,
    insert,
    linked_users,
    participant,
    product,
    review,
    update,
    user,
)

from poco_migration.moves import MOVES
from poco_migration.report import build_report, render_text


@pytest.fixture(autouse=True)
def _no_data_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCO_MIGRATION_DATA_DOCS", "off")


def it_rows(mig: Migration) -> dict[str, dict]:
    report = build_report(mig.source, mig.target, RELAXED)
    keys = ("in_scope", "retained", "moved", "quarantined", "out_of_scope", "drift")
    return {r["domain"]: {k: r[k] for k in keys} for r in report["rows"] if r["market"] == "IT"}


def test_rows_that_change_after_their_move_reconcile_to_drift_0(mig: Migration) -> None:
    insert(mig.source, USERS, *linked_users(1, 3), user(7, mi_account_id=None))
    insert(mig.source, ACCOUNTS, account(1, 100), account(2, 50), account(3, 30), account(7, 20))
    insert(mig.source, PRODUCTS, product("F6"))
    insert(mig.source, REVIEWS, review(1, 1), review(2, 2, rating=9), review(3, 3))
    insert(mig.source, INITIATIVES, initiative(501), initiative(502))
    insert(mig.source, PARTICIPANTS, participant(501, 1))
    for domain in MOVES:
        mig.run(domain)

    update(mig.source, REVIEWS, {"review_id": 1}, status="deleted", updated_at=T1)  # moved -> removed
    update(mig.source, REVIEWS, {"review_id": 2}, status="deleted", updated_at=T1)  # quarantined, leaves scope
    update(mig.source, ACCOUNTS, {"user_id": 1}, balance=0, updated_at=T1)  # moved, adjusted down to 0
    update(mig.source, ACCOUNTS, {"user_id": 2}, balance=-5, updated_at=T1)  # moved, then invalid: held
    update(mig.source, ACCOUNTS, {"user_id": 7}, balance=0, updated_at=T1)  # quarantined, leaves scope
    update(mig.source, INITIATIVES, {"initiative_id": 502}, status="cancelled", updated_at=T1)  # moved, edited
    for domain in MOVES:
        mig.run(domain, as_of=LATER)

    assert mig.rows(MI_REVIEWS)["poco:review:1"]["status"] == "removed"
    assert mig.rows(MI_INITIATIVES)["poco:initiative:502"]["status"] == "cancelled"
    assert {ref: row["delta"] for ref, row in mig.rows(LEDGER).items()} == {
        "poco:points:1": 100,
        "poco:points:1:1": -100,
        "poco:points:2": 50,
        "poco:points:3": 30,
    }
    assert mig.quarantine() == {
        ("points", "poco:points:7", "unlinked_account", "IT"),
        ("reviews", "poco:review:2", "invalid_rating", "IT"),
    }
    row = {"in_scope": 0, "retained": 0, "moved": 0, "quarantined": 0, "out_of_scope": 0, "drift": 0}
    assert it_rows(mig) == {
        "points": {**row, "in_scope": 4, "retained": 2, "moved": 3, "quarantined": 1},
        "reviews": {**row, "in_scope": 3, "retained": 2, "moved": 2, "quarantined": 1},
        "initiatives": {**row, "in_scope": 2, "retained": 1, "moved": 2},
        "participants": {**row, "in_scope": 1, "moved": 1},
    }
    report = build_report(mig.source, mig.target, RELAXED)
    assert report["points"]["IT"] == {"source": 30, "target": 30, "held": 1, "held_points": 50}
    assert report["points"]["ALL"]["ledger"] == 80  # 30 credited + 50 held
    assert report["totals"]["drift"] == 0
    text = render_text(report)
    assert "drift 0" in text and "retained" in text and "held" in text


def test_a_deleted_review_that_never_moved_is_out_of_scope_not_retained(mig: Migration) -> None:
    """Deleted when first seen: out of scope, in neither place, and no drift."""
    insert(mig.source, USERS, *linked_users(1, 2))
    insert(mig.source, PRODUCTS, product("F6"))
    insert(mig.source, REVIEWS, review(1, 1), review(2, 2, status="deleted"))
    mig.run("reviews")

    assert it_rows(mig)["reviews"] == {
        "in_scope": 1,
        "retained": 0,
        "moved": 1,
        "quarantined": 0,
        "out_of_scope": 1,
        "drift": 0,
    }


def test_real_drift_is_still_reported(mig: Migration) -> None:
    """A row in scope that is in neither place (a new review never synced) and a ledger short of its balance."""
    insert(mig.source, USERS, *linked_users(1, 2))
    insert(mig.source, ACCOUNTS, account(1, 100))
    insert(mig.source, PRODUCTS, product("F6"))
    insert(mig.source, REVIEWS, review(1, 1))
    mig.run("reviews")
    mig.run("points")
    insert(mig.source, REVIEWS, review(2, 2, updated_at=T1))
    update(mig.source, ACCOUNTS, {"user_id": 1}, balance=120, updated_at=T1)

    report = build_report(mig.source, mig.target, RELAXED)
    assert it_rows(mig)["reviews"]["drift"] == 1
    assert report["points"]["IT"] == {"source": 120, "target": 100, "held": 0, "held_points": 0}
    assert report["totals"]["drift"] == 1 + 20
