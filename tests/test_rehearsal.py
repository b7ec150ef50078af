"""The dress rehearsal end to end: Airflow runs every DAG run of the plan (dag.test),
the moves write through their gates, and the report reconciles to zero drift.
Then the whole plan again must leave the target byte for byte as it was."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.archive import verify
from poco_migration.cli import main
from poco_migration.dag_common import dag_ids
from poco_migration.plan import load_plan
from poco_migration.refs import ref_ids
from poco_migration_tools.rehearsal import planned_runs

REPO = Path(__file__).resolve().parents[1]
TARGET_TABLES = (
    schemas.mi_points_ledger,
    schemas.mi_reviews,
    schemas.mi_initiatives,
    schemas.mi_initiative_participants,
    schemas.quarantine,
    schemas.points_balances,
)


# The target's own keys: numbered in the order rows arrive, which two engines running the
# same runs in another order (the scheduler and Celery workers, against ``dag.test()``) need not
# share. A participant's initiative is named by its source_ref instead.
SURROGATES = {"entry_id", "review_id", "initiative_id", "move_id"}
SAME_ROWS = (*TARGET_TABLES, schemas.moved, schemas.held)


def checksum_by_source_ref(engine: sa.Engine) -> dict[str, str]:
    """A digest of every target and bookkeeping table whose rows are the move's result, row by
    row in source_ref order, without the target's own keys: equal when the same rows moved."""
    p, i = schemas.mi_initiative_participants, schemas.mi_initiatives
    initiative = sa.select(i.c.source_ref).where(i.c.initiative_id == p.c.initiative_id).scalar_subquery()
    digests = {}
    with engine.connect() as conn:
        for table in SAME_ROWS:
            columns = [c for c in table.c if c.name not in SURROGATES]
            if table is p:
                columns.append(initiative.label("initiative"))
            order = table.c.source_ref if "source_ref" in table.c else table.c.user_id
            rows = conn.execute(sa.select(*columns).order_by(order)).all()
            digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


def checksum(engine: sa.Engine) -> dict[str, str]:
    """A digest of every target table, row by row in source_ref order."""
    digests = {}
    with engine.connect() as conn:
        for table in TARGET_TABLES:
            order = table.c.source_ref if "source_ref" in table.c else table.c.user_id
            rows = conn.execute(sa.select(table).order_by(order)).all()
            digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


def test_planned_runs_follow_the_calendar() -> None:
    runs = list(planned_runs(load_plan()))
    assert runs[0].dag_id == "poco_migration_sync" and str(runs[0].day) == "2024-10-07"
    assert [r.dag_id for r in runs[-2:]] == ["poco_migration_cutover_gl", "poco_migration_shutdown"]
    cutovers = [r for r in runs if "cutover" in r.dag_id]
    assert [r.dag_id[-2:].upper() for r in cutovers] == [m.market for m in load_plan().cutovers()]
    # a market is never synced on or after its cutover day
    syncs = {r.day for r in runs if r.dag_id == "poco_migration_sync"}
    assert max(syncs) == load_plan().shutdown.replace(day=30)
    assert len(runs) == len(syncs) + len(cutovers) + 1 == 97


def test_a_rehearsal_of_some_dags_names_the_ones_the_plan_lacks(capsys) -> None:
    assert main(["rehearse", "--dag", "poco_migration_cutover_xx", "--dag", "poco_migration_sync"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("no such DAG in the plan: poco_migration_cutover_xx (the plan's: poco_migration_sync, ")
    assert out.rstrip().endswith("poco_migration_cutover_gl, poco_migration_shutdown)")


# The rehearsal's plan: the shipped calendar, with non-integer points conversion rates
# (exact halves at 0.5 and 2.5) that the shipped plan, all at 1, never exercises.
RATES = {"IT": "0.7", "PL": "1.15", "TH": "0.35", "ES": "2.5", "FR": "0.5", "DE": "1.5"}
# Between the two windows, on POCO: rows of markets still syncing change after their move.
LIVE = dt.datetime(2024, 11, 30, 12, 0)  # after the 30 Nov sync, read by the 1 Dec one
SYNCING = ("ES", "FR", "DE", "MY", "PH", "ID", "IN", "GL")  # not frozen on 30 Nov
SOURCE_TIMESTAMPS = {
    schemas.poco_users: ("created_at", "updated_at"),
    schemas.poco_points_accounts: ("updated_at",),
    schemas.poco_points_transactions: ("created_at",),
    schemas.poco_reviews: ("created_at", "updated_at"),
    schemas.poco_initiatives: ("starts_at", "ends_at", "updated_at"),
    schemas.poco_initiative_participants: ("joined_at", "updated_at"),
}


def plan_with_rates() -> str:
    """config/plan.yaml, with RATES set on their markets."""
    text = (REPO / "config" / "plan.yaml").read_text()
    for market, rate in RATES.items():
        text = re.sub(
            rf"{{market: {market}, cutover: ([0-9-]+)(?:, conversion_rate: [0-9.]+)?}}",
            rf"{{market: {market}, cutover: \1, conversion_rate: {rate}}}",
            text,
        )
    return text


def mix_spellings(source: sa.Engine) -> None:
    """On SQLite, every other row's timestamps as ``...:SS`` (no fraction), the rest as SQLAlchemy
    wrote them (``...:SS.ffffff``); every fifth initiative ends at the instant it starts, the two
    sides spelled differently. Both spellings are the contract's; PostgreSQL has none."""
    if source.dialect.name != "sqlite":
        return
    with source.begin() as conn:
        for table, columns in SOURCE_TIMESTAMPS.items():
            key = table.primary_key.columns.values()[0]
            short = {c: sa.func.substr(table.c[c], 1, 19) for c in columns}
            conn.execute(sa.update(table).where(key % 2 == 0).values(short))
        i = schemas.poco_initiatives
        second = sa.func.substr(i.c.starts_at, 1, 19, type_=sa.Text)
        conn.execute(
            sa.update(i)
            .where(i.c.initiative_id % 5 == 0, i.c.starts_at.is_not(None))
            .values(starts_at=sa.func.substr(i.c.starts_at, 1, 19, type_=sa.Text) + ".000000", ends_at=second)
        )


def first_ids(conn: sa.Connection, table: sa.Table, domain: str, n: int, skip: int = 0) -> list[int]:
    """The ids of the first ``n`` (after ``skip``) rows of a domain in ``moved`` or the quarantine,
    among the markets still syncing."""
    rows = conn.execute(
        sa.select(table.c.source_ref)
        .where(table.c.domain == domain, table.c.market.in_(SYNCING))
        .order_by(table.c.source_ref)
        .offset(skip)
        .limit(n)
    ).scalars()
    return [ref_ids(ref)[0] for ref in rows]


def live_changes(source: sa.Engine, target: sa.Engine) -> dict[str, list[int]]:
    """What a live POCO does before its markets freeze: deletes moved reviews (they become
    ``removed``) and a quarantined one (it leaves scope), zeroes moved balances, makes a moved
    balance negative (held), cancels a moved initiative. Markets still syncing. (At this scale
    the seed quarantines no account of them: test_report.py zeroes a quarantined balance.)"""
    m, q = schemas.moved, schemas.quarantine
    with target.connect() as conn:
        changes = {
            "moved reviews deleted": first_ids(conn, m, "reviews", 3),
            "quarantined reviews deleted": first_ids(conn, q, "reviews", 1),
            "moved balances zeroed": first_ids(conn, m, "points", 2),
            "moved balances negative": first_ids(conn, m, "points", 1, skip=2),
            "moved initiatives cancelled": first_ids(conn, m, "initiatives", 1),
        }
    assert all(changes.values()), changes
    r, a, i = schemas.poco_reviews, schemas.poco_points_accounts, schemas.poco_initiatives
    deleted = changes["moved reviews deleted"] + changes["quarantined reviews deleted"]
    zeroed = changes["moved balances zeroed"]
    with source.begin() as conn:
        conn.execute(sa.update(r).where(r.c.review_id.in_(deleted)).values(status="deleted", updated_at=LIVE))
        conn.execute(sa.update(a).where(a.c.user_id.in_(zeroed)).values(balance=0, updated_at=LIVE))
        negative = a.c.user_id.in_(changes["moved balances negative"])
        conn.execute(sa.update(a).where(negative).values(balance=-5, updated_at=LIVE))
        cancelled = i.c.initiative_id.in_(changes["moved initiatives cancelled"])
        conn.execute(sa.update(i).where(cancelled).values(status="cancelled", updated_at=LIVE))
    return changes


def expected_credits(source: sa.Engine) -> dict[int, int]:
    """Each valid account's balance at its market's rate, rounded half up, computed here apart
    from the move: linked, not negative, within the ledger's 32-bit delta."""
    plan = load_plan()
    a, u = schemas.poco_points_accounts, schemas.poco_users
    query = (
        sa.select(a.c.user_id, a.c.balance, u.c.market)
        .join(u, u.c.user_id == a.c.user_id)
        .where(u.c.mi_account_id.is_not(None), a.c.balance >= 0)
    )
    credits = {}
    with source.connect() as conn:
        for user_id, balance, market in conn.execute(query):
            code = market.strip().upper() if market and market.strip().upper() in plan.codes else "GL"
            rate = Decimal(RATES.get(code, "1"))
            credit = int((balance * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            if credit < 2**31:
                credits[user_id] = credit
    return credits


def ledger_sums(target: sa.Engine) -> dict[int, int]:
    ledger = schemas.mi_points_ledger
    sums: dict[int, int] = {}
    with target.connect() as conn:
        for ref, delta in conn.execute(sa.select(ledger.c.source_ref, ledger.c.delta)):
            sums[ref_ids(ref)[0]] = sums.get(ref_ids(ref)[0], 0) + delta
    return sums


@pytest.fixture
def rated_plan(plan_in_force: Callable[[str], Path]) -> None:
    """The plan in force is config/plan.yaml with RATES, for this test only."""
    plan_in_force(plan_with_rates())


@pytest.mark.usefixtures("rated_plan")
def test_whole_plan_rehearses_green_through_live_changes_and_again_changes_nothing(
    connections, capsys, tmp_path
) -> None:
    """The whole plan, as POCO really is: non-integer rates, both timestamp spellings (SQLite),
    and rows that change after their move between two windows. Every gate passes, the report
    reconciles to drift 0, every valid account holds exactly its rounded-half-up credit, every
    POCO page lands under mi.com/global; then replaying every kind of run changes nothing."""
    source, target = sa.create_engine(connections["source"]), sa.create_engine(connections["target"])
    assert main(["seed", "--scale", "300", "--seed", "7"]) == 0
    mix_spellings(source)
    report_path = tmp_path / "report.json"
    assert main(["rehearse", "--to", "2024-11-30", "--json", str(report_path)]) == 0
    changes = live_changes(source, target)
    assert main(["rehearse", "--from", "2024-12-01", "--json", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "[58/58] 2024-11-30 poco_migration_sync: ok" in out  # two windows: 58 runs, then 39
    # each run says what its moves changed: the first sync inserts into every domain
    first = next(line for line in out.splitlines() if line.startswith("[1/58] 2024-10-07"))
    assert re.fullmatch(
        r"\[1/58\] 2024-10-07 poco_migration_sync: ok in [0-9.]+s, 57 left; points \d+ inserted(, \d+ quarantined)?; "
        r"reviews \d+ inserted.*; initiatives \d+ inserted.*; participants \d+ inserted.*",
        first,
    ), first
    assert "[39/39] 2024-12-31 poco_migration_shutdown: ok" in out
    # each cutover names its audit and its redirects, every one probed and answered; the shutdown
    # its app, archive, final drift and audit
    mapped = {}
    for market in load_plan().codes:
        line = next(line for line in out.splitlines() if f" poco_migration_cutover_{market.lower()}: ok" in line)
        found = re.search(
            r"; audit passed \(\d+ rows compared\); statements \d+ users; redirects (\d+) mapped, \1 probed, "
            r"all answered one 301$",
            line,
        )
        assert found, line
        mapped[market] = int(found[1])
    shutdown = next(line for line in out.splitlines() if line.startswith("[39/39]"))
    archived = re.fullmatch(
        r"\[39/39\] 2024-12-31 poco_migration_shutdown: ok in [0-9.]+s, 0 left; app retired: 4 endpoints answer "
        r"410 Gone; archive (\S+) \(9 tables, (\d+) rows\); drift 0; audit passed \(\d+ rows compared\)",
        shutdown,
    )
    assert archived, shutdown

    report = json.loads(report_path.read_text())
    assert report["totals"]["drift"] == 0
    published = report["publications"]
    assert {m: (r["urls"], r["probed"], r["answered_301"]) for m, r in published["redirects"].items()} == {
        m: (n, n, n) for m, n in mapped.items()
    }
    assert published["app"]["answered_410"] == 4
    assert (published["archive"]["path"], published["archive"]["checksum"]) == (archived[1], "verified")
    assert sum(published["archive"]["rows"].values()) == int(archived[2])
    assert report["gates"]["failed"] == 0
    assert report["totals"]["moved"] + report["totals"]["quarantined"] == report["totals"]["in_scope"]
    assert report["totals"]["retained"] == sum(len(v) for k, v in changes.items() if "negative" not in k)
    for market in load_plan().codes:
        points = next(r for r in report["rows"] if r["market"] == market and r["domain"] == "points")
        assert points["moved"] > 0, market
        assert report["points"][market]["source"] == report["points"][market]["target"] > 0
    assert report["points"]["ALL"]["held"] == 1
    assert (
        report["points"]["ALL"]["ledger"] == report["points"]["ALL"]["target"] + report["points"]["ALL"]["held_points"]
    )
    credits, sums = expected_credits(source), ledger_sums(target)
    held = changes["moved balances negative"]
    assert {u: sums.get(u, 0) for u in credits} == credits
    assert set(sums) - set(credits) == set(held)
    r = schemas.mi_reviews
    with target.connect() as conn:
        removed = conn.execute(sa.select(r.c.source_ref).where(r.c.status == "removed")).scalars().all()
    assert {f"poco:review:{i}" for i in changes["moved reviews deleted"]} <= set(removed)

    # Every checkpoint result is kept, each with a Data Docs page a person can open.
    c = schemas.checkpoints
    with target.connect() as conn:
        pages = conn.execute(sa.select(c.c.stage, c.c.data_docs)).all()
    assert {stage for stage, _ in pages} == {"extract", "staged", "reconciled"}
    assert len(pages) == report["gates"]["passed"]
    assert all(Path(url.removeprefix("file://")).is_file() for _, url in pages)

    # Each cutover wrote its market's redirect map, every POCO page to mi.com/global; the
    # shutdown archived the source.
    output = Path(os.environ["POCO_MIGRATION_OUTPUT"])
    maps = {p.name for p in (output / "redirects").glob("*.map")}
    assert maps == {f"poco_redirects_{m.lower()}.map" for m in load_plan().codes}
    for table in (output / "redirects").glob("*.csv"):
        with table.open(newline="") as rows:
            targets = [row["target"] for row in csv.DictReader(rows)]
        assert targets and all(t.startswith("https://www.mi.com/global/") for t in targets), table.name
        assert len(targets) == mapped[table.stem.removeprefix("poco_redirects_").upper()], table.name
    archive = output / "archive" / "poco_source_20241231"
    assert verify(archive) == [] and str(archive) == archived[1]
    assert (output / "app" / "retirement_notice.json").is_file()

    # Each cutover audited its market, and the shutdown every market, from outside the move:
    # every audit passed, with the POCO rows it compared.
    a = schemas.audits
    with target.connect() as conn:
        audits = conn.execute(sa.select(a.c.market, a.c.verdict, a.c.compared)).tuples().all()
    assert {verdict for _, verdict, _ in audits} == {"passed"}
    # per market, its cutover's audit and the shutdown's, each a row per domain
    assert Counter(market for market, *_ in audits) == {m: 2 * len(schemas.DOMAINS) for m in load_plan().codes}
    assert all(compared > 0 for market, _, compared in audits)
    audit_json = json.loads(Path(os.environ["POCO_MIGRATION_REPORT"]).with_name("audit.json").read_text())
    assert audit_json["verdict"] == "passed" and audit_json["markets"] == sorted(load_plan().codes)

    first = checksum(target)
    with source.connect() as conn:
        frozen = conn.execute(sa.select(sa.func.count()).where(schemas.poco_market_state.c.frozen_at.is_not(None)))
        assert frozen.scalar() == len(load_plan().codes)

    # Again: every kind of run replayed over a migration that is done changes nothing: each
    # market's cutover and the shutdown, in order, and the sync of the last day most markets
    # synced (eight of them; every sync of the plan runs the same tasks).
    capsys.readouterr()
    replayed = [dag for dag in dag_ids(load_plan()) if dag != "poco_migration_sync"]
    assert main(["rehearse", "--from", "2024-11-25", *(f"--dag={dag}" for dag in replayed)]) == 0
    assert main(["rehearse", "--from", "2024-11-30", "--to", "2024-11-30", "--dag", "poco_migration_sync"]) == 0
    out = capsys.readouterr().out
    assert "[12/12] 2024-12-31 poco_migration_shutdown: ok" in out and "[1/1] 2024-11-30 poco_migration_sync: ok" in out
    assert checksum(target) == first
