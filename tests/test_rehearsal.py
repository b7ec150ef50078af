"""The dress rehearsal end to end: Airflow runs every DAG run of the plan (dag.test),
the moves write through their gates, and the report reconciles to zero drift.
Then the whole plan again must leave the target byte for byte as it was."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.archive import verify
from poco_migration.cli import main
from poco_migration.plan import load_plan
from poco_migration.rehearsal import planned_runs

TARGET_TABLES = (
    schemas.mi_points_ledger,
    schemas.mi_reviews,
    schemas.mi_initiatives,
    schemas.mi_initiative_participants,
    schemas.quarantine,
    schemas.points_balances,
)


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


def test_whole_plan_rehearses_green_and_again_changes_nothing(connections, capsys, tmp_path) -> None:
    assert main(["seed", "--scale", "300", "--seed", "7"]) == 0
    report_path = tmp_path / "report.json"
    assert main(["rehearse", "--to", "2024-11-30", "--json", str(report_path)]) == 0
    assert main(["rehearse", "--from", "2024-12-01", "--json", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "[58/58] 2024-11-30 poco_migration_sync: ok" in out  # two windows: 58 runs, then 39
    assert "[39/39] 2024-12-31 poco_migration_shutdown: ok" in out

    report = json.loads(report_path.read_text())
    assert report["totals"]["drift"] == 0
    assert report["gates"]["failed"] == 0
    assert report["totals"]["moved"] + report["totals"]["quarantined"] == report["totals"]["in_scope"]
    for market in load_plan().codes:
        points = next(r for r in report["rows"] if r["market"] == market and r["domain"] == "points")
        assert points["moved"] > 0, market
        assert report["points"][market]["source"] == report["points"][market]["target"] > 0
    assert report["points"]["ALL"]["ledger"] == report["points"]["ALL"]["target"]

    # Every checkpoint result is kept, each with a Data Docs page a person can open.
    c = schemas.checkpoints
    with sa.create_engine(connections["target"]).connect() as conn:
        pages = conn.execute(sa.select(c.c.stage, c.c.data_docs)).all()
    assert {stage for stage, _ in pages} == {"extract", "staged", "reconciled"}
    assert len(pages) == report["gates"]["passed"]
    assert all(Path(url.removeprefix("file://")).is_file() for _, url in pages)

    # Each cutover wrote its market's redirect map; the shutdown archived the source.
    output = Path(os.environ["POCO_MIGRATION_OUTPUT"])
    maps = {p.name for p in (output / "redirects").glob("*.map")}
    assert maps == {f"poco_redirects_{m.lower()}.map" for m in load_plan().codes}
    archive = output / "archive" / "poco_source_20241231"
    assert verify(archive) == []
    assert (output / "app" / "retirement_notice.json").is_file()

    target = sa.create_engine(connections["target"])
    first = checksum(target)
    with sa.create_engine(connections["source"]).connect() as conn:
        frozen = conn.execute(sa.select(sa.func.count()).where(schemas.poco_market_state.c.frozen_at.is_not(None)))
        assert frozen.scalar() == len(load_plan().codes)

    assert main(["rehearse"]) == 0
    assert checksum(target) == first
