"""The plan: loading, validation errors that say where, and the calendar it gives."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from poco_migration.cli import main
from poco_migration.plan import DEFAULT_PLAN, PlanError, load_plan

D = dt.date


def test_default_plan_covers_every_seeded_market_with_the_global_site_last() -> None:
    plan = load_plan(DEFAULT_PLAN)
    assert plan.codes == ("IT", "PL", "TH", "ES", "FR", "DE", "MY", "PH", "ID", "IN", "GL")
    assert plan.shutdown == D(2024, 12, 31)
    assert plan.max_quarantine_ratio == 0.01
    assert plan.cutovers()[-1].market == "GL"
    assert plan.cutovers()[-1].cutover == plan.shutdown
    assert plan.start == D(2024, 10, 7)


def test_which_markets_each_day_syncs() -> None:
    plan = load_plan(DEFAULT_PLAN)
    assert plan.syncing_on(D(2024, 10, 6)) == ()
    assert plan.syncing_on(D(2024, 10, 7)) == ("IT", "PL", "TH")
    assert plan.syncing_on(D(2024, 10, 21)) == ("IT", "PL", "TH", "ES", "FR", "DE")
    # PL cuts over on 25 November: never synced on or after its freeze day.
    assert "PL" in plan.syncing_on(D(2024, 11, 24))
    assert "PL" not in plan.syncing_on(D(2024, 11, 25))
    assert plan.syncing_on(D(2024, 12, 30)) == ("GL",)
    assert plan.syncing_on(D(2024, 12, 31)) == ()


def test_cutovers_in_plan_order() -> None:
    plan = load_plan(DEFAULT_PLAN)
    dates = [m.cutover for m in plan.cutovers()]
    assert dates == sorted(dates)
    assert [m.market for m in plan.cutovers()][:3] == ["PL", "TH", "IT"]


def test_shift_moves_every_date() -> None:
    shifted = load_plan(DEFAULT_PLAN, shift_days=365)
    assert shifted.shutdown == D(2025, 12, 31)
    assert shifted.market("IT").wave_start == D(2025, 10, 7)


def test_plan_command_prints_the_contract_shape(capsys) -> None:
    assert main(["plan"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["shutdown"] == "2024-12-31"
    assert printed["max_quarantine_ratio"] == 0.01
    assert printed["markets"][0] == {
        "market": "IT",
        "wave": "wave-1-pilot",
        "wave_start": "2024-10-07",
        "cutover": "2024-11-29",
        "conversion_rate": 1,
    }


GOOD = """\
shutdown: 2024-12-31
max_quarantine_ratio: 0.02
waves:
  - name: w1
    start: 2024-10-07
    markets:
      - {market: IT, cutover: 2024-11-29, conversion_rate: 1.5}
      - {market: GL, cutover: 2024-12-31}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_plan_loads_with_its_rates(tmp_path) -> None:
    plan = load_plan(write(tmp_path, GOOD))
    assert plan.market("IT").conversion_rate == Decimal("1.5")
    assert plan.max_quarantine_ratio == 0.02


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("cutover: 2024-11-29", "cutover: 2024-13-01", ":7: waves[0].markets[0].cutover: '2024-13-01' is not a date"),
        ("market: IT", "market: it", ":7: waves[0].markets[0].market: 'it' is not an upper-case two-letter code"),
        ("conversion_rate: 1.5", "conversion_rate: -1", ":7: waves[0].markets[0].conversion_rate: -1 must be greater"),
        (
            "conversion_rate: 1.5",
            "conversion_rate: 0.0000001",
            ":7: waves[0].markets[0].conversion_rate: 1E-7 must be at",
        ),
        (
            "conversion_rate: 1.5",
            "conversion_rate: 1000.5",
            "conversion_rate: 1000.5 must be at most 1000",
        ),
        ("max_quarantine_ratio: 0.02", "max_quarantine_ratio: 2", ":2: max_quarantine_ratio: 2 is not in [0, 1)"),
        ("cutover: 2024-11-29", "cutover: 2024-09-01", ":7: waves[0].markets[0].cutover: 2024-09-01 is not between"),
        ("name: w1", "name: w1\n    colour: red", ":5: waves[0].colour: unknown field"),
        ("{market: GL, cutover: 2024-12-31}", "{market: IT, cutover: 2024-12-01}", ":8: market: IT is planned twice"),
        ("cutover: 2024-12-31}", "cutover: 2024-12-30}", "GL.cutover: the global site must cut over on the shutdown"),
    ],
)
def test_a_bad_plan_names_the_line_and_the_field(tmp_path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
