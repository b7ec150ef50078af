"""Throughput: this project's moves against PostgreSQL's own COPY and against dlt.

For reviews and for points at each size, against one PostgreSQL server, in
throw-away databases of its own, every path timed on all the rows (nothing
extrapolated):

- ``copy``: the physical limit, the rows of the move's source query piped from the
  source's ``COPY (...) TO STDOUT`` into ``COPY ... FROM STDIN`` of an unindexed
  table in the target (psycopg 3 ``cursor.copy``, binary format, no Python per row);
- ``dlt``: the peer, what one would write today instead of this project: dlt's
  ``sql_database`` source on its ``pyarrow`` backend, reading the same query (as a view
  of the source) and merging it into the target on the domain's key (``peer``);
- ``move``: this project's full move (extract, rules, stage, the GX checkpoints, the
  merge, the reconciliation, the bookkeeping) through ``run_move``, as the cutover's
  ``final_sync`` task runs it, on an empty target;
- ``incremental``: then 1 % of the market's source rows changed (``CHANGE_SQL``) and the
  next sync, a move that is not full, with a later "as of", through ``run_move`` too.

Each measurement runs in a child process of its own (``spawn``), so that its peak
memory (``ru_maxrss``) is its own. Then the DAG files' parse time as the
dag-processor measures it (``DagBag`` file stats, in a fresh process) and the whole
plan's rehearsal on a freshly seeded SQLite at the seed's default scale. Results go
to JSON and to a PNG plot of throughput against rows.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poco_migration.config_files import PROJECT
from poco_migration_tools.bench import peer
from poco_migration_tools.local_airflow import airflow_uri

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BENCH_DOMAINS = ("reviews", "points")
MARKET = "IT"
# Every generated row is older than this: the full move's "as of" (its logical date).
AS_OF = dt.datetime(2024, 12, 1)
# The next day's sync, after 1 % of the rows changed just before AS_OF.
SYNC_AS_OF = AS_OF + dt.timedelta(days=1)
CHANGED_AT = AS_OF - dt.timedelta(minutes=1)
# The targets of issue #14, as ratios in one run, at REFERENCE_ROWS rows (the rows/s
# ratio is the largest size's over REFERENCE_ROWS', the memory growth largest over smallest).
REFERENCE_ROWS = 1_000_000
TARGETS = {
    "move_over_copy_min": 0.25,
    "move_over_dlt_min": 2.0,
    "rows_per_second_5m_over_1m_min": 1.0,
    "memory_growth_max": 1.5,
    "checkpoint_seconds_max": 8.0,
    "incremental_over_full_max": 0.05,
    "dag_parse_seconds_max": 0.5,
    "rehearsal_seconds_max": 300.0,
}

# Synthetic rows generated in PostgreSQL itself, a few defects included so that the
# rules and the quarantine run (about 0.4 % of the rows, below the 1 % gate).
USERS_SQL = """
INSERT INTO poco_users (user_id, mi_account_id, email, market, created_at, updated_at)
SELECT g, CASE WHEN g % 500 = 0 THEN NULL ELSE 1000000000 + g END, 'user' || g || '@example.com', :market,
       timestamp '2023-01-01' + g * interval '1 second', timestamp '2024-06-01' + (g % 86400) * interval '1 second'
FROM generate_series(1, :users) AS g
"""
PRODUCTS_SQL = """
INSERT INTO poco_products (sku, name, mi_product_id)
SELECT 'SKU-' || g, 'Product ' || g, 50000 + g FROM generate_series(1, 1000) AS g
"""
REVIEWS_SQL = """
INSERT INTO poco_reviews (review_id, user_id, sku, rating, title, body, language, status, helpful_votes,
                          created_at, updated_at)
SELECT g, 1 + g % :users, 'SKU-' || (1 + (g::bigint * 7919) % 1000),
       CASE WHEN g % 1009 = 0 THEN 9 ELSE 1 + g % 5 END,
       CASE WHEN g % 3 = 0 THEN NULL ELSE 'Review ' || g END,
       CASE WHEN g % 997 = 0 THEN '  ' ELSE 'Body ' || g || ': ' || md5(g::text) || ' ' || md5((g * 31)::text) END,
       'it', CASE g % 200 WHEN 0 THEN 'hidden' WHEN 1 THEN 'pending' WHEN 2 THEN 'deleted' ELSE 'published' END,
       g % 17, timestamp '2023-01-01' + g * interval '1 second',
       timestamp '2024-06-01' + (g % 86400) * interval '1 second'
FROM generate_series(1, :rows) AS g
"""
POINTS_SQL = """
INSERT INTO poco_points_accounts (user_id, balance, tier, expires_at, updated_at)
SELECT g, CASE WHEN g % 1000 = 0 THEN -5 WHEN g % 250 = 0 THEN 0 ELSE 1 + g % 20000 END,
       (ARRAY['bronze', 'silver', 'gold', 'platinum'])[1 + g % 4], date '2025-12-31',
       timestamp '2024-06-01' + (g % 86400) * interval '1 second'
FROM generate_series(1, :rows) AS g
"""
# What changes before the next sync: every 100th row of the market (1 %), dated just
# before AS_OF, with new content. Each row stays as valid or as defective as it was (a
# review gets one more helpful vote, a positive balance one more point), so that the
# sync's changes are updates of rows already moved and can be counted from the generator.
CHANGE_SQL = {
    "reviews": "UPDATE poco_reviews SET helpful_votes = helpful_votes + 1, updated_at = :at WHERE review_id % 100 = 0",
    "points": "UPDATE poco_points_accounts SET balance = CASE WHEN balance > 0 THEN balance + 1 ELSE balance END, "
    "updated_at = :at WHERE user_id % 100 = 0",
}


@dataclass(frozen=True)
class BenchConfig:
    pg_url: str = DEFAULT_PG_URL
    sizes: tuple[int, ...] = (100_000, 1_000_000, 5_000_000)
    domains: tuple[str, ...] = BENCH_DOMAINS
    out_dir: Path = PROJECT / "bench"
    database_prefix: str = "poco_bench"
    rehearsal: bool = True
    profile: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, role: str) -> str:
        name = f"{self.database_prefix}_{role}"
        return sa.make_url(self.pg_url).set(database=name).render_as_string(hide_password=False)


# --- child processes -----------------------------------------------------------------


def _child_entry(queue: Any, fn: Callable[..., dict], args: tuple) -> None:
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # its INFO chatter on import
    try:
        result = fn(*args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put(result)
    except BaseException as exc:
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


def in_child(fn: Callable[..., dict], *args: Any) -> dict:
    """Run ``fn`` in a fresh interpreter: its result, plus its own peak resident memory."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child_entry, args=(queue, fn, args))
    process.start()
    result = queue.get()
    process.join()
    if "error" in result:
        raise RuntimeError(f"{fn.__name__}{args}: {result['error']}")
    return result


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Environment variables for the child processes started in the block."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- databases -----------------------------------------------------------------------


def recreate_database(pg_url: str, url: str, create: bool = True) -> None:
    """Drop the database of ``url`` on the server of ``pg_url``, and create it empty again."""
    import psycopg
    from psycopg import sql

    database = sa.make_url(url).database
    assert database is not None, f"{url} names no database"
    name = sql.Identifier(database)
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def generate(source_url: str, domain: str, rows: int) -> dict[str, Any]:
    """Fill an empty POCO source with ``rows`` rows of the domain, in PostgreSQL itself."""
    from poco_migration import schemas

    engine = sa.create_engine(source_url)
    schemas.SOURCE.drop_all(engine)
    schemas.create_source(engine)
    began = time.perf_counter()
    users = rows if domain == "points" else max(rows // 4, 1)
    with engine.begin() as conn:
        conn.execute(sa.text(USERS_SQL), {"users": users, "market": MARKET})
        if domain == "points":
            conn.execute(sa.text(POINTS_SQL), {"rows": rows})
        else:
            conn.execute(sa.text(PRODUCTS_SQL))
            conn.execute(sa.text(REVIEWS_SQL), {"rows": rows, "users": users})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return {"rows": rows, "users": users, "seconds": time.perf_counter() - began}


def change_rows(source_url: str, domain: str) -> int:
    """Change 1 % of the market's source rows (``CHANGE_SQL``), as POCO would between two syncs."""
    engine = sa.create_engine(source_url)
    with engine.begin() as conn:
        changed = conn.execute(sa.text(CHANGE_SQL[domain]), {"at": CHANGED_AT}).rowcount
    engine.dispose()
    return changed


def reset_target(target_url: str) -> None:
    """An empty Xiaomi target with its bookkeeping, as before a market's first move."""
    from poco_migration import schemas

    engine = sa.create_engine(target_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    schemas.create_target(engine)
    engine.dispose()


def source_query(domain: str) -> sa.Select:
    """The rows a move of the domain reads: its own full extract of the market."""
    from poco_migration.moves import MOVES
    from poco_migration.moves.types import MoveRequest
    from poco_migration.plan import load_plan

    return MOVES[domain].extract(MoveRequest(domain, MARKET, load_plan(), AS_OF, full=True), None)


def literal_sql(query: sa.Select) -> str:
    """The query as PostgreSQL text with its parameters inlined, for statements that take no
    parameters (dlt's view: ``CREATE VIEW``)."""
    from sqlalchemy.dialects import postgresql

    return str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as psycopg itself takes it."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def unindexed_table(name: str, query: sa.Select) -> sa.Table:
    """A table shaped like the query's rows, with no key and no index."""
    return sa.Table(name, sa.MetaData(), *(sa.Column(c.name, c.type) for c in query.selected_columns))


# --- the measurements (each in a child process) --------------------------------------


def measure_copy(domain: str, source_url: str, target_url: str) -> dict:
    """Source rows piped from COPY TO STDOUT into COPY FROM STDIN (the landing's own pipe) of
    an unindexed table: what the database can do."""
    from poco_migration.moves.sql import pipe

    query = source_query(domain)
    table = unindexed_table(f"bench_copy_{domain}", query)
    source, target = sa.create_engine(source_url), sa.create_engine(target_url)
    table.drop(target, checkfirst=True)
    table.create(target)
    began = time.perf_counter()
    with source.connect() as src, target.begin() as dst:
        pipe(src, dst, query, table.name, [c.name for c in table.columns])
    seconds = time.perf_counter() - began
    source.dispose()
    with target.begin() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    table.drop(target)
    target.dispose()
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds}


def measure_dlt(domain: str, source_url: str, target_url: str) -> dict:
    """dlt's load of the same rows: the move's source query as a view of the source, merged
    on the key. The view goes afterwards: it would keep ``generate`` from dropping the tables."""
    import psycopg
    from psycopg import sql

    view = f"bench_dlt_{domain}"
    with psycopg.connect(libpq_url(source_url), autocommit=True) as conn:
        query = sql.SQL(literal_sql(source_query(domain)))
        conn.execute(sql.SQL("CREATE VIEW {} AS {}").format(sql.Identifier(view), query))
        try:
            return peer.load(source_url, target_url, view, peer.KEYS[domain])
        finally:
            conn.execute(sql.SQL("DROP VIEW {}").format(sql.Identifier(view)))


def measure_move(domain: str, rows: int, profile_to: str | None) -> dict:
    """The full move of the market, through ``run_move`` as the cutover's final sync calls it."""
    moved = timed_move(domain, AS_OF, profile_to, full=True)
    return {"rows": rows, "rows_per_second": rows / moved["seconds"], **moved}


def measure_incremental(domain: str, profile_to: str | None) -> dict:
    """The next day's sync after ``change_rows``: a move that is not full, from the watermark
    the full move left, through ``run_move`` like the full one."""
    return timed_move(domain, SYNC_AS_OF, profile_to, full=False)


def timed_move(domain: str, as_of: dt.datetime, profile_to: str | None, *, full: bool) -> dict:
    """One move of the market against the configured connections: its time, outcome and
    checkpoints, and with ``profile_to`` a pyinstrument profile of it written there."""
    from poco_migration.connections import SOURCE_CONN_ID, TARGET_CONN_ID, engine_for, sqlalchemy_url
    from poco_migration.moves import MOVES
    from poco_migration.moves.pipeline import run_move
    from poco_migration.moves.types import MoveRequest
    from poco_migration.plan import load_plan

    request = MoveRequest(domain, MARKET, load_plan(), as_of, run_id="bench", full=full)
    source, target = engine_for(SOURCE_CONN_ID), sqlalchemy_url(TARGET_CONN_ID)
    profiler = None
    if profile_to:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    began = time.perf_counter()
    result = run_move(MOVES[domain], request, source, target)
    seconds = time.perf_counter() - began
    if profiler is not None:
        assert profile_to is not None  # the profiler runs only when asked for a path
        profiler.stop()
        Path(profile_to).write_text(profiler.output_text(unicode=True, show_all=False), encoding="utf-8")
    gates = {c.stage: round(c.seconds, 3) for c in result.checkpoints}
    return {
        "seconds": seconds,
        "status": result.status,
        "staged": result.staged,
        "changes": result.changes,
        "checkpoint_seconds": round(sum(gates.values()), 3),
        "checkpoints": gates,
    }


def measure_dag_parse(dags_folder: str) -> dict:
    """Every DAG file parsed as the dag-processor parses it: DagBag's own per-file durations."""
    from airflow.dag_processing.dagbag import DagBag

    began = time.perf_counter()
    bag = DagBag(dag_folder=dags_folder)
    wall = time.perf_counter() - began
    files = {Path(s.file).name: s.duration.total_seconds() for s in bag.dagbag_stats}
    return {
        "seconds": round(sum(files.values()), 4),
        "wall_seconds": round(wall, 4),
        "files": files,
        "dags": len(bag.dag_ids),
        "import_errors": len(bag.import_errors),
    }


# --- the run ---------------------------------------------------------------------------


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def bench_size(config: BenchConfig, domain: str, rows: int, say: Callable[[str], None]) -> dict:
    """Every measurement of one domain at one size, on freshly generated rows."""
    source_url, target_url = config.url("source"), config.url("target")
    generated = generate(source_url, domain, rows)
    say(f"{domain} {rows:,}: generated in {generated['seconds']:.1f}s")
    reset_target(target_url)
    copy = in_child(measure_copy, domain, source_url, target_url)
    say(f"  copy    {copy['rows_per_second']:>12,.0f} rows/s ({copy['seconds']:.1f}s)")
    # A dlt home of its own per load: no pipeline state from another size's load.
    with tempfile.TemporaryDirectory(prefix="poco-bench-dlt-") as home, environment(**peer.environment(home)):
        dlt = in_child(measure_dlt, domain, source_url, target_url)
    say(f"  dlt     {dlt['rows_per_second']:>12,.0f} rows/s ({dlt['seconds']:.1f}s, peak {dlt['peak_rss_mb']:.0f} MB)")
    profile = str(config.out_dir / f"profile_{domain}_{rows}") if config.profile else None
    with environment(AIRFLOW_CONN_POCO_SOURCE=airflow_uri(source_url), AIRFLOW_CONN_MI_TARGET=airflow_uri(target_url)):
        move = in_child(measure_move, domain, rows, profile and f"{profile}.txt")
        say(
            f"  move    {move['rows_per_second']:>12,.0f} rows/s ({move['seconds']:.1f}s, checkpoints "
            f"{move['checkpoint_seconds']:.1f}s, peak {move['peak_rss_mb']:.0f} MB, {move['status']})"
        )
        changed = change_rows(source_url, domain)
        incremental = in_child(measure_incremental, domain, profile and f"{profile}_incremental.txt")
    incremental["changed_rows"] = changed
    say(f"  incremental ({changed:,} rows changed) {incremental['seconds']:.1f}s, {incremental['status']}")
    return {
        "rows": rows,
        "generated": generated,
        "copy": copy,
        "dlt": dlt,
        "move": move,
        "incremental": incremental,
        "ratios": {
            "move_over_copy": ratio(move["rows_per_second"], copy["rows_per_second"]),
            "move_over_dlt": ratio(move["rows_per_second"], dlt["rows_per_second"]),
            "incremental_over_full": ratio(incremental["seconds"], move["seconds"]),
        },
    }


def rehearsal_time() -> dict:
    """``poco-migration seed`` then ``rehearse`` on fresh SQLite files and a fresh Airflow home."""
    with tempfile.TemporaryDirectory(prefix="poco-bench-rehearsal-") as tmp:
        home = Path(tmp)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_POCO_SOURCE": f"sqlite:///{home}/poco_source.db",
            "AIRFLOW_CONN_MI_TARGET": f"sqlite:///{home}/mi_target.db",
            "POCO_MIGRATION_OUTPUT": str(home / "output"),
            "POCO_MIGRATION_DATA_DOCS": str(home / "data_docs"),
            "POCO_MIGRATION_REPORT": str(home / "report.json"),
        }
        (home / "airflow").mkdir()
        cli = [sys.executable, "-m", "poco_migration.cli"]
        subprocess.run([*cli, "seed"], env=env, check=True, capture_output=True)  # the default scale
        began = time.perf_counter()
        done = subprocess.run([*cli, "rehearse"], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - began
    summary = next((line for line in done.stdout.splitlines() if " runs in " in line), "")
    errors = done.stderr.strip().splitlines()[-3:] if done.returncode else []
    return {"seconds": round(seconds, 1), "exit_code": done.returncode, "summary": summary.strip(), "errors": errors}


def evaluate(results: dict[str, list[dict]], dag_parse: dict, rehearsal: dict | None) -> dict[str, Any]:
    """Each target: what was observed, at which size, and whether it is met."""
    targets: dict[str, Any] = {}
    for domain, sizes in results.items():
        ref = next((s for s in sizes if s["rows"] == REFERENCE_ROWS), sizes[-1])
        smallest, largest = min(sizes, key=_rows), max(sizes, key=_rows)
        observed = {
            "move_over_copy_min": (ref["ratios"]["move_over_copy"], ref["rows"]),
            "move_over_dlt_min": (ref["ratios"]["move_over_dlt"], ref["rows"]),
            "rows_per_second_5m_over_1m_min": _scaling(ref, largest),
            "memory_growth_max": (
                ratio(largest["move"]["peak_rss_mb"], smallest["move"]["peak_rss_mb"]),
                f"{smallest['rows']}..{largest['rows']}",
            ),
            "checkpoint_seconds_max": (ref["move"]["checkpoint_seconds"], ref["rows"]),
            "incremental_over_full_max": (ref["ratios"]["incremental_over_full"], ref["rows"]),
        }
        for name, (value, at) in observed.items():
            targets[f"{domain}.{name}"] = _verdict(name, value, at)
    targets["dag_parse_seconds_max"] = _verdict("dag_parse_seconds_max", dag_parse["seconds"], None)
    if rehearsal is not None:
        seconds = rehearsal["seconds"] if rehearsal["exit_code"] == 0 else None  # a failed one has no time to compare
        targets["rehearsal_seconds_max"] = _verdict("rehearsal_seconds_max", seconds, None)
    return targets


def _rows(size: dict) -> int:
    return int(size["rows"])


def _scaling(ref: dict, largest: dict) -> tuple[float | None, str | None]:
    """The move's rows/s at the largest size over its rows/s at REFERENCE_ROWS: only when both
    ran, the largest above the reference (else nothing observed, and the target not met)."""
    if ref["rows"] != REFERENCE_ROWS or largest["rows"] <= REFERENCE_ROWS:
        return None, None
    scaled = ratio(largest["move"]["rows_per_second"], ref["move"]["rows_per_second"])
    return scaled, f"{ref['rows']}..{largest['rows']}"


def _verdict(name: str, value: float | None, at: Any) -> dict[str, Any]:
    target = TARGETS[name]
    met = value is not None and (value >= target if name.endswith("_min") else value <= target)
    return {"target": target, "observed": value, "at_rows": at, "met": met}


def run(config: BenchConfig, say: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole benchmark; writes ``results.json`` and ``throughput.png`` into ``config.out_dir``."""
    config.out_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    source_url, target_url = config.url("source"), config.url("target")
    for url in (source_url, target_url):
        recreate_database(config.pg_url, url)
    try:
        with tempfile.TemporaryDirectory(prefix="poco-bench-docs-") as docs, environment(POCO_MIGRATION_DATA_DOCS=docs):
            results = {d: [bench_size(config, d, n, say) for n in config.sizes] for d in config.domains}
    finally:
        for url in (source_url, target_url):
            recreate_database(config.pg_url, url, create=False)
    dag_parse = in_child(measure_dag_parse, str(PROJECT / "dags"))
    say(f"DAG files parsed in {dag_parse['seconds']:.3f}s ({dag_parse['dags']} DAGs)")
    rehearsal = rehearsal_time() if config.rehearsal else None
    if rehearsal:
        say(f"rehearsal: {rehearsal['seconds']:.0f}s ({rehearsal['summary']})")
    report = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": _machine(config.pg_url),
        "config": {
            "sizes": list(config.sizes),
            "domains": list(config.domains),
            "market": MARKET,
            "as_of": AS_OF,
            "sync_as_of": SYNC_AS_OF,
            "dlt": importlib.metadata.version("dlt"),
        },
        "method": __doc__,
        "results": results,
        "dag_parse": dag_parse,
        "rehearsal": rehearsal,
        **config.extra,
        "targets": evaluate(results, dag_parse, rehearsal),
    }
    (config.out_dir / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    plot(results, config.out_dir / "throughput.png")
    return report


def _machine(pg_url: str) -> dict[str, Any]:
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        version: str = conn.execute(sa.text("SHOW server_version")).scalar_one()
    engine.dispose()
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": version}


def plot(results: dict[str, list[dict]], path: Path) -> None:
    """Throughput against rows, one panel per domain, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False)
    for axis, (domain, sizes) in zip(axes[0], results.items(), strict=True):
        rows = [s["rows"] for s in sizes]
        for method in ("copy", "dlt", "move"):
            axis.plot(rows, [s[method]["rows_per_second"] for s in sizes], marker="o", label=method)
        axis.set(xscale="log", yscale="log", xlabel="source rows", ylabel="rows / s", title=domain)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
