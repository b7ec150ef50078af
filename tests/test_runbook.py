"""The README's runbook, step by step, each step the command an operator types:
watch a market, rerun a failed move, release quarantined rows by fixing their source,
pause a market, roll it back and move it again."""

from __future__ import annotations

import sqlalchemy as sa
from test_gate_failure import spoil_it_reviews

from poco_migration import schemas
from poco_migration.cli import main

IT_CUTOVER = ["rerun", "poco_migration_cutover_it", "2024-11-29"]
FIRST_SYNC = ["rerun", "poco_migration_sync", "2024-10-07"]

# What a market's rows look like in the target, without the target's own surrogate ids
# (a rollback and a second move give rows new ids; their contents must be the same).
CONTENTS = {
    schemas.mi_points_ledger: ("source_ref", "mi_account_id", "delta", "reason", "expires_at", "created_at"),
    schemas.mi_reviews: tuple(c.name for c in schemas.mi_reviews.c if c.name != "review_id"),
    schemas.mi_initiatives: tuple(c.name for c in schemas.mi_initiatives.c if c.name != "initiative_id"),
    schemas.mi_initiative_participants: tuple(
        c.name for c in schemas.mi_initiative_participants.c if c.name != "initiative_id"
    ),
    schemas.quarantine: ("domain", "source_ref", "reason", "market"),
}


def market_contents(target_url: str, market: str) -> dict[str, list[tuple]]:
    """Every target row of the market (found through the bookkeeping by source_ref)."""
    m, b = schemas.moved, schemas.points_balances
    with sa.create_engine(target_url).connect() as conn:
        refs = set(conn.execute(sa.select(m.c.source_ref).where(m.c.market == market)).scalars())
        users = {f"poco:points:{u}" for u in conn.execute(sa.select(b.c.user_id).where(b.c.market == market)).scalars()}
        out = {}
        for table, columns in CONTENTS.items():
            rows = conn.execute(sa.select(*(table.c[c] for c in columns)).order_by(table.c.source_ref)).all()
            out[table.name] = [
                tuple(r)
                for r in rows
                if r.source_ref in refs
                or r.source_ref.rsplit(":", 1)[0] in users
                or r.source_ref in users
                or (table is schemas.quarantine and r.market == market)
            ]
    return out


def frozen(source_url: str, market: str) -> bool:
    state = schemas.poco_market_state
    with sa.create_engine(source_url).connect() as conn:
        return conn.execute(sa.select(state.c.frozen_at).where(state.c.market == market)).scalar() is not None


def status_line(capsys, market: str, domain: str) -> str:
    assert main(["status", "--market", market]) == 0
    return next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{market:6} {domain:13}"))


def test_runbook(connections, capsys) -> None:
    source_url, target_url = connections["source"], connections["target"]
    assert main(["seed", "--scale", "300", "--seed", "7"]) == 0
    spoiled = spoil_it_reviews(source_url)

    # Watch a market: the first sync refuses IT's reviews, and status says so.
    assert main(FIRST_SYNC) == 1
    assert "poco_migration_sync: failed (move[IT])" in capsys.readouterr().out
    assert status_line(capsys, "IT", "reviews").split()[2:4] == ["gate", "failed"]
    assert status_line(capsys, "IT", "points").split()[2] == "syncing"
    assert main(["quarantine", "--market", "IT", "--reason", "invalid_rating"]) == 0
    listed = capsys.readouterr().out
    assert f"{spoiled} rows" in listed
    assert "@" in listed and ".com" in listed  # each row's author, masked
    assert all("***@" in line for line in listed.splitlines() if "user" in line)

    # Release the quarantined rows by fixing their source, then rerun the failed move.
    r = schemas.poco_reviews
    with sa.create_engine(source_url).begin() as conn:
        conn.execute(sa.update(r).where(r.c.rating == 0).values(rating=4, updated_at=sa.func.current_timestamp()))
    assert main(FIRST_SYNC) == 0
    capsys.readouterr()
    assert status_line(capsys, "IT", "reviews").split()[2] == "syncing"
    assert main(["quarantine", "--market", "IT", "--reason", "invalid_rating"]) == 0
    assert "\n0 rows" in "\n" + capsys.readouterr().out

    # Pause a market: its cutover waits (skipped: nothing frozen, nothing moved).
    assert main(["pause", "IT", "--reason", "Xiaomi asked to hold IT"]) == 0
    capsys.readouterr()
    assert main(IT_CUTOVER) == 0
    assert capsys.readouterr().out.strip().endswith("poco_migration_cutover_it: success; nothing changed")
    assert not frozen(source_url, "IT")
    line = status_line(capsys, "IT", "reviews")
    assert line.split()[2] == "syncing" and line.endswith("PAUSED")

    # Resume it: the cutover moves IT for good.
    assert main(["resume", "IT"]) == 0
    capsys.readouterr()
    assert main(IT_CUTOVER) == 0
    assert "poco_migration_cutover_it: success; " in capsys.readouterr().out
    assert frozen(source_url, "IT")
    assert status_line(capsys, "IT", "points").split()[2:4] == ["cut", "over"]
    cut_over = market_contents(target_url, "IT")
    others = market_contents(target_url, "PL")
    assert len(cut_over["mi_reviews"]) > 0 and len(cut_over["mi_points_ledger"]) > 0

    # Roll it back: refused while it runs, then every IT row leaves the target, the freeze lifts.
    assert main(["rollback", "IT", "--yes"]) == 1
    assert "not paused" in capsys.readouterr().err
    assert main(["pause", "IT", "--reason", "roll back"]) == 0
    assert main(["rollback", "IT", "--yes"]) == 0
    removed = capsys.readouterr().out
    assert f"mi_reviews {len(cut_over['mi_reviews'])}," in removed
    assert f"mi_points_ledger {len(cut_over['mi_points_ledger'])}," in removed
    assert removed.rstrip().endswith("freeze_lifted 1")
    assert not frozen(source_url, "IT")
    assert all(rows == [] for rows in market_contents(target_url, "IT").values())
    assert market_contents(target_url, "PL") == others
    assert status_line(capsys, "IT", "reviews").split()[2:4] == ["not", "started"]

    # Move it again: the same rows, in the same places, as before the rollback.
    assert main(["resume", "IT"]) == 0
    assert main(IT_CUTOVER) == 0
    assert market_contents(target_url, "IT") == cut_over
    assert market_contents(target_url, "PL") == others
    capsys.readouterr()
    assert status_line(capsys, "IT", "participants").split()[2:4] == ["cut", "over"]
