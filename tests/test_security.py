"""No credential and no user's email leaks anywhere the migration writes; every Param is
validated by its schema.

The leak scan rehearses a whole (small) plan through ``dag.test()`` on PostgreSQL, logged
in as a role of its own with a distinctive password that exists only in the Airflow
connection URIs, looks three people up by email as support would (the address typed in
another case) and reads the lookup log, and then searches for that password and for every
seeded email (and the addresses as typed): every
file under the Airflow home (task logs, the metadata database), the outputs (redirect
maps, the statements per user, the archive, decompressed), the Data Docs pages, the report,
what the run and the lookups printed and logged (at DEBUG for the lookups), and every row
of every table of the Xiaomi target. The statements hold no email at all, not even masked.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PG_URL
from tally import record

from poco_migration import schemas
from poco_migration.cli import main

PLAN = """
shutdown: 2024-10-09
max_quarantine_ratio: 0.05
waves:
  - name: leak-scan
    start: 2024-10-07
    markets:
      - {market: IT, cutover: 2024-10-08}
      - {market: GL, cutover: 2024-10-09}
"""


@pytest.fixture
def probe_role(pg_databases: dict[str, str]):
    """A login role with a distinctive password, owning fresh public schemas in both databases."""
    name, password = f"poco_probe_{uuid.uuid4().hex[:8]}", f"Xq7-LeakProbe-{uuid.uuid4().hex}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # DDL takes no bound parameters; both names are hex of this test's own making.
        conn.execute(sa.text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
    urls = {}
    for role, url in pg_databases.items():
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA public AUTHORIZATION {name}"))
        engine.dispose()
        parsed = sa.make_url(url)
        urls[role] = parsed.set(drivername="postgresql", username=name, password=password)
    yield urls, password
    for url in pg_databases.values():
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP ROLE {name}"))
    admin.dispose()


def readable(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def every_output() -> dict[str, str]:
    """Every file the session's Airflow home, outputs, Data Docs and report hold, as text."""
    roots = [os.environ[k] for k in ("AIRFLOW_HOME", "POCO_MIGRATION_OUTPUT", "POCO_MIGRATION_DATA_DOCS")]
    files = [p for root in roots for p in Path(root).rglob("*") if p.is_file()]
    files.append(Path(os.environ["POCO_MIGRATION_REPORT"]))
    return {str(p): readable(p) for p in files if p.exists()}


def every_row(url: sa.URL) -> str:
    engine = sa.create_engine(url.set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        tables = (*schemas.TARGET.sorted_tables, *schemas.BOOKKEEPING.sorted_tables)
        dumped = "\n".join(repr(conn.execute(sa.select(t)).all()) for t in tables)
    engine.dispose()
    return dumped


def test_a_rehearsal_leaks_no_password_and_no_email(
    probe_role, plan_in_force, monkeypatch, capfd, caplog, tmp_path
) -> None:
    urls, password = probe_role
    plan_in_force(PLAN)
    # Outputs of its own: what its cutovers and shutdown wrote, not what other tests of this
    # worker left (their statements of other markets, say); the Airflow home is scanned whole.
    monkeypatch.setenv("POCO_MIGRATION_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("AIRFLOW_CONN_POCO_SOURCE", urls["source"].render_as_string(hide_password=False))
    monkeypatch.setenv("AIRFLOW_CONN_MI_TARGET", urls["target"].render_as_string(hide_password=False))
    assert main(["seed", "--scale", "200", "--seed", "13"]) == 0
    with sa.create_engine(urls["source"].set(drivername="postgresql+psycopg")).connect() as conn:
        emails = set(conn.execute(sa.select(schemas.poco_users.c.email).where(schemas.poco_users.c.email.is_not(None))))
    emails = {e for (e,) in emails}
    assert len(emails) > 100

    assert main(["rehearse"]) == 0
    # Support looks three people up by email (as typed: in another case), and by id; then reads the log.
    asked = sorted(e for e in emails if e.isascii() and "@" in e)[:3]
    with caplog.at_level(logging.DEBUG):
        for email in asked:
            monkeypatch.setattr("sys.stdin", io.StringIO(f" {email.upper()}\n"))
            assert main(["lookup", "--email", "-"]) == 0, email
            assert main(["lookup", "--email", email.swapcase(), "--json"]) == 0, email
        assert main(["lookups"]) == 0

    printed = capfd.readouterr()
    places = {**every_output(), "stdout": printed.out, "stderr": printed.err, "log records": caplog.text}
    places["target tables"] = every_row(urls["target"])
    assert any("archive" in name for name in places), "the shutdown wrote no archive to scan"
    assert any("data_docs" in name for name in places), "no Data Docs page to scan"
    statements = {Path(name).name: text for name, text in places.items() if Path(name).parent.name == "statements"}
    assert sorted(statements) == ["GL.csv", "GL.jsonl", "IT.csv", "IT.jsonl"], "the cutovers wrote no statement"
    assert [name for name, text in statements.items() if "@" in text] == []  # no email, not even masked
    secrets = {password, *emails, *(e.upper() for e in asked), *(e.swapcase() for e in asked)}
    leaks = sorted((name, secret) for name, text in places.items() for secret in secrets if secret in text)
    record("leaks found", len(leaks))
    assert leaks == []
