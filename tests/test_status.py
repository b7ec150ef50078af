"""What the dashboard and ``status`` read, before anything has moved; how emails are masked."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from poco_migration import status
from poco_migration.plan import load_plan


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("jane.doe@example.com", "j***@e***.com"),
        ("a@b.co.uk", "a***@b***.uk"),
        ("x@localhost", "x***@l***"),
        ("no-at-sign", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_emails_are_masked(email: str | None, masked: str | None) -> None:
    assert status.mask_email(email) == masked


def test_a_target_not_yet_created_shows_every_market_not_started(db_urls, source_engine) -> None:
    target = sa.create_engine(db_urls["target"])
    snapshot = status.snapshot(source_engine, target, load_plan())
    assert len(snapshot["cells"]) == 11 * 4
    assert {c["state"] for c in snapshot["cells"]} == {"not started"}
    assert (snapshot["checkpoints"], snapshot["reasons"]) == ([], {})
    assert status.quarantine(source_engine, target, reason="duplicate") == []
    target.dispose()
