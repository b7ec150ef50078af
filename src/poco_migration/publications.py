"""What the cutovers and the shutdown published: each market's statements to its users and
redirect map, the POCO Store app's retirement and the source's archive, as rows of
``poco_migration_publications``.

These leave files and HTTP answers outside both databases, and the tasks' XComs live in
Airflow's metadata database only; a row in the target lets the reconciliation report show
them wherever it runs, Airflow or not. The redirects are recorded as soon as their files are
written, with what the probe found, since the map is out there whether the probe passed or
not; the statements once both files are in place; the app's retirement and the archive once
their check has passed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poco_migration import schemas
from poco_migration.archive import verify

REDIRECTS, APP, ARCHIVE = "redirects", "app", "archive"
STATEMENTS = "statements"  # a market's statement per user (support.statements)


def record(target: Engine, what: str, counts: dict[str, Any], path: str, market: str | None = None) -> None:
    """Keep one publication, stamped now (naive UTC, as every timestamp of the bookkeeping)."""
    schemas.create_target(target)  # a target created before this table existed
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with target.begin() as conn:
        conn.execute(schemas.publications.insert().values(market=market, what=what, counts=counts, path=path, at=at))


def latest(target: Engine, markets: Sequence[str], check_archive: bool = True) -> dict[str, Any]:
    """The latest publication of each kind, each market's statements and redirects (None: not
    yet), and whether the archive still matches its manifest here and now (unless
    ``check_archive`` is false: the dashboard, read at every refresh, does not reread a whole
    source's archive)."""
    p = schemas.publications
    found: dict[tuple[str, str | None], dict[str, Any]] = {}
    with target.connect() as conn:
        for row in conn.execute(sa.select(p).order_by(p.c.id)).mappings():
            found[row["what"], row["market"]] = {
                **row["counts"],
                "path": row["path"],
                "at": row["at"].isoformat(sep=" ", timespec="seconds"),
            }
    archive = found.get((ARCHIVE, None))
    if archive is not None:
        archive["checksum"] = _checksum(archive["path"]) if check_archive else "not checked"
    return {
        STATEMENTS: {market: found.get((STATEMENTS, market)) for market in markets},
        REDIRECTS: {market: found.get((REDIRECTS, market)) for market in markets},
        APP: found.get((APP, None)),
        ARCHIVE: archive,
    }


def _checksum(path: str) -> str:
    """``verified``, ``mismatch: <files>``, or ``missing`` (not on this machine, or incomplete)."""
    try:
        bad = verify(path)
    except FileNotFoundError:
        return "missing"
    return f"mismatch: {', '.join(bad)}" if bad else "verified"
