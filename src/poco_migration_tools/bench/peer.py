"""The peer the moves are measured against: dlt's ``sql_database`` source merging into PostgreSQL.

``sql_table`` on its ``pyarrow`` backend (rows read in chunks and handed on as Arrow
tables, no Python object per value), ``write_disposition="merge"`` on the domain's key:
what one would write today to keep a PostgreSQL copy of a source table in step, instead
of this project. dlt's own defaults otherwise (its chunk size, its ``delete-insert``
merge through a staging dataset, even on an empty target).

What dlt needs on this stack, measured here:

- with Airflow installed, dlt also looks its secrets up in Airflow Variables, about 5 s
  of every process: that provider is off (``PROVIDERS__ENABLE_AIRFLOW_SECRETS``);
- its ``postgres`` destination refuses credentials without a password, even for a
  server that trusts the connection: any string does (``destination_url``);
- its files (pipeline state, load packages) go to a throw-away directory, not ``~/.dlt``,
  and it sends no telemetry.

It widens the types it creates (``smallint`` and ``integer`` to ``bigint``, ``text`` to
``varchar``); the rows are the same.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

# The dataset (a schema of the target database) dlt creates, and the one it stages merges in.
DATASET = "poco_bench_dlt"
STAGING_DATASET = f"{DATASET}_staging"
# The key each domain's rows are merged on: the source table's primary key.
KEYS = {"reviews": "review_id", "points": "user_id"}
# Any string: dlt's postgres destination wants one, a trusting server ignores it.
PLACEHOLDER_PASSWORD = "dlt-needs-one"


def environment(home: str) -> dict[str, str]:
    """The variables a child process running dlt needs: its data under ``home``, no Airflow
    Variables lookup (seconds per process, and no secret of dlt's is there), no telemetry."""
    return {
        "DLT_DATA_DIR": home,
        "PROVIDERS__ENABLE_AIRFLOW_SECRETS": "false",
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }


def destination_url(target_url: str) -> str:
    """The target as dlt's postgres destination takes it: a plain ``postgresql://`` URL
    (dlt picks its own driver) with a password, a placeholder if the URL has none."""
    url = sa.make_url(target_url).set(drivername="postgresql")
    return url.set(password=url.password or PLACEHOLDER_PASSWORD).render_as_string(hide_password=False)


def load(source_url: str, target_url: str, table: str, key: str) -> dict[str, Any]:
    """dlt's load of the source ``table`` merged on ``key`` into the target, timed from the
    table's reflection to the end of the load; its datasets are dropped afterwards."""
    import dlt
    from dlt.sources.sql_database import sql_table

    began = time.perf_counter()
    resource = sql_table(
        credentials=source_url, table=table, backend="pyarrow", write_disposition="merge", primary_key=key
    )
    destination = dlt.destinations.postgres(credentials=destination_url(target_url))
    pipeline = dlt.pipeline(pipeline_name=f"bench_{table}", destination=destination, dataset_name=DATASET)
    pipeline.run(resource)
    seconds = time.perf_counter() - began
    trace = pipeline.last_trace
    assert trace is not None  # every run() leaves its trace
    steps = {s.step: round((s.finished_at - s.started_at).total_seconds(), 3) for s in trace.steps}
    rows = _count_and_drop(target_url, table)
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds, "steps": steps}


def _count_and_drop(target_url: str, table: str) -> int:
    """The rows dlt left in the target's table, then its datasets gone (the move's target is
    the ``public`` schema beside them)."""
    engine = sa.create_engine(target_url)
    with engine.begin() as conn:
        rows: int = conn.execute(sa.select(sa.func.count()).select_from(sa.table(table, schema=DATASET))).scalar_one()
        for schema in (DATASET, STAGING_DATASET):
            conn.execute(sa.schema.DropSchema(schema, cascade=True, if_exists=True))
    engine.dispose()
    return rows
