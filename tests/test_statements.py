"""The statement per user of each cutover (``support.statements``): exact lines on a hand-built
POCO, the CSV and the JSONL saying the same, and totals that add up to the reconciliation report;
then the statements a rehearsal's cutovers wrote, against its own report."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from migration import LATER, RELAXED, T1, Migration, with_rate
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
    mi_account,
    participant,
    product,
    review,
    update,
    user,
)
from test_security import PLAN as TWO_DAYS

from poco_migration import publications, schemas
from poco_migration.moves import MOVES
from poco_migration.plan import load_plan
from poco_migration.refs import ref_ids, user_of
from poco_migration.report import build_report, render_text
from poco_migration.support.advice import advice
from poco_migration.support.statements import COLUMNS, Written, write

# Every move passes its gates whatever share of this small source is quarantined.
PLAN = dataclasses.replace(with_rate(RELAXED, "IT", Decimal("0.7")), max_quarantine_ratio=1.0)
IT_CUTOVER, SHUTDOWN = "2024-11-29", "2024-12-31"


@pytest.fixture(autouse=True)
def _no_data_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCO_MIGRATION_DATA_DOCS", "off")


def build_and_move(mig: Migration) -> None:
    """IT at a rate of 0.7: 1 moves everything; 2 has a negative balance and a duplicate review;
    3 has no Mi account; 4's balance went negative after its move (held); 5 is of FR but joined
    an IT initiative; 6 holds 0 points (out of scope); 7's account has no user row (GL)."""
    insert(mig.source, USERS, *(user(u) for u in (1, 2, 4, 6)), user(3, mi_account_id=None), user(5, market="FR"))
    accounts = (account(1, 100), account(2, -5), account(3, 40), account(4, 50), account(5, 30), account(6, 0))
    insert(mig.source, ACCOUNTS, *accounts, account(7, 20))
    insert(mig.source, PRODUCTS, product("F6"))
    reviews = (review(1, 1), review(2, 1, "F7"), review(3, 2, body="Great phone"), review(4, 2, body=" great PHONE "))
    insert(mig.source, PRODUCTS, product("F7"))
    insert(mig.source, REVIEWS, *reviews, review(5, 3))
    insert(mig.source, INITIATIVES, initiative(501))
    insert(mig.source, PARTICIPANTS, participant(501, 1), participant(501, 3), participant(501, 5))
    for market in PLAN.codes:
        for domain in MOVES:
            mig.run(domain, market, plan=PLAN)
    update(mig.source, ACCOUNTS, {"user_id": 4}, balance=-5, updated_at=T1)
    for market in PLAN.codes:
        mig.run("points", market, as_of=LATER, plan=PLAN)


def item(domain: str, ref: str, situation: str, cutover: str = IT_CUTOVER) -> dict[str, str]:
    """An item not moved, with what support says once its market closed on ``cutover``."""
    action = advice(situation, closed=True, cutover=cutover, shutdown=SHUTDOWN)
    return {"domain": domain, "source_ref": ref, "situation": situation, "action": action}


def line(user_id: int, **fields: Any) -> dict[str, Any]:
    """A line of IT's statement: a linked user with nothing moved and nothing left, unless told otherwise."""
    nothing = {"points_before": None, "points_after": None, "reviews_moved": 0, "participations_moved": 0}
    user = {"market": "IT", "user_id": user_id, "mi_account_id": mi_account(user_id), "conversion_rate": "0.7"}
    return {**user, **nothing, "not_moved": [], **fields}


EXPECTED_IT = [
    line(1, points_before=100, points_after=70, reviews_moved=2, participations_moved=1),
    line(
        2,
        points_before=-5,
        points_after=0,
        reviews_moved=1,
        not_moved=[item("points", "poco:points:2", "negative_balance"), item("reviews", "poco:review:4", "duplicate")],
    ),
    line(
        3,
        mi_account_id=None,
        points_before=40,
        points_after=0,
        not_moved=[
            item("points", "poco:points:3", "unlinked_account"),
            item("reviews", "poco:review:5", "unlinked_account"),
            item("participants", "poco:participant:501:3", "unlinked_account"),
        ],
    ),
    line(4, points_before=-5, points_after=35, not_moved=[item("points", "poco:points:4", "held")]),
    line(5, participations_moved=1),  # of FR: its points are on FR's statement
]


def read(written: Any) -> list[dict[str, Any]]:
    """The JSONL's lines, after checking that the CSV says exactly the same."""
    jsonl = [json.loads(text) for text in written.jsonl.read_text(encoding="utf-8").splitlines()]
    with written.csv.open(newline="", encoding="utf-8") as rows:
        reader = csv.DictReader(rows)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        from_csv = [from_cell(row) for row in reader]
    assert from_csv == jsonl
    return jsonl


def from_cell(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as JSON says it: empty is None, numbers are numbers, not_moved is a JSON list."""
    text = ("market", "conversion_rate")
    out: dict[str, Any] = {k: v if k in text else int(v) if v else None for k, v in row.items() if k != "not_moved"}
    return out | {"not_moved": json.loads(row["not_moved"])}


def adds_up(statement: list[dict[str, Any]], report: dict[str, Any], market: str) -> None:
    """A market's statement against its reconciliation report: credits, moved and unmoved rows."""
    rows = {r["domain"]: r for r in report["rows"] if r["market"] == market}
    points = report["points"][market]
    assert sum(x["points_after"] or 0 for x in statement) == points["target"] + points["held_points"]
    assert sum(x["reviews_moved"] for x in statement) == rows["reviews"]["moved"]
    assert sum(x["participations_moved"] for x in statement) == rows["participants"]["moved"]
    for domain in ("points", "reviews", "participants"):
        unmoved = [i["situation"] for x in statement for i in x["not_moved"] if i["domain"] == domain]
        assert len(unmoved) - unmoved.count("held") == rows[domain]["quarantined"], domain
        assert domain != "points" or unmoved.count("held") == points["held"]
    assert [x["user_id"] for x in statement] == sorted(x["user_id"] for x in statement)


def test_each_user_gets_one_exact_line_that_adds_up_to_the_report(mig: Migration, tmp_path: Path) -> None:
    build_and_move(mig)
    tmp_path = tmp_path / "statements"
    it = write(mig.source, mig.target, PLAN, "IT", tmp_path)
    assert (it.csv, it.jsonl) == (tmp_path / "IT.csv", tmp_path / "IT.jsonl")
    statement = read(it)
    assert statement == EXPECTED_IT
    assert statement[1]["not_moved"][0]["action"].startswith(
        "The POCO balance was below zero when its market closed on 2024-11-29. The POCO record is kept in the "
        "migration's archive (written at the shutdown on 2024-12-31)"
    )
    assert it.counts == {"users": 5, "points_after": 105, "reviews_moved": 3, "participations_moved": 2, "not_moved": 6}
    report = build_report(mig.source, mig.target, PLAN)
    assert (report["points"]["IT"]["target"], report["points"]["IT"]["held_points"]) == (70, 35)
    adds_up(statement, report, "IT")

    fr = read(write(mig.source, mig.target, PLAN, "FR", tmp_path))
    assert fr == [line(5, market="FR", conversion_rate="1", points_before=30, points_after=30)]
    gl = read(write(mig.source, mig.target, PLAN, "GL", tmp_path))
    no_user_row = {
        "market": "GL",
        "conversion_rate": "1",
        "mi_account_id": None,
        "points_before": 20,
        "points_after": 0,
    }
    unlinked = item("points", "poco:points:7", "unlinked_account", cutover=SHUTDOWN)
    assert gl == [line(7, **no_user_row, not_moved=[unlinked])]
    adds_up(fr, report, "FR")
    adds_up(gl, report, "GL")
    assert read(write(mig.source, mig.target, PLAN, "PL", tmp_path)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{m}.{x}" for m in ("FR", "GL", "IT", "PL") for x in ("csv", "jsonl")
    ]
    assert "@" not in "".join(p.read_text() for p in tmp_path.iterdir())  # no email, not even masked


def test_rows_whose_user_is_gone_from_poco_are_stated_last_without_a_user(mig: Migration, tmp_path: Path) -> None:
    """A moved review deleted from POCO for good (not marked deleted: the row is gone) has no
    author to find: it is stated on a last line of its own, so that the totals still add up."""
    build_and_move(mig)
    with mig.source.begin() as conn:
        conn.execute(sa.delete(REVIEWS).where(REVIEWS.c.review_id == 2))
    statement = read(write(mig.source, mig.target, PLAN, "IT", tmp_path))
    assert statement[:-1] == [EXPECTED_IT[0] | {"reviews_moved": 1}, *EXPECTED_IT[1:]]
    assert statement[-1] == line(1) | {"user_id": None, "mi_account_id": None, "reviews_moved": 1}
    assert sum(x["reviews_moved"] for x in statement) == 3


def test_the_cutover_task_writes_records_and_reports_its_statement(
    mig: Migration, connections: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poco_migration.tasks import write_statements

    monkeypatch.setenv("POCO_MIGRATION_OUTPUT", str(tmp_path))
    build_and_move(mig)
    out = tmp_path / "statements"
    assert write_statements("IT") == {
        "users": 5,
        "points_after": 105,
        "reviews_moved": 3,
        "participations_moved": 2,
        "not_moved": 6,
        "csv": str(out / "IT.csv"),
        "jsonl": str(out / "IT.jsonl"),
    }
    report = build_report(mig.source, mig.target, RELAXED)
    it = dict(report["publications"][publications.STATEMENTS]["IT"])
    at = it.pop("at")
    assert it == {
        "users": 5,
        "points_after": 105,
        "reviews_moved": 3,
        "participations_moved": 2,
        "not_moved": 6,
        "path": str(out / "IT.csv"),
    }
    lines = render_text(report).splitlines()
    start = lines.index("market    users  points after  reviews  particip.  not moved  published")
    assert lines[start + 1] == f"IT            5           105        3          2          6  {at}"
    assert lines[start + 2] == "PL            -             -        -          -          -  -"


def in_scope_users(source: sa.Engine, target: sa.Engine, market: str) -> set[int]:
    """Every user with a points, review or participation row of the market in the bookkeeping,
    found here apart from the statements: a review's author read from POCO one by one."""
    tables, domains = (schemas.moved, schemas.quarantine, schemas.held), ("points", "reviews", "participants")
    with target.connect() as conn:
        refs = {
            (domain, ref)
            for table in tables
            for domain, ref in conn.execute(
                sa.select(table.c.domain, table.c.source_ref).where(
                    table.c.market == market, table.c.domain.in_(domains)
                )
            ).tuples()
        }
    r = schemas.poco_reviews
    with source.connect() as conn:
        return {
            user_of(domain, ref)
            if domain != "reviews"
            else conn.execute(sa.select(r.c.user_id).where(r.c.review_id == ref_ids(ref)[0])).scalar_one()
            for domain, ref in refs
        }


def test_a_rehearsed_cutover_states_every_in_scope_user_and_adds_up(
    connections: dict[str, str], plan_in_force, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IT's cutover in a rehearsal (through dag.test()) writes its statement: one line per user of
    IT's bookkeeping, adding up to the report; the run's line says how many users it states."""
    from poco_migration.cli import main

    monkeypatch.setenv("POCO_MIGRATION_OUTPUT", str(tmp_path))
    plan_in_force(TWO_DAYS)  # IT cuts over on the second day
    assert main(["seed", "--scale", "150", "--seed", "7"]) == 0
    assert main(["rehearse", "--to", "2024-10-08"]) == 0
    out = capsys.readouterr().out
    cutover = next(line for line in out.splitlines() if " poco_migration_cutover_it: ok" in line)
    stated = re.search(r"; audit passed \(\d+ rows compared\); statements (\d+) users; redirects \d+ mapped", cutover)
    assert stated, cutover

    source, target = sa.create_engine(connections["source"]), sa.create_engine(connections["target"])
    written = Written(tmp_path / "statements" / "IT.csv", tmp_path / "statements" / "IT.jsonl", {})
    statement = read(written)
    assert len(statement) == int(stated[1]) > 50
    assert [line["user_id"] for line in statement] == sorted(in_scope_users(source, target, "IT"))
    report = build_report(source, target, load_plan())
    adds_up(statement, report, "IT")
    assert report["publications"][publications.STATEMENTS]["IT"]["users"] == len(statement)
    assert report["points"]["IT"]["target"] > 0 and not (tmp_path / "statements" / "GL.csv").exists()
