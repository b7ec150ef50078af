"""The commands check what they are given and say what is allowed, before touching anything."""

from __future__ import annotations

import datetime as dt

import pytest

from poco_migration import schemas
from poco_migration.cli import main
from poco_migration.moves import REASONS
from poco_migration.plan import load_plan


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--market", "XX"],
        ["quarantine", "--market", "XX"],
        ["pause", "XX", "--reason", "why"],
        ["resume", "XX"],
        ["rollback", "XX"],
        ["audit", "--market", "XX"],
    ],
)
def test_a_market_the_plan_does_not_have_is_refused_with_the_plans_markets(argv, capsys) -> None:
    err = refused(argv, capsys)
    assert f"'XX' is not a market of the plan ({', '.join(load_plan().codes)})" in err


def test_a_reason_or_a_domain_that_does_not_exist_is_refused_with_those_that_do(capsys) -> None:
    assert "'bogus' is not a quarantine reason (" + ", ".join(REASONS) + ")" in refused(
        ["quarantine", "--reason", "bogus"], capsys
    )
    assert "invalid choice: 'bogus'" in refused(["audit", "--domain", "bogus"], capsys)
    assert {"unlinked_account", "duplicate", "orphan", "invalid_rating", "invalid_dates"} <= set(REASONS)


def test_market_codes_are_taken_in_any_case(connections, capsys, monkeypatch) -> None:
    # Airflow's metadata database is this test worker's, shared with the rehearsals of other
    # tests: the plan clock reads only this target here (test_stack reads it from the metadata).
    monkeypatch.setattr("poco_migration.overview.latest_run_date", lambda plan: None)
    assert main(["status", "--market", "it", "--market", " pl "]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The plan clock and the headline come first, over every market; then the markets asked for.
    assert lines[0] == "plan clock: at not started; next cutover PL on 2024-11-25; shutdown 2024-12-31 in 85 plan days"
    assert lines[1].startswith("headline: 0 of 11 markets cut over; points 0 moved, 0 quarantined;")
    assert lines[2].startswith("wall clock: ")
    assert lines[3].split()[:3] == ["market", "domain", "state"]
    assert {line.split()[0] for line in lines[4:12]} == {"IT", "PL"}
    assert len(lines) == 12


def test_pausing_a_market_already_cut_over_says_so(connections, source_engine, capsys) -> None:
    state = schemas.poco_market_state
    with source_engine.begin() as conn:
        conn.execute(state.insert().values(market="IT", frozen_at=dt.datetime(2024, 11, 29, 0, 5)))
    assert main(["pause", "it", "--reason", "roll back"]) == 0
    assert capsys.readouterr().out.strip() == (
        "IT paused; it is cut over already (frozen since 2024-11-29 00:05), so no sync or cutover of it was "
        "left to hold: a rollback (poco-migration rollback IT --yes) may run"
    )
    assert main(["pause", "PL", "--reason", "hold"]) == 0
    assert capsys.readouterr().out.strip() == "PL paused: syncs skip it, its cutover waits"
    assert main(["pause", "PL", "--reason", "hold"]) == 0
    assert capsys.readouterr().out.strip() == "PL was paused already"


def test_the_version(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == "poco-migration 0.1.0"
