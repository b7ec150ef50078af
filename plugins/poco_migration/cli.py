"""``poco-migration``: seed, rehearse, report and show the plan, against the configured connections."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Sequence

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# The rehearsal prints its own progress; Airflow's per-task chatter stays in the task logs.
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")


def _seed(args: argparse.Namespace) -> int:
    from poco_migration import schemas
    from poco_migration.connections import SOURCE_CONN_ID, TARGET_CONN_ID, engine_for
    from poco_migration.plan import load_plan
    from poco_migration.seed import seed_source

    began = time.monotonic()
    counts = seed_source(engine_for(SOURCE_CONN_ID), scale=args.scale, seed=args.seed, markets=load_plan().codes)
    target = engine_for(TARGET_CONN_ID)
    schemas.TARGET.drop_all(target)
    schemas.BOOKKEEPING.drop_all(target)
    schemas.create_target(target)
    print(", ".join(f"{table} {n}" for table, n in counts.items()))
    print(f"seeded in {time.monotonic() - began:.1f}s; target tables created empty")
    return 0


def _rehearse(args: argparse.Namespace) -> int:
    from poco_migration import schemas
    from poco_migration.connections import TARGET_CONN_ID, engine_for
    from poco_migration.plan import load_plan
    from poco_migration.rehearsal import rehearse

    plan = load_plan()
    schemas.create_target(engine_for(TARGET_CONN_ID))
    began = time.monotonic()
    outcomes = rehearse(plan, args.start, args.end)
    failed = [o for o in outcomes if o.state != "success"]
    print(f"\n{len(outcomes)} runs in {time.monotonic() - began:.0f}s; {len(failed)} failed")
    for outcome in failed:
        print(f"  {outcome.run.day} {outcome.run.dag_id}: {', '.join(outcome.failed_tasks)}")
    _report(args)
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    from poco_migration.connections import SOURCE_CONN_ID, TARGET_CONN_ID, engine_for
    from poco_migration.plan import load_plan
    from poco_migration.report import build_report, default_json_path, render_text, write_json

    report = build_report(engine_for(SOURCE_CONN_ID), engine_for(TARGET_CONN_ID), load_plan())
    print(render_text(report))
    path = write_json(report, args.json or default_json_path())
    print(f"report written to {path}")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from poco_migration.plan import load_plan

    print(json.dumps(load_plan().as_json(), indent=2))
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="poco-migration", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    seed = commands.add_parser("seed", help="fill poco_source with a synthetic POCO platform; empty mi_target")
    seed.add_argument("--scale", type=int, default=1000, help="about this many users (default 1000)")
    seed.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    seed.set_defaults(run=_seed)
    rehearse = commands.add_parser("rehearse", help="run every DAG run of the plan between two dates")
    rehearse.add_argument("--from", dest="start", type=_date, help="first day (default: the plan's start)")
    rehearse.add_argument("--to", dest="end", type=_date, help="last day (default: the shutdown)")
    rehearse.add_argument("--json", help="where to write the JSON report")
    rehearse.set_defaults(run=_rehearse)
    report = commands.add_parser("report", help="print the reconciliation report")
    report.add_argument("--json", help="where to write the JSON report (default var/report.json)")
    report.set_defaults(run=_report)
    commands.add_parser("plan", help="print the plan in force as JSON").set_defaults(run=_plan)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    # GX announces its API registrations at INFO on import; the commands print their own progress.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
