"""Daily sync: every domain of every market whose wave has started and that is not frozen."""

from __future__ import annotations

from airflow.sdk import DAG, task

from poco_migration.dag_common import SYNC_DAG_ID, TAGS, default_args, manual_params, utc
from poco_migration.plan import load_plan

PLAN = load_plan()

with DAG(
    dag_id=SYNC_DAG_ID,
    description="Daily incremental sync of points, reviews, initiatives and participants",
    doc_md=__doc__
    + """

Each run moves, for every market the plan syncs that day, the rows changed since
the last sync. Every move is gated by Great Expectations checkpoints before and
after it writes; a refused move writes nothing and fails its task, and the other
markets go on. Participants wait for their initiatives. Trigger it by hand with
`markets` and `dry_run` to sync some markets now or see what would change.
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
    def move(domain: str, logical_date=None, run_id=None, params=None) -> dict:
        from poco_migration.tasks import sync

        return sync(domain, logical_date, run_id, params)

    points = move.override(task_id="move_points")("points")
    reviews = move.override(task_id="move_reviews")("reviews")
    initiatives = move.override(task_id="move_initiatives")("initiatives")
    participants = move.override(task_id="move_participants", trigger_rule="all_done")("participants")
    initiatives >> participants
