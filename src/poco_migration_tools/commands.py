"""The tools' commands of ``poco-migration``: ``seed``, ``rehearse`` and ``rerun``.

Registered through the entry point group ``poco_migration.commands`` (pyproject), so
that the runtime's CLI offers them without importing the tools by name.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from poco_migration.cli import date_argument, print_report


def register(commands: Any) -> None:
    """Add the tools' subcommands to the runtime CLI's subparsers."""
    seed = commands.add_parser("seed", help="fill poco_source with a synthetic POCO platform; empty mi_target")
    seed.add_argument("--scale", type=int, default=1000, help="about this many users (default 1000)")
    seed.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    seed.set_defaults(run=_seed)
    rehearse = commands.add_parser("rehearse", help="run every DAG run of the plan between two dates")
    rehearse.add_argument("--from", dest="start", type=date_argument, help="first day (default: the plan's start)")
    rehearse.add_argument("--to", dest="end", type=date_argument, help="last day (default: the shutdown)")
    rehearse.add_argument(
        "--dag", action="append", dest="dags", help="only this DAG's runs (repeatable; default: every DAG's)"
    )
    rehearse.add_argument("--json", help="where to write the JSON report")
    rehearse.set_defaults(run=_rehearse)
    rerun = commands.add_parser("rerun", help="run one DAG run again, every task of it, in this process")
    rerun.add_argument("dag_id")
    rerun.add_argument("date", type=date_argument, help="the run's logical date (YYYY-MM-DD)")
    rerun.set_defaults(run=_rerun)


def _seed(args: argparse.Namespace) -> int:
    from poco_migration import schemas
    from poco_migration.connections import SOURCE_CONN_ID, TARGET_CONN_ID, engine_for
    from poco_migration.plan import load_plan
    from poco_migration_tools.seed import seed_source

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
    from poco_migration.dag_common import dag_ids
    from poco_migration.plan import load_plan
    from poco_migration_tools.rehearsal import rehearse

    plan = load_plan()
    unknown = sorted(set(args.dags or ()) - set(dag_ids(plan)))
    if unknown:
        print(f"no such DAG in the plan: {', '.join(unknown)} (the plan's: {', '.join(dag_ids(plan))})")
        return 2
    schemas.create_target(engine_for(TARGET_CONN_ID))
    began = time.monotonic()
    outcomes = rehearse(plan, args.start, args.end, args.dags)
    failed = [o for o in outcomes if o.state != "success"]
    print(f"\n{len(outcomes)} runs in {time.monotonic() - began:.0f}s; {len(failed)} failed")
    for outcome in failed:
        print(f"  {outcome.run.day} {outcome.run.dag_id}: {', '.join(outcome.failed_tasks)}")
    print_report(args)
    return 1 if failed else 0


def _rerun(args: argparse.Namespace) -> int:
    from poco_migration_tools.rehearsal import rerun

    outcome = rerun(args.dag_id, args.date)
    failed = f" ({', '.join(outcome.failed_tasks)})" if outcome.failed_tasks else ""
    print(f"{args.date} {args.dag_id}: {outcome.state}{failed}; {outcome.summary}")
    return 0 if outcome.state == "success" else 1
