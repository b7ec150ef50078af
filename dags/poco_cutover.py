"""Cutover, one DAG per market on its plan date: freeze, final sync, audit, statements, redirects."""

from __future__ import annotations

from airflow.sdk import DAG, TaskGroup, task

from poco_migration.dag_common import TAGS, cutover_asset, cutover_dag_id, cutover_deadlines, default_args, utc
from poco_migration.plan import load_plan

PLAN = load_plan()

for market_plan in PLAN.cutovers():
    market = market_plan.market
    with DAG(
        dag_id=cutover_dag_id(market),
        description=f"Cutover of {market} on {market_plan.cutover}",
        doc_md=f"""
### Cutover of {market} ({market_plan.wave})

1. **freeze**: the {market} site goes read-only on POCO (`poco_market_state.frozen_at`);
2. **final_sync**: a full move of every domain, gated by the full reconciliation
   (source counts and points totals against the target);
3. **audit**: proves the move from outside it, reading POCO and Xiaomi directly: every
   in-scope row of {market} in exactly one place, every moved row as the contract maps it,
   every user's ledger sum equal to the converted balance;
4. **statements**: writes {market}'s statement per user (CSV and JSONL, no email) for the
   CRM: points before and after the conversion, reviews and participations moved, and each
   row not moved with the action to take;
5. **redirects**: generates {market}'s redirect map (nginx `map` and CSV), refuses it if
   any POCO URL is uncovered, off-host, chained or looping, and probes every URL over
   HTTP for exactly one 301 to its mi.com target;
6. **cut_over**: publishes the `poco_cutover_{market}` asset that the shutdown waits for.

Safe to clear and rerun: every step is idempotent.
""",
        schedule="@once",
        start_date=utc(market_plan.cutover),
        catchup=True,
        max_active_runs=1,
        default_args=default_args(),
        deadline=cutover_deadlines(market, market_plan.cutover, PLAN.shutdown),
        tags=[*TAGS, "cutover", market],
    ):

        @task
        def freeze(market: str, logical_date=None) -> str:
            from poco_migration.tasks import freeze

            return freeze(market, logical_date)

        @task
        def final_move(domain: str, market: str, logical_date=None, run_id=None, ti=None) -> dict:
            from poco_migration.tasks import final_move, origin_of

            return final_move(domain, market, logical_date, run_id, origin_of(ti))

        @task
        def audit(market: str, run_id=None) -> dict:
            from poco_migration.tasks import audit

            return audit([market], run_id)

        @task
        def statements(market: str) -> dict:
            from poco_migration.tasks import write_statements

            return write_statements(market)

        @task
        def redirects(market: str) -> dict:
            from poco_migration.tasks import publish_redirects

            return publish_redirects(market)

        @task(outlets=[cutover_asset(market)])
        def cut_over(market: str) -> str:
            return market

        frozen = freeze(market)
        with TaskGroup("final_sync") as final_sync:
            final_move.override(task_id="points")("points", market)
            final_move.override(task_id="reviews")("reviews", market)
            initiatives = final_move.override(task_id="initiatives")("initiatives", market)
            initiatives >> final_move.override(task_id="participants")("participants", market)
        frozen >> final_sync >> audit(market) >> statements(market) >> redirects(market) >> cut_over(market)
