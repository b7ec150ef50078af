"""What the DAG tasks do with a manual trigger's Params, against real databases."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.cli import main
from poco_migration.tasks import markets_to_sync, sync

DAY = dt.datetime(2024, 10, 7, tzinfo=dt.UTC)


def row_counts(url: str) -> dict[str, int]:
    with sa.create_engine(url).connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (*schemas.TARGET.sorted_tables, *schemas.BOOKKEEPING.sorted_tables)
        }


def test_a_dry_run_writes_nothing_anywhere_and_says_what_it_would_do(connections) -> None:
    assert main(["seed", "--scale", "150", "--seed", "5"]) == 0
    before = row_counts(connections["target"])
    summary = sync("IT", DAY, "manual__dry", {"dry_run": True, "markets": ["IT"], "domains": ["points"]})
    assert list(summary) == ["points"]
    assert (summary["points"]["market"], summary["points"]["status"]) == ("IT", "dry_run")
    assert summary["points"]["inserted"] > 0
    assert summary["points"]["staged"] >= summary["points"]["inserted"]
    assert row_counts(connections["target"]) == before
    assert set(before.values()) == {0}


def test_params_choose_the_markets_and_the_domains(connections) -> None:
    assert main(["seed", "--scale", "150", "--seed", "5"]) == 0
    moved = sync("PL", DAY, "manual__pl", {"domains": ["points"], "markets": ["PL"], "dry_run": False})
    assert list(moved) == ["points"]
    assert (moved["points"]["market"], moved["points"]["status"]) == ("PL", "moved")
    # The day's markets are those of the waves started, or those asked for among them: GL opens on 18 November.
    assert markets_to_sync(DAY, {"markets": []}) == ["IT", "PL", "TH"]
    assert markets_to_sync(DAY, {"markets": ["PL", "GL"]}) == ["PL"]
    assert markets_to_sync(DAY, {"markets": ["GL"]}) == []
