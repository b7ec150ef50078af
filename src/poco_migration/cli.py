"""``poco-migration``: report, plan and the runbook's commands, against the configured connections.

The tools (``poco_migration_tools``) add ``seed``, ``rehearse`` and ``rerun`` through the
entry point group ``poco_migration.commands``: the runtime never imports them by name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points, version
from pathlib import Path

from poco_migration.schemas import DOMAINS
from poco_migration.support.commands import add_commands as support_commands

COMMANDS_GROUP = "poco_migration.commands"
DESCRIPTION = "The POCO -> Xiaomi migration: report, plan, the runbook, and the tools (seed, rehearse, rerun)."

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# The rehearsal prints its own progress; Airflow's per-task chatter stays in the task logs.
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")


def print_report(args: argparse.Namespace) -> int:
    from poco_migration.plan import load_plan
    from poco_migration.report import build_report, default_json_path, render_text, write_json

    source, target = _engines()
    report = build_report(source, target, load_plan())
    print(render_text(report))
    path = write_json(report, args.json or default_json_path())
    print(f"report written to {path}")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from poco_migration.plan import load_plan

    print(json.dumps(load_plan().as_json(), indent=2))
    return 0


def _engines() -> tuple:
    from poco_migration.connections import configured

    return configured()


def _status(args: argparse.Namespace) -> int:
    from poco_migration import overview, status
    from poco_migration.plan import load_plan

    source, target = _engines()
    plan = load_plan()
    glance = overview.glance(source, target, plan)
    print(overview.render_text(glance["plan_clock"], glance["headline"]))
    print(f"wall clock: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    print(status.render_text(status.cells(source, target, plan, args.market or None)))
    for row in status.checkpoints(target, limit=args.checkpoints, market=args.market[0] if args.market else None):
        verdict = "passed" if row["success"] else "FAILED"
        where = f"{row['market']} {row['domain']}.{row['stage']}"
        plan_date = f"{row['plan_date']:%Y-%m-%d}" if row["plan_date"] else "-"
        print(f"{row['checked_at']:%Y-%m-%d %H:%M} UTC (plan {plan_date}) {where} {verdict}: {row['data_docs']}")
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    from poco_migration import status

    source, target = _engines()
    rows = status.quarantine(source, target, reason=args.reason, market=args.market, limit=args.limit)
    for row in rows:
        who = f" user {row['user_id']} {row['email']}" if row["user_id"] is not None else ""
        print(f"{row['market']} {row['domain']} {row['source_ref']} {row['reason']}{who}")
    print(f"{len(rows)} row{'' if len(rows) == 1 else 's'}")
    if not rows and args.reason:
        # Nothing for that reason: say what there is instead of leaving "0 rows" to be guessed at.
        there = status.reasons(target, args.market)
        where = f" in {args.market}" if args.market else ""
        print(f"quarantined{where}: " + (", ".join(f"{r} {n}" for r, n in there.items()) or "nothing"))
    return 0


def _pause(args: argparse.Namespace) -> int:
    """A pause holds a market's syncs and cutover; on a market already cut over there is nothing
    left to hold, and the pause is what a rollback needs first: the message says which."""
    from poco_migration import operations
    from poco_migration.status import frozen_at

    source, target = _engines()
    done = operations.pause(target, args.market, args.reason)
    if not done:
        print(f"{args.market} was paused already")
    elif (frozen := frozen_at(source).get(args.market)) is not None:
        print(
            f"{args.market} paused; it is cut over already (frozen since {frozen:%Y-%m-%d %H:%M}), so no sync "
            f"or cutover of it was left to hold: a rollback (poco-migration rollback {args.market} --yes) may run"
        )
    else:
        print(f"{args.market} paused: syncs skip it, its cutover waits")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from poco_migration import operations

    done = operations.resume(_engines()[1], args.market)
    print(f"{args.market} resumed" if done else f"{args.market} was not paused")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from poco_migration import operations

    if not args.yes:
        print(f"rollback removes everything moved for {args.market} from mi_target: add --yes to do it")
        return 2
    source, target = _engines()
    try:
        removed = operations.rollback(target, source, args.market)
    except operations.OperationRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"{args.market} rolled back: " + ", ".join(f"{k} {v}" for k, v in removed.items()))
    return 0


def _grant_dashboard(args: argparse.Namespace) -> int:
    from poco_migration.access import FAB_READERS, grant_fab_read

    roles = tuple(args.role or FAB_READERS)
    grant_fab_read(roles)
    print(f"{', '.join(roles)} may read the POCO migration dashboard")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from poco_migration.audit.report import publish, render_text
    from poco_migration.audit.run import run_audit
    from poco_migration.plan import load_plan
    from poco_migration.tasks import frozen_markets

    source, target = _engines()
    markets = args.market or sorted(frozen_markets())
    if not markets:
        print("no market has cut over yet: name the markets to audit with --market")
        return 2
    audit = run_audit(source, target, load_plan(), markets, args.domain or DOMAINS)
    print(render_text(audit))
    print(f"audit written to {publish(target, audit, None, args.json and Path(args.json))}")
    return 0 if audit.passed else 1


def date_argument(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="poco-migration", description=DESCRIPTION)
    top.add_argument("--version", action="version", version=f"%(prog)s {version('poco-migration')}")
    commands = top.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="print the reconciliation report")
    report.add_argument("--json", help="where to write the JSON report (default var/report.json)")
    report.set_defaults(run=print_report)
    commands.add_parser("plan", help="print the plan in force as JSON").set_defaults(run=_plan)
    _runbook_commands(commands)
    support_commands(commands)
    for tools in entry_points(group=COMMANDS_GROUP):
        tools.load()(commands)
    return top


def _runbook_commands(commands: argparse._SubParsersAction) -> None:
    """The README's runbook: watch, rerun, release (a rerun after fixing the source), pause, roll back."""
    status = commands.add_parser("status", help="each market's domains: state, rows moved and quarantined")
    status.add_argument("--market", action="append", type=_market, help="only this market (repeatable)")
    status.add_argument("--checkpoints", type=int, default=10, help="how many latest checkpoints to list")
    status.set_defaults(run=_status)
    quarantine = commands.add_parser("quarantine", help="browse quarantined rows (emails masked)")
    quarantine.add_argument("--reason", type=_reason, help="only this reason")
    quarantine.add_argument("--market", type=_market, help="only this market")
    quarantine.add_argument("--limit", type=int, default=50)
    quarantine.set_defaults(run=_quarantine)
    pause = commands.add_parser("pause", help="stop syncing a market and hold its cutover")
    pause.add_argument("market", type=_market)
    pause.add_argument("--reason", required=True, help="why, for the audit trail and the dashboard")
    pause.set_defaults(run=_pause)
    resume = commands.add_parser("resume", help="sync a paused market again")
    resume.add_argument("market", type=_market)
    resume.set_defaults(run=_resume)
    rollback = commands.add_parser("rollback", help="remove a paused market's rows by source_ref")
    rollback.add_argument("market", type=_market)
    rollback.add_argument("--yes", action="store_true", help="really do it")
    rollback.set_defaults(run=_rollback)
    grant = commands.add_parser(
        "grant-dashboard", help="FAB auth manager: let these roles read the dashboard (default: every role)"
    )
    grant.add_argument("--role", action="append", help="a FAB role (repeatable; default Admin, Op, User, Viewer)")
    grant.set_defaults(run=_grant_dashboard)
    audit = commands.add_parser("audit", help="prove the move from outside it: the POCO source against mi_target")
    audit.add_argument(
        "--market", action="append", type=_market, help="this market (repeatable; default: all cut over)"
    )
    audit.add_argument("--domain", action="append", choices=DOMAINS, help="this domain (repeatable)")
    audit.add_argument("--json", help="where to write the JSON (default var/audit.json)")
    audit.set_defaults(run=_audit)


def _market(text: str) -> str:
    """A market code of the plan, in any case (``it`` is IT)."""
    from poco_migration.plan import load_plan

    code = text.strip().upper()
    if code not in load_plan().codes:
        raise argparse.ArgumentTypeError(f"{text!r} is not a market of the plan ({', '.join(load_plan().codes)})")
    return code


def _reason(text: str) -> str:
    from poco_migration.moves import REASONS

    if text not in REASONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a quarantine reason ({', '.join(REASONS)})")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    # GX announces its API registrations at INFO on import; the commands print their own progress.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
