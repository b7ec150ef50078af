"""Database fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``POCO_TEST_PG_URL`` (default: the local server with trust
auth). Each test session gets two fresh databases of its own there, one for the
POCO source and one for the Xiaomi target, dropped at the end. With ``CI=true`` an
unreachable server fails the run; elsewhere the PostgreSQL half is skipped.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from poco_migration_tools.local_airflow import databases

REPO = Path(__file__).resolve().parents[1]

# An Airflow home of the test session's own, set before anything imports Airflow.
_HOME = Path(tempfile.mkdtemp(prefix="poco-tests-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow/airflow.db",
        "POCO_MIGRATION_DATA_DOCS": str(_HOME / "data_docs"),
        "POCO_MIGRATION_REPORT": str(_HOME / "report.json"),
        "POCO_MIGRATION_OUTPUT": str(_HOME / "output"),
        "GX_ANALYTICS_ENABLED": "false",
    }
)
os.environ.pop("POCO_MIGRATION_REHEARSAL", None)
(_HOME / "airflow").mkdir(parents=True, exist_ok=True)

PG_URL = os.environ.get("POCO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_HELP = (
    "PostgreSQL is not reachable at {url}: set POCO_TEST_PG_URL to a server where this user "
    "may create databases (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)"
)


def _pg_admin() -> sa.Engine | None:
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            return engine
    except sa.exc.OperationalError:
        if os.environ.get("CI") == "true":
            raise
        return None


@contextlib.contextmanager
def own_databases(backend: str, directory: Path) -> Iterator[dict[str, str]]:
    """URLs of an empty ``source`` and ``target`` database of their own: SQLite files in
    ``directory``, or two throw-away PostgreSQL databases, dropped afterwards."""
    if backend == "sqlite":
        yield {role: f"sqlite:///{directory / role}.db" for role in ("source", "target")}
        return
    if _pg_admin() is None:
        pytest.skip(PG_HELP.format(url=PG_URL))
    suffix = uuid.uuid4().hex[:8]
    with databases(PG_URL, {"source": f"poco_src_{suffix}", "target": f"poco_tgt_{suffix}"}) as urls:
        yield urls


@pytest.fixture(scope="session")
def pg_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two throw-away PostgreSQL databases, ``source`` and ``target``, for the session."""
    with own_databases("postgresql", tmp_path_factory.getbasetemp()) as urls:
        yield urls


@pytest.fixture(params=["sqlite", "postgresql"])
def db_urls(request: pytest.FixtureRequest, tmp_path) -> Iterator[dict[str, str]]:
    """SQLAlchemy URLs of an empty source and an empty target database, on each backend."""
    if request.param == "sqlite":
        yield {role: f"sqlite:///{tmp_path / role}.db" for role in ("source", "target")}
        return
    urls = request.getfixturevalue("pg_databases")
    for url in urls.values():
        _drop_everything(url)
    yield urls


def _drop_everything(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _created(url: str, create: Callable[[sa.Engine], None]) -> Iterator[sa.Engine]:
    engine = sa.create_engine(url)
    create(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def source_engine(db_urls: dict[str, str]) -> Iterator[sa.Engine]:
    """The POCO source database, with the contract's tables created and empty."""
    from poco_migration.schemas import create_source

    yield from _created(db_urls["source"], create_source)


@pytest.fixture
def target_engine(db_urls: dict[str, str]) -> Iterator[sa.Engine]:
    """The Xiaomi target database, with the Xiaomi and bookkeeping tables created and empty."""
    from poco_migration.schemas import create_target

    yield from _created(db_urls["target"], create_target)


@pytest.fixture
def connections(db_urls: dict[str, str], source_engine, target_engine, monkeypatch) -> dict[str, str]:
    """``poco_source`` and ``mi_target`` point at this test's databases, as Airflow connections."""
    from poco_migration_tools.local_airflow import airflow_uri

    monkeypatch.setenv("AIRFLOW_CONN_POCO_SOURCE", airflow_uri(db_urls["source"]))
    monkeypatch.setenv("AIRFLOW_CONN_MI_TARGET", airflow_uri(db_urls["target"]))
    return db_urls


@pytest.fixture
def plan_in_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Path]]:
    """``plan_in_force(yaml_text)`` makes that plan the one in force, for this test only (the
    plan is cached per process: a test that only set POCO_MIGRATION_PLAN would get the cached
    one, and a rehearsal would run the whole plan instead of the test's)."""
    from poco_migration.plan import load_plan

    def use(text: str) -> Path:
        path = tmp_path / "plan.yaml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("POCO_MIGRATION_PLAN", str(path))
        load_plan.cache_clear()
        return path

    yield use
    load_plan.cache_clear()


@pytest.fixture
def mig(source_engine: sa.Engine, target_engine: sa.Engine, db_urls: dict[str, str]) -> Any:
    """Moves on this test's databases (``tests/migration.py``)."""
    from migration import Migration

    return Migration(source_engine, target_engine, db_urls["target"])


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, a worker hands its robustness tally to the controller."""
    if hasattr(session.config, "workeroutput"):
        from tally import TALLY

        session.config.workeroutput["tally"] = dict(TALLY)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """The controller adds up what each worker observed."""
    from tally import TALLY

    TALLY.update(getattr(node, "workeroutput", {}).get("tally", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line of what the fault-injection, hostile-input and leak tests observed."""
    from tally import summary

    terminalreporter.write_line(summary())
