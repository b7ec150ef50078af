"""Daily sync: every domain of every market whose wave has started and that is not frozen,
one task instance per market."""

from __future__ import annotations

from airflow.sdk import DAG, task

from poco_migration.dag_common import MARKET_LABEL, SYNC_DAG_ID, TAGS, default_args, manual_params, utc
from poco_migration.plan import load_plan

PLAN = load_plan()

with DAG(
    dag_id=SYNC_DAG_ID,
    description="Daily incremental sync of points, reviews, initiatives and participants",
    doc_md=__doc__
    + """

Each run moves, for every market the plan syncs that day, the rows changed since
the last sync. `move` is mapped over the day's markets, one task instance per market
(the market is in its name), which moves points, reviews, initiatives, then
participants: a refused market fails its own instance only, the other markets'
instances succeed, and clearing it reruns that market alone (its other domains find
nothing new). Every move is gated by Great Expectations checkpoints before and after
it writes; a refused move writes nothing, and the market's other domains still move.
Trigger it by hand with `markets`, `domains` and `dry_run` to sync some markets now
or see what would change.
""",
    schedule="@daily",
    start_date=utc(PLAN.start),
    end_date=utc(PLAN.shutdown),
    catchup=True,
    max_active_runs=1,
    default_args=default_args(),
    params=manual_params(PLAN),
    tags=[*TAGS, "sync"],
):

    @task
    def markets(logical_date=None, params=None) -> list[str]:
        from poco_migration.tasks import markets_to_sync

        return markets_to_sync(logical_date, params)

    @task(map_index_template=MARKET_LABEL)
    def move(market: str, logical_date=None, run_id=None, params=None, ti=None) -> None:
        from poco_migration.tasks import origin_of, sync

        sync(market, logical_date, run_id, params, origin_of(ti))

    move.expand(market=markets())
