"""DAG integrity: the files parse, declare the plan's DAGs, and do no work at parse time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

from poco_migration.dag_common import BULK_DAG_ID, OWNER, SHUTDOWN_DAG_ID, SYNC_DAG_ID, cutover_dag_id
from poco_migration.plan import load_plan


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dagbag_has_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_every_dag_of_the_plan_is_declared(dagbag) -> None:
    expected = {SYNC_DAG_ID, SHUTDOWN_DAG_ID, BULK_DAG_ID, *(cutover_dag_id(m) for m in load_plan().codes)}
    assert set(dagbag.dag_ids) == expected


def test_every_task_has_an_owner_and_retries_with_backoff(dagbag) -> None:
    for dag in dagbag.dags.values():
        assert dag.doc_md, dag.dag_id
        assert "poco-migration" in dag.tags, dag.dag_id
        for task in dag.tasks:
            assert task.owner == OWNER, task.task_id
            assert task.retries == 2, task.task_id
            assert task.retry_exponential_backoff, task.task_id


def test_the_dags_know_every_move_in_its_order() -> None:
    from poco_migration.moves import MOVES
    from poco_migration.schemas import DOMAINS

    assert tuple(MOVES) == DOMAINS == ("points", "reviews", "initiatives", "participants")


def test_sync_runs_daily_from_the_first_wave_and_never_overlaps(dagbag) -> None:
    dag = dagbag.dags[SYNC_DAG_ID]
    assert dag.start_date.date() == load_plan().start
    assert dag.catchup is True
    assert dag.max_active_runs == 1


def test_sync_maps_its_move_over_the_days_markets_named_by_market(dagbag) -> None:
    """One task instance per market, shown under the market's code: a refused market fails its
    own instance, and clearing it reruns that market alone."""
    dag = dagbag.dags[SYNC_DAG_ID]
    assert {t.task_id for t in dag.tasks} == {"markets", "move"}
    assert dag.get_task("markets").is_mapped is False
    move = dag.get_task("move")
    assert move.is_mapped
    assert move.upstream_task_ids == {"markets"}
    assert move.partial_kwargs["map_index_template"] == "{{ task.op_kwargs['market'] }}"


def test_cutover_freezes_moves_audits_states_redirects_then_publishes_its_asset(dagbag) -> None:
    dag = dagbag.dags[cutover_dag_id("IT")]
    assert dag.start_date.date() == load_plan().market("IT").cutover
    moves = {f"final_sync.{domain}" for domain in ("points", "reviews", "initiatives", "participants")}
    assert {t.task_id for t in dag.tasks} == {"freeze", *moves, "audit", "statements", "redirects", "cut_over"}
    assert dag.get_task("final_sync.points").upstream_task_ids == {"freeze"}
    assert dag.get_task("final_sync.participants").upstream_task_ids == {"final_sync.initiatives"}
    assert dag.get_task("audit").upstream_task_ids == {
        "final_sync.points",
        "final_sync.reviews",
        "final_sync.participants",
    }
    assert dag.get_task("statements").upstream_task_ids == {"audit"}
    assert dag.get_task("redirects").upstream_task_ids == {"statements"}
    assert dag.get_task("cut_over").upstream_task_ids == {"redirects"}
    outlets = dag.get_task("cut_over").outlets
    assert [o.name for o in outlets] == ["poco_cutover_IT"]


def test_shutdown_waits_for_every_cutover_asset(dagbag) -> None:
    dag = dagbag.dags[SHUTDOWN_DAG_ID]
    names = {asset.name for asset in dag.timetable.asset_condition.objects}
    assert names == {f"poco_cutover_{m}" for m in load_plan().codes}
    assert (
        dag.get_task("final_report").upstream_task_ids == dag.get_task("audit").upstream_task_ids == {"archive_source"}
    )


def test_manual_params_are_validated_by_schema(dagbag) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    params = dagbag.dags[SYNC_DAG_ID].params
    assert params.validate() == {"markets": [], "domains": [], "dry_run": False}
    assert params.get_param("domains").resolve(["points"]) == ["points"]
    with pytest.raises(ParamValidationError):
        params.get_param("domains").resolve(["coupons"])
    markets = params.get_param("markets")
    assert markets.resolve(["IT", "GL"]) == ["IT", "GL"]
    with pytest.raises(ParamValidationError, match="'XX' is not one of"):
        markets.resolve(["XX"])
    with pytest.raises(ParamValidationError):
        params.get_param("dry_run").resolve("yes")


HEAVY = ("great_expectations", "pandas", "psycopg", "requests")


def test_dag_files_import_no_heavy_module_at_parse_time() -> None:
    """Parsing every DAG file must not import GX, pandas or a database driver."""
    script = f"""
import json, runpy, sys, pathlib
for path in sorted(pathlib.Path({str(REPO / "dags")!r}).glob("*.py")):
    runpy.run_path(str(path))
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_cutovers_and_the_shutdown_alert_when_they_run_late(dagbag) -> None:
    import datetime as dt

    def fixed(alert) -> dt.datetime:
        return dt.datetime.fromtimestamp(alert.reference.serialize_reference()["datetime"], dt.UTC)

    plan = load_plan()
    for market in plan.cutovers():
        late, at_risk = dagbag.dags[cutover_dag_id(market.market)].deadline
        assert (late.name, late.interval) == ("cutover_late", dt.timedelta(days=1))
        assert late.callback.path == "poco_migration.alerts.deadline_missed"
        assert late.callback.kwargs == {
            "what": f"the cutover of {market.market} is not done by the end of {market.cutover}"
        }
        assert at_risk.name == "shutdown_at_risk"
        assert fixed(at_risk) == dt.datetime(2024, 12, 29, tzinfo=dt.UTC)
    [late] = dagbag.dags[SHUTDOWN_DAG_ID].deadline
    assert fixed(late) == dt.datetime(2024, 12, 31, 23, tzinfo=dt.UTC)


def test_a_missed_deadline_alerts_once_with_what_is_late() -> None:
    import asyncio

    from webhook_sink import webhook_sink

    from poco_migration.alerts import deadline_missed

    with webhook_sink() as (url, received), pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_MIGRATION_ALERTS", json.dumps({"conn_type": "http", "extra": {"url": url}}))
        run = {"dag_id": "poco_migration_cutover_it", "run_id": "scheduled__2024-11-29", "logical_date": "2024-11-29"}
        asyncio.run(deadline_missed({"dag_run": run}, what="the cutover of IT is not done by the end of 2024-11-29"))
    [alert] = received
    assert alert["text"] == ":alarm_clock: POCO migration: the cutover of IT is not done by the end of 2024-11-29"
    assert (alert["dag_id"], alert["run_id"]) == ("poco_migration_cutover_it", "scheduled__2024-11-29")


def test_bulk_maps_each_domain_over_the_markets_and_participants_wait_for_initiatives(dagbag) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    dag = dagbag.dags[BULK_DAG_ID]
    assert dag.timetable.can_be_scheduled is False
    assert dag.catchup is False
    moves = [f"move_{domain}" for domain in ("points", "reviews", "initiatives", "participants")]
    for task_id in moves:
        task = dag.get_task(task_id)
        assert task.is_mapped, task_id
        assert "markets" in task.upstream_task_ids, task_id
    assert dag.get_task("move_participants").upstream_task_ids == {"markets", "move_initiatives"}
    assert dag.get_task("markets").is_mapped is False
    markets = dag.params.get_param("markets")
    assert dag.params.validate()["markets"] == list(load_plan().codes)
    assert markets.resolve(["IT", "PL"]) == ["IT", "PL"]
    with pytest.raises(ParamValidationError):
        markets.resolve(["XX"])


def test_bulk_is_not_a_planned_run_of_the_rehearsal() -> None:
    from poco_migration_tools.rehearsal import planned_runs

    assert BULK_DAG_ID not in {run.dag_id for run in planned_runs(load_plan())}
