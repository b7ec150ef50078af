"""Bulk load: full moves of many markets at once, mapped over markets so that workers run them in parallel."""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from poco_migration.dag_common import BULK_DAG_ID, MARKET_LABEL, TAGS, default_args
from poco_migration.plan import load_plan

PLAN = load_plan()

with DAG(
    dag_id=BULK_DAG_ID,
    description="Full moves of the chosen markets, one mapped task instance per market and domain",
    doc_md=__doc__
    + """

Use it for an **initial bulk load**, or to **reload many markets at once**, before the
daily syncs start or between two of them (not during a sync run or a cutover of the
same markets: those moves would wait for each other's lock). Each domain's task is
mapped over the chosen markets (Airflow dynamic task mapping): one task instance per
market runs one full move of that market (extract, gates, merge, full reconciliation),
as a cutover's `final_sync` does, so a pool of N workers moves N markets at a time.
Participants wait for the initiatives. Every move locks its (domain, market) watermark
row, so different markets run in parallel safely and the same market twice queues up.
A paused market's tasks skip.

Trigger it with the markets to load (default: every market of the plan):

    airflow dags trigger poco_migration_bulk -c '{"markets": ["IT", "PL"]}'
""",
    schedule=None,
    start_date=None,
    catchup=False,
    default_args=default_args(),
    params={
        "markets": Param(
            list(PLAN.codes),
            type="array",
            items={"type": "string", "enum": list(PLAN.codes)},
            minItems=1,
            uniqueItems=True,
            description="The markets to load in full (default: every market of the plan).",
        )
    },
    tags=[*TAGS, "bulk"],
):

    @task
    def markets(params=None) -> list[str]:
        from poco_migration.tasks import selected

        return selected(load_plan().codes, params)

    @task(map_index_template=MARKET_LABEL)
    def full_move(domain: str, market: str, logical_date=None, run_id=None, dag_run=None, ti=None) -> dict:
        from poco_migration.tasks import final_move, origin_of

        # A manual trigger may carry no logical date in Airflow 3: then the run's own time.
        return final_move(domain, market, logical_date or dag_run.run_after, run_id, origin_of(ti))

    chosen = markets()
    full_move.override(task_id="move_points").partial(domain="points").expand(market=chosen)
    full_move.override(task_id="move_reviews").partial(domain="reviews").expand(market=chosen)
    initiatives = full_move.override(task_id="move_initiatives").partial(domain="initiatives").expand(market=chosen)
    participants = full_move.override(task_id="move_participants").partial(domain="participants").expand(market=chosen)
    initiatives >> participants
