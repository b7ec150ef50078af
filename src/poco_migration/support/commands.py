"""The support commands of ``poco-migration``: ``lookup`` a person, read the ``lookups`` log.

An email given to ``lookup`` is hashed before anything else sees it; ``--email -`` reads it
from standard input, which keeps it out of the shell's history and the process list.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from poco_migration.support.people import MI_ACCOUNT_ID, USER_ID, Query


def add_commands(commands: argparse._SubParsersAction) -> None:
    lookup = commands.add_parser("lookup", help="one person's migration: every POCO row and where it is now")
    key = lookup.add_mutually_exclusive_group(required=True)
    key.add_argument("--user-id", help="the POCO user_id")
    key.add_argument("--mi-account-id", help="the linked Xiaomi mi_account_id")
    key.add_argument("--email", help="the POCO account's email address ('-': read it from standard input)")
    lookup.add_argument("--json", action="store_true", help="print the answer as JSON")
    lookup.set_defaults(run=_lookup)
    lookups = commands.add_parser("lookups", help="who looked up whom, newest first (administrators)")
    lookups.add_argument("--limit", type=int, default=50)
    lookups.set_defaults(run=_lookups)


def query_of(args: argparse.Namespace) -> Query:
    if args.email is not None:
        return Query.email(sys.stdin.readline() if args.email == "-" else args.email)
    if args.user_id is not None:
        return Query.number(USER_ID, args.user_id)
    return Query.number(MI_ACCOUNT_ID, args.mi_account_id)


def _lookup(args: argparse.Namespace) -> int:
    from poco_migration.connections import configured
    from poco_migration.plan import load_plan
    from poco_migration.support import lookup, lookup_log

    try:
        query = query_of(args)
    except ValueError as exc:
        print(f"lookup: {exc}", file=sys.stderr)
        return 2
    source, target = configured()
    result = lookup.look_up(source, target, load_plan(), query)
    lookup_log.record(target, query, [p["user_id"] for p in result["people"]], getpass.getuser(), "cli")
    print(json.dumps(result, indent=2) if args.json else lookup.render_text(result))
    return 0 if result["people"] else 1


def _lookups(args: argparse.Namespace) -> int:
    from poco_migration.connections import configured
    from poco_migration.support import lookup_log

    rows = lookup_log.recent(configured()[1], args.limit)
    for row in rows:
        asked = row["query"] if row["query"] is not None else "(an email)"
        users = ", ".join(map(str, row["users"])) or "nobody"
        when = f"{row['asked_at']:%Y-%m-%d %H:%M:%S} UTC"
        print(f"{when} {row['asked_by']} via {row['via']}: {row['kind']} {asked} -> {users}")
    print(f"{len(rows)} lookup{'' if len(rows) == 1 else 's'}")
    return 0
