"""The reconciliation report after live changes: a correct migration always reconciles to drift 0.

The contract's rules for rows that change after their move: a moved review deleted
on POCO becomes ``removed``, a moved balance that drops to 0 is adjusted down to 0,
a moved initiative cancelled since takes its new status, a quarantined row that
leaves scope stays in the quarantine, and a moved row that becomes invalid is held
where it is. Each stays where the contract puts it, so none of them is drift.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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

from poco_migration import schemas
from poco_migration.moves import MOVES
from poco_migration.redirects.rules import load_rules
from poco_migration.redirects.server import serve
from poco_migration.report import LEGEND, REDIRECTS_LEGEND, SHUTDOWN_LEGEND, build_report, render_text


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


PAGES = [
    {"url": "https://www.po.co/it/", "market": "IT", "kind": "home", "ref": None},
    {"url": "https://www.po.co/it/product/F6", "market": "IT", "kind": "product", "ref": "F6"},
    {"url": "https://www.po.co/it/review/1", "market": "IT", "kind": "review", "ref": "1"},
    {"url": "https://www.po.co/global/", "market": "GL", "kind": "home", "ref": None},
]


def test_the_report_shows_what_the_cutovers_and_the_shutdown_published(
    mig: Migration, connections: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cutover's and the shutdown's own tasks, then the report read from the bookkeeping alone:
    IT's redirects all answered, GL's probed against a server that answers none (recorded, and the
    task fails), the app retired, the archive verified, then named when a file of it changes."""
    from airflow.sdk.exceptions import AirflowFailException

    from poco_migration.tasks import archive_source, publish_redirects, retire_app

    monkeypatch.setenv("POCO_MIGRATION_OUTPUT", str(tmp_path))
    monkeypatch.delenv("POCO_REDIRECTS_BASE_URL", raising=False)
    monkeypatch.delenv("POCO_APP_API_BASE_URL", raising=False)
    insert(mig.source, USERS, *linked_users(1, 2))
    insert(mig.source, PRODUCTS, product("F6"))
    insert(mig.source, REVIEWS, review(1, 1))
    insert(mig.source, schemas.poco_site_pages, *PAGES)
    unpublished = build_report(mig.source, mig.target, RELAXED)["publications"]
    nothing = dict.fromkeys(RELAXED.codes)
    assert unpublished == {"statements": nothing, "redirects": nothing, "app": None, "archive": None}

    began = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    publish_redirects("IT")
    with serve({}) as answers_404, pytest.raises(AirflowFailException, match="GL: 1 redirects failed the probe"):
        monkeypatch.setenv("POCO_REDIRECTS_BASE_URL", answers_404)
        publish_redirects("GL")
    retire_app()
    archive_source(dt.datetime(2024, 12, 31, tzinfo=dt.UTC))
    report = build_report(mig.source, mig.target, RELAXED)

    published = report["publications"]
    it, gl = published["redirects"]["IT"], published["redirects"]["GL"]
    app, archived = published["app"], published["archive"]
    stamps = [it.pop("at"), gl.pop("at"), app.pop("at"), archived.pop("at")]
    assert all(began <= dt.datetime.fromisoformat(at) <= dt.datetime.now(dt.UTC).replace(tzinfo=None) for at in stamps)
    out = tmp_path / "redirects"
    assert published["redirects"] == {
        **dict.fromkeys(RELAXED.codes),
        "IT": {"urls": 3, "probed": 3, "answered_301": 3, "path": str(out / "poco_redirects_it.map")},
        "GL": {"urls": 1, "probed": 1, "answered_301": 0, "path": str(out / "poco_redirects_gl.map")},
    }
    endpoints = 1 + len(load_rules().app.endpoints)  # the API's base path and each sample endpoint
    assert endpoints == 4
    assert app == {"answered_410": endpoints, "path": str(tmp_path / "app" / "retirement_notice.json")}
    archive = tmp_path / "archive" / "poco_source_20241231"
    tables = {table.name: 0 for table in schemas.SOURCE.sorted_tables}
    rows = {**tables, "poco_users": 2, "poco_products": 1, "poco_reviews": 1, "poco_site_pages": 4}
    assert archived == {"rows": rows, "path": str(archive), "checksum": "verified"}

    lines = render_text(build_report(mig.source, mig.target, RELAXED)).splitlines()
    last_row = max(i for i, line in enumerate(lines) if line.startswith("GL     participants"))
    assert lines[last_row + 1] == LEGEND  # under the table it explains
    start = lines.index("market     URLs  probed    301s  published")
    assert lines[start + 1 : start + 3] == [
        f"IT            3       3       3  {stamps[0]}",
        "PL            -       -       -  -",
    ]
    assert lines[start + RELAXED.codes.index("GL") + 1] == f"GL            1       1       0  {stamps[1]}"
    after = start + len(RELAXED.codes) + 1
    assert lines[after : after + 5] == [
        REDIRECTS_LEGEND,
        f"app: 4 endpoints answer 410 Gone since {stamps[2]} (notice {tmp_path / 'app' / 'retirement_notice.json'})",
        f"archive: {archive}, 8 rows in {len(tables)} tables at {stamps[3]}; verified",
        "  " + ", ".join(f"{table} {n}" for table, n in rows.items()),
        SHUTDOWN_LEGEND,
    ]

    (archive / "poco_reviews.csv.gz").write_bytes(b"changed since")
    rechecked = build_report(mig.source, mig.target, RELAXED)["publications"]["archive"]
    assert rechecked["checksum"] == "mismatch: poco_reviews.csv.gz"
