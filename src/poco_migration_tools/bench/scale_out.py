"""Scale-out measured: the bulk DAG mapped over markets, run by the scheduler and Celery workers.

``poco_migration_bulk`` maps each domain's full move over the chosen markets; here it is
triggered on the compose stack's Airflow started as local processes (``stack``: the
CeleryExecutor on a Redis of its own) on throw-away PostgreSQL databases, once per number of
Celery workers (concurrency 1 each), each time on an emptied target, and the DAG run's wall
time as the scheduler stamps it is recorded.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poco_migration_tools.bench.throughput import ratio
from poco_migration_tools.local_airflow import LocalAirflow, databases, free_port
from poco_migration_tools.stack import LocalRedis, stack_environment, start_workers

SCALE_OUT_MARKETS = ("IT", "PL", "TH", "ES", "FR", "DE")
ROLES = ("airflow", "poco_source", "mi_target")
FINISHED_RUN = sa.text(
    "SELECT state, start_date, end_date FROM dag_run WHERE dag_id = :d AND run_id = :r"
    " AND state IN ('success', 'failed')"
)
MAPPED_TASKS = sa.text(
    "SELECT count(*), sum(duration), count(*) FILTER (WHERE state = 'success')"
    " FROM task_instance WHERE dag_id = :d AND run_id = :r AND map_index >= 0"
)


def scale_out(
    pg_url: str,
    markets: Sequence[str] = SCALE_OUT_MARKETS,
    scale: int = 2000,
    workers: Sequence[int] = (1, 2),
    prefix: str = "poco_bench_scale",
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The bulk DAG, mapped over ``markets``, run by the scheduler and ``workers`` Celery workers
    (concurrency 1 each: one task at a time per worker), once per worker count, each time on an
    emptied target; the DAG run's wall time as the scheduler records it."""
    from poco_migration.dag_common import BULK_DAG_ID  # here: the benchmark's measuring children stay Airflow-free

    home = Path(tempfile.mkdtemp(prefix="poco-bench-scale-"))
    (home / "airflow").mkdir()
    names = {role: f"{prefix}_{role}" for role in ROLES}
    with databases(pg_url, names) as urls, LocalRedis(home) as redis:
        env = stack_environment(home, urls, port := free_port(), broker_url=redis.url)
        with LocalAirflow(home, env) as airflow:
            say("scale-out: airflow db migrate, seed")
            _check(airflow.cli("airflow", "db", "migrate"))
            _check(airflow.cli(sys.executable, "-m", "poco_migration.cli", "seed", "--scale", str(scale)))
            airflow.start("api-server", "--port", str(port))
            airflow.start("dag-processor")
            airflow.start("scheduler")
            meta = sa.create_engine(urls["airflow"])
            parsed = sa.text("SELECT count(*) FROM serialized_dag WHERE dag_id = :d")
            airflow.wait_for(lambda: _one(meta, parsed, d=BULK_DAG_ID)[0], "the bulk DAG parsed", 300)
            _check(airflow.cli("airflow", "dags", "unpause", BULK_DAG_ID))
            runs = [_run(airflow, meta, urls["mi_target"], BULK_DAG_ID, markets, n, say) for n in workers]
            meta.dispose()
    first, last = runs[0]["dag_run_seconds"], runs[-1]["dag_run_seconds"]
    return {
        "method": "the bulk DAG (each domain's full move mapped over the markets) triggered on the compose "
        "stack's Airflow as local processes: the scheduler and N Celery workers of concurrency 1 on Redis; "
        "PostgreSQL for the metadata, the source and the target; the target emptied before each run",
        "executor": "CeleryExecutor",
        "markets": list(markets),
        "seed_scale": scale,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
        "speed_up": ratio(first, last),
    }


def _run(
    airflow: LocalAirflow,
    meta: sa.Engine,
    target_url: str,
    dag_id: str,
    markets: Sequence[str],
    workers: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """One triggered run of the bulk DAG with ``workers`` Celery workers, stopped after it."""
    from poco_migration import schemas

    target = sa.create_engine(target_url)
    schemas.BOOKKEEPING.drop_all(target)
    schemas.TARGET.drop_all(target)
    schemas.create_target(target)
    target.dispose()
    started = start_workers(airflow, workers)
    run_id = f"bench_celery_workers_{workers}"
    began = time.monotonic()
    conf = json.dumps({"markets": list(markets)})
    _check(airflow.cli("airflow", "dags", "trigger", dag_id, "--run-id", run_id, "-c", conf))
    say(f"scale-out: {run_id} triggered for {len(markets)} markets")
    state, start, end = airflow.wait_for(
        lambda: _one(meta, FINISHED_RUN, d=dag_id, r=run_id), f"the bulk DAG run {run_id}", 3600
    )
    seconds = time.monotonic() - began
    count, duration, succeeded = _one(meta, MAPPED_TASKS, d=dag_id, r=run_id)
    for worker in started:
        airflow.stop(worker)
    run = {
        "celery_workers": workers,
        "state": state,
        "dag_run_seconds": round((end - start).total_seconds(), 1),
        "trigger_to_done_seconds": round(seconds, 1),
        "mapped_task_instances": count,
        "mapped_succeeded": succeeded,
        "task_seconds_sum": round(float(duration or 0), 1),
    }
    say(f"scale-out: {run}")
    return run


def _one(engine: sa.Engine, query: sa.TextClause, **values: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(query, values).one_or_none()


def _check(done: Any) -> None:
    if done.returncode:
        raise RuntimeError(f"{' '.join(done.args)}: exit {done.returncode}\n{done.stderr[-3000:]}")


def write_scale_out(result: dict[str, Any], out_dir: Path) -> Path:
    """Keep everything else of ``results.json``; the measurement under ``scale_out``."""
    path = out_dir / "results.json"
    report = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    report["scale_out"] = result
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return path
