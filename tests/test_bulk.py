"""The bulk-load DAG run by Airflow itself (dag.test): each domain's task is mapped over
the chosen markets, one task instance per market, and together they leave those markets
exactly as full moves do: every in-scope row moved or quarantined, the points credited
as converted, and nothing of the markets not asked for."""

from __future__ import annotations

import datetime as dt
import logging

from conftest import REPO

from poco_migration.cli import main
from poco_migration.connections import SOURCE_CONN_ID, TARGET_CONN_ID, engine_for
from poco_migration.dag_common import BULK_DAG_ID, REHEARSAL_ENV
from poco_migration.plan import load_plan
from poco_migration.report import build_report
from poco_migration.schemas import DOMAINS

CHOSEN = ["IT", "PL"]


def test_bulk_dag_maps_the_moves_over_the_markets_and_moves_them_in_full(connections, monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import upgradedb

    assert main(["seed", "--scale", "200", "--seed", "3"]) == 0
    monkeypatch.setenv(REHEARSAL_ENV, "1")  # no retries, no deadlines under dag.test()
    upgradedb()
    logging.getLogger("airflow").setLevel(logging.WARNING)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    run = bag.dags[BULK_DAG_ID].test(logical_date=dt.datetime(2024, 12, 1, tzinfo=dt.UTC), run_conf={"markets": CHOSEN})
    assert str(run.state) == "success", [(ti.task_id, ti.map_index, ti.state) for ti in run.get_task_instances()]

    instances = run.get_task_instances()
    for domain in DOMAINS:
        mapped = sorted(ti.map_index for ti in instances if ti.task_id == f"move_{domain}")
        assert mapped == [0, 1], domain
    assert all(ti.state == "success" for ti in instances)

    report = build_report(engine_for(SOURCE_CONN_ID), engine_for(TARGET_CONN_ID), load_plan())
    assert report["gates"]["failed"] == 0
    for row in report["rows"]:
        if row["market"] in CHOSEN:
            assert row["moved"] + row["quarantined"] == row["in_scope"], row
            assert row["drift"] == 0, row
        else:
            assert row["moved"] == row["quarantined"] == 0, row
    for market in CHOSEN:
        assert sum(r["moved"] for r in report["rows"] if r["market"] == market) > 0, market
        assert report["points"][market]["source"] == report["points"][market]["target"] > 0, market
    assert report["points"]["ALL"]["ledger"] == sum(report["points"][m]["target"] for m in CHOSEN)
