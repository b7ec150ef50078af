"""Shutdown: when every market has cut over, the final reconciliation and report."""

from __future__ import annotations

from airflow.sdk import DAG, task

from poco_migration.dag_common import SHUTDOWN_DAG_ID, TAGS, cutover_asset, default_args, shutdown_deadline, utc
from poco_migration.plan import load_plan

PLAN = load_plan()

with DAG(
    dag_id=SHUTDOWN_DAG_ID,
    description=f"Every POCO site closes on {PLAN.shutdown}",
    doc_md=__doc__
    + f"""

Scheduled on the cutover assets of all {len(PLAN.markets)} markets: it runs once the
last of them (the global site, on {PLAN.shutdown}) has cut over. It checks that every
market is frozen, that the POCO Store app's API answers 410 Gone with the way to the
Mi Store, archives the whole POCO source (gzip CSV per table and a `SHA256SUMS`
manifest) for retention, writes the final reconciliation report and audits every
market independently (the POCO source against the Xiaomi tables, not trusting the move).
""",
    schedule=[cutover_asset(m.market) for m in PLAN.markets],
    start_date=utc(PLAN.start),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=shutdown_deadline(PLAN.shutdown),
    tags=[*TAGS, "shutdown"],
):

    @task
    def check_all_frozen() -> list[str]:
        from poco_migration.tasks import check_all_frozen

        return check_all_frozen()

    @task
    def final_report() -> dict:
        from poco_migration.tasks import final_report

        return final_report()

    @task
    def retire_app() -> dict:
        from poco_migration.tasks import retire_app

        return retire_app()

    @task
    def archive_source(logical_date=None, dag_run=None) -> dict:
        from poco_migration.tasks import archive_source

        # Triggered by the cutovers' assets, a run has no logical date: it is due when triggered.
        return archive_source(logical_date or dag_run.run_after)

    @task
    def audit(run_id=None) -> dict:
        from poco_migration.tasks import audit

        return audit(None, run_id)

    check_all_frozen() >> retire_app() >> archive_source() >> [final_report(), audit()]
