"""What the migration's DAGs share: default arguments, Params, assets and names.

Kept free of heavy imports: every DAG file imports it at parse time.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from poco_migration.alerts import MigrationAlert
from poco_migration.plan import Plan
from poco_migration.schemas import DOMAINS

OWNER = "poco-migration"
TAGS = ["poco-migration"]
SYNC_DAG_ID = "poco_migration_sync"
SHUTDOWN_DAG_ID = "poco_migration_shutdown"
SHUTDOWN_MARGIN_DAYS = 2

REHEARSAL_ENV = "POCO_MIGRATION_REHEARSAL"
# A task mapped over markets shows each instance under its market's code in the grid.
MARKET_LABEL = "{{ task.op_kwargs['market'] }}"


def rehearsing() -> bool:
    """True while ``rehearsal.py`` parses and runs the DAGs through ``dag.test()``."""
    return os.environ.get(REHEARSAL_ENV) == "1"


def default_args() -> dict[str, Any]:
    """Read at each parse: a dress rehearsal shows a failure at once instead of sleeping
    through the retry delays of ``dag.test()``."""
    return {
        "owner": OWNER,
        "retries": 0 if rehearsing() else 2,
        "retry_delay": dt.timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=15),
        "on_failure_callback": [MigrationAlert()],
    }


def cutover_dag_id(market: str) -> str:
    return f"poco_migration_cutover_{market.lower()}"


def dag_ids(plan: Plan) -> list[str]:
    """Every DAG the plan runs: the sync, each market's cutover in the plan's order, the shutdown."""
    return [SYNC_DAG_ID, *(cutover_dag_id(m) for m in plan.codes), SHUTDOWN_DAG_ID]


def utc(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def cutover_asset(market: str) -> Any:
    """The event a market's cutover publishes; the shutdown waits for all of them."""
    from airflow.sdk import Asset

    return Asset(name=f"poco_cutover_{market}", uri=f"poco-migration://cutover/{market}", group="poco-migration")


def manual_params(plan: Plan) -> dict[str, Any]:
    """The Params of a manual trigger, validated by JSON schema before the run starts."""
    from airflow.sdk import Param

    return {
        "markets": Param(
            [],
            type="array",
            items={"type": "string", "enum": list(plan.codes)},
            uniqueItems=True,
            description="Only these markets (empty: every market the plan syncs that day).",
        ),
        "domains": Param(
            [],
            type="array",
            items={"type": "string", "enum": list(DOMAINS)},
            uniqueItems=True,
            description="Only these domains (empty: all four).",
        ),
        "dry_run": Param(False, type="boolean", description="Stage and count, write nothing, say what would change."),
    }


def _deadline(reference: Any, interval: dt.timedelta, what: str, name: str) -> Any:
    # Not in airflow.sdk's __init__.pyi: imported from where airflow.sdk loads them lazily.
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert

    callback = AsyncCallback("poco_migration.alerts.deadline_missed", kwargs={"what": what})
    return DeadlineAlert(reference=reference, interval=interval, callback=callback, name=name)


def cutover_deadlines(market: str, cutover: dt.date, shutdown: dt.date) -> list[Any]:
    """Alerts when a market's cutover is not done by the end of its day, and when it is
    still not done two days before the shutdown (the shutdown is at risk).

    None in a rehearsal: Airflow 3.3.2's ``dag.test()`` fails a run with deadlines when
    the run succeeds (``DagRun.update_state`` looks the deadlines up by id, and a
    ``dag.test()`` DAG holds them serialised, not as ids), and no scheduler would
    evaluate them there anyway."""
    from airflow.sdk.definitions.deadline import DeadlineReference

    if rehearsing():
        return []
    at_risk = utc(shutdown) - dt.timedelta(days=SHUTDOWN_MARGIN_DAYS)
    return [
        _deadline(
            DeadlineReference.DAGRUN_LOGICAL_DATE,
            dt.timedelta(days=1),
            f"the cutover of {market} is not done by the end of {cutover}",
            "cutover_late",
        ),
        _deadline(
            DeadlineReference.FIXED_DATETIME(at_risk),
            dt.timedelta(0),
            f"the shutdown on {shutdown} is at risk: {market} is not cut over by {at_risk:%Y-%m-%d}",
            "shutdown_at_risk",
        ),
    ]


def shutdown_deadline(shutdown: dt.date) -> list[Any]:
    """Alerts when the shutdown has not finished by 23:00 UTC on its day."""
    from airflow.sdk.definitions.deadline import DeadlineReference

    if rehearsing():
        return []
    return [
        _deadline(
            DeadlineReference.FIXED_DATETIME(utc(shutdown) + dt.timedelta(hours=23)),
            dt.timedelta(0),
            f"the shutdown of {shutdown} has not finished by 23:00 UTC",
            "shutdown_late",
        )
    ]


BULK_DAG_ID = "poco_migration_bulk"
