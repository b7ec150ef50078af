"""The reconciliation report: what is where, per market and domain, on both sides.

Every in-scope source row must be moved or quarantined; ``drift`` counts the ones
that are neither (zero when the migration is complete and nothing has changed
since), and for points the difference between the converted POCO balances and
what the Xiaomi ledger holds.

"In scope" follows the contract's rules for rows that change after their move: a
row in scope now, or one that was in scope once and was moved or quarantined
(``retained``: a moved review deleted since, which is ``removed`` on Xiaomi; a
quarantined account whose balance went to 0; a moved initiative cancelled since)
stays where it is and is counted there. A moved account that became invalid
(negative, unlinked) is ``held``: its credit stays in the ledger, reported apart
from the drift.

The unlinked users with points (``support.unlinked``), read from POCO as it is now, follow
the points: the most common support case, and what becomes of their points at the shutdown.

What the migration published outside both databases closes the report: each market's
statement per user and redirect map as its cutover wrote them, the POCO Store app's
retirement and the source's archive (``publications``), so that whoever is on call sees the
whole state in one place.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poco_migration import overview, publications, schemas
from poco_migration.config_files import PROJECT
from poco_migration.moves.move import Move
from poco_migration.moves.points import convert
from poco_migration.moves.rules import fits_int32
from poco_migration.moves.sql import KEYS_PER_QUERY, chunked, market_expr
from poco_migration.moves.types import MoveRequest
from poco_migration.plan import Plan
from poco_migration.support import unlinked

LEGEND = (
    "in scope: rows due to move now, plus retained ones (in scope once, moved or quarantined, then deleted, "
    "zeroed or cancelled on POCO); moved: in the Xiaomi tables; quar.: in the quarantine; out: out of scope, "
    "left on POCO; drift: in scope - moved - quarantined (0 when every row is in exactly one place)"
)
POINTS_LEGEND = (
    "POCO points: balances of valid accounts at the market's rate, rounded half up; credited: the ledger's sum "
    "for those accounts; held: accounts moved, then invalid on POCO (negative, unlinked), whose credit stays"
)
UNLINKED_LEGEND = (
    "unlinked: POCO accounts holding points (balance > 0) whose user has no Mi account linked, or no user row, "
    "read from POCO now (first: the lowest user ids, emails masked); linked before the market's cutover, they "
    "move at its next sync; after it, they stay in the quarantine under unlinked_account, the archive keeps the "
    "POCO balance, and a claim goes through support with the POCO user id"
)
STATEMENTS_LEGEND = (
    "users: lines of the market's statement (CSV and JSONL, written at its cutover, no email), one per user with a "
    "points, review or participation row of the market; points after: their credits (held ones included); "
    "reviews, particip.: rows moved; not moved: rows quarantined or held, each with the action to take; "
    "published: when (UTC); -: not yet"
)
REDIRECTS_LEGEND = (
    "URLs: POCO URLs in the market's redirect map (nginx map and CSV, written at its cutover); probed: asked over "
    "HTTP; 301s: answered exactly one 301 to their target (fewer than probed: the cutover failed); published: when "
    "(UTC); -: not yet"
)
SHUTDOWN_LEGEND = (
    "app: the POCO Store app's API endpoints answering 410 Gone with the end-of-life notice; archive: the POCO "
    "source as gzip CSV per table, rows per table; verified: every file matches its SHA256SUMS now (mismatch: "
    "those files differ; missing: the archive is not on this machine)"
)


def default_json_path() -> Path:
    return Path(os.environ.get("POCO_MIGRATION_REPORT", PROJECT / "var" / "report.json"))


def _target_counts(target: Engine) -> tuple[dict, dict]:
    m, q = schemas.moved, schemas.quarantine
    moved: dict[tuple[str, str], int] = defaultdict(int)
    reasons: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    with target.connect() as conn:
        for domain, market, n in conn.execute(
            sa.select(m.c.domain, m.c.market, sa.func.count()).group_by(m.c.domain, m.c.market)
        ).tuples():
            moved[domain, market] = n
        for domain, market, reason, n in conn.execute(
            sa.select(q.c.domain, q.c.market, q.c.reason, sa.func.count()).group_by(q.c.domain, q.c.market, q.c.reason)
        ).tuples():
            reasons[domain, market][reason] = n
    return moved, reasons


def _retained(src: Connection, target: Connection, move: Move, req: MoveRequest) -> int:
    """How many of the market's rows out of scope now are moved or quarantined all the same."""
    m, q = schemas.moved, schemas.quarantine
    refs = src.execution_options(stream_results=True, yield_per=KEYS_PER_QUERY).execute(move.out_of_scope_refs(req))
    found = 0
    for chunk in chunked(refs.scalars(), KEYS_PER_QUERY):
        kept = sa.union(
            sa.select(m.c.source_ref).where(m.c.domain == move.domain, m.c.source_ref.in_(chunk)),
            sa.select(q.c.source_ref).where(q.c.domain == move.domain, q.c.source_ref.in_(chunk)),
        ).subquery()
        found += target.execute(sa.select(sa.func.count()).select_from(kept)).scalar_one()
    return found


@dataclass
class _Points:
    """One market's points: converted balances of valid accounts against their credits."""

    source: int = 0
    target: int = 0
    held: int = 0
    held_points: int = 0

    def as_json(self) -> dict[str, int]:
        return {"source": self.source, "target": self.target, "held": self.held, "held_points": self.held_points}


def _accounts(source: Engine, plan: Plan) -> Iterator[tuple[int, str, int | None, bool]]:
    """(user_id, market, balance, linked) of every POCO account, in user_id order."""
    a, u = schemas.poco_points_accounts, schemas.poco_users
    query = (
        sa.select(a.c.user_id, market_expr(u.c.market, plan), a.c.balance, u.c.mi_account_id.is_not(None))
        .select_from(a.outerjoin(u, u.c.user_id == a.c.user_id))
        .order_by(a.c.user_id)
    )
    with source.connect() as conn:
        yield from conn.execution_options(stream_results=True, yield_per=10_000).execute(query).tuples()


def _credited(target: Engine) -> Iterator[tuple[int, str, int]]:
    """(user_id, market, credited) of every account the migration credited, in user_id order."""
    b = schemas.points_balances
    query = sa.select(b.c.user_id, b.c.market, b.c.credited).order_by(b.c.user_id)
    with target.connect() as conn:
        yield from conn.execution_options(stream_results=True, yield_per=10_000).execute(query).tuples()


def _points(source: Engine, target: Engine, plan: Plan) -> dict[str, dict[str, int]]:
    """Each account's converted balance against its credit, joined by user_id as both streams go
    (memory flat), in exact integer arithmetic."""
    totals = {m: _Points() for m in plan.codes}
    credits = _credited(target)
    pending = next(credits, None)
    for user_id, market, balance, linked in _accounts(source, plan):
        while pending is not None and pending[0] < user_id:  # credited, but no POCO account now
            totals[pending[1]].target += pending[2]
            pending = next(credits, None)
        credited = 0
        if pending is not None and pending[0] == user_id:
            credited, pending = pending[2], next(credits, None)
        credit = None
        if balance is not None and balance >= 0 and linked:
            credit = convert(balance, plan.market(market).conversion_rate)
        if credit is not None and fits_int32(credit):
            totals[market].source += credit
            totals[market].target += credited
        elif credited:
            totals[market].held += 1
            totals[market].held_points += credited
    for _, market, credited in [*([pending] if pending else []), *credits]:
        totals[market].target += credited
    report = {market: t.as_json() for market, t in totals.items()}
    with target.connect() as conn:
        ledger: int = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(schemas.mi_points_ledger.c.delta), 0))
        ).scalar_one()
    report["ALL"] = {key: sum(t[key] for t in report.values()) for key in ("source", "target", "held", "held_points")}
    report["ALL"]["ledger"] = int(ledger)
    return report


def _gates(target: Engine) -> dict[str, int]:
    c = schemas.checkpoints
    with target.connect() as conn:
        passed, failed = conn.execute(
            sa.select(sa.func.count().filter(c.c.success.is_(True)), sa.func.count().filter(c.c.success.is_(False)))
        ).one()
    return {"passed": passed, "failed": failed}


def build_report(source: Engine, target: Engine, plan: Plan, check_archive: bool = True) -> dict[str, Any]:
    """What is where, on both sides, with the plan clock and the headline; the archive's
    checksums verified unless ``check_archive`` is false (``publications.latest``)."""
    from poco_migration.moves import MOVES

    schemas.create_target(target)
    moved, reasons = _target_counts(target)
    rows = []
    with source.connect() as src, target.connect() as tgt:
        for market in plan.codes:
            for domain, move in MOVES.items():
                req = MoveRequest(domain, market, plan, as_of=None)  # type: ignore[arg-type]
                in_scope_now: int = src.execute(move.count(req)).scalar_one()
                everything: int = src.execute(move.count(req, in_scope=False)).scalar_one()
                retained = _retained(src, tgt, move, req)
                quarantined = sum(reasons[domain, market].values())
                in_scope = in_scope_now + retained
                rows.append(
                    {
                        "market": market,
                        "domain": domain,
                        "in_scope": in_scope,
                        "retained": retained,
                        "moved": moved[domain, market],
                        "quarantined": quarantined,
                        "quarantine_reasons": dict(sorted(reasons[domain, market].items())),
                        "out_of_scope": everything - in_scope,
                        "drift": in_scope - moved[domain, market] - quarantined,
                    }
                )
    points = _points(source, target, plan)
    keys = ("in_scope", "retained", "moved", "quarantined", "out_of_scope")
    totals = {key: sum(r[key] for r in rows) for key in keys}
    points_drift = sum(abs(p["source"] - p["target"]) for market, p in points.items() if market != "ALL")
    totals["drift"] = sum(abs(r["drift"]) for r in rows) + points_drift
    published = publications.latest(target, plan.codes, check_archive)
    built = {
        "rows": rows,
        "points": points,
        "unlinked": unlinked.by_market(source, plan),
        "gates": _gates(target),
        "totals": totals,
        "publications": published,
    }
    return built | overview.at_a_glance(source, target, plan, built)


def render_text(report: dict[str, Any]) -> str:
    head = (
        f"{'market':<7}{'domain':<14}{'in scope':>9}{'retained':>9}{'moved':>8}{'quar.':>7}{'out':>7}{'drift':>7}"
        "  reasons"
    )
    glance = overview.render_text(report["plan_clock"], report["headline"])
    lines = ["POCO -> Xiaomi reconciliation", glance, "", head, "-" * len(head)]
    for r in report["rows"]:
        reasons = ", ".join(f"{k} {v}" for k, v in r["quarantine_reasons"].items())
        lines.append(
            f"{r['market']:<7}{r['domain']:<14}{r['in_scope']:>9}{r['retained']:>9}{r['moved']:>8}"
            f"{r['quarantined']:>7}{r['out_of_scope']:>7}{r['drift']:>7}  {reasons}"
        )
    lines += [LEGEND, ""]
    lines.append(f"{'market':<7}{'POCO points':>14}{'credited':>14}{'drift':>8}{'held':>6}{'held points':>13}")
    for market, p in report["points"].items():
        lines.append(
            f"{market:<7}{p['source']:>14}{p['target']:>14}{p['source'] - p['target']:>8}{p['held']:>6}"
            f"{p['held_points']:>13}"
        )
    lines += [POINTS_LEGEND, "", *_unlinked_lines(report["unlinked"])]
    published = report["publications"]
    lines += ["", *_statement_lines(published["statements"]), *_redirect_lines(published["redirects"])]
    lines += _shutdown_lines(published["app"], published["archive"])
    t, g = report["totals"], report["gates"]
    lines += [
        "",
        f"in scope {t['in_scope']} (retained {t['retained']}), moved {t['moved']}, quarantined {t['quarantined']}, "
        f"out of scope {t['out_of_scope']}, drift {t['drift']}",
        f"ledger total {report['points']['ALL']['ledger']}; checkpoints passed {g['passed']}, failed {g['failed']}",
    ]
    return "\n".join(lines)


def _unlinked_lines(found: dict[str, dict[str, Any]], shown: int = 3) -> list[str]:
    """Each market's unlinked users with points, and the first few of them."""
    lines = []
    for market, u in found.items():
        first = ", ".join(f"{x['user_id']} ({x['email'] or 'no user row'})" for x in u["users"][:shown])
        more = ", ..." if u["count"] > shown else ""
        line = f"{market:<7}{u['count']:>7} users{u['points']:>14,} POCO points"
        lines.append(f"{line}  first: {first}{more}" if first else line)
    return [*lines, UNLINKED_LEGEND]


def _statement_lines(statements: dict[str, dict[str, Any] | None]) -> list[str]:
    """Each market's statement per user as its cutover wrote it."""
    head = f"{'market':<7}{'users':>8}{'points after':>14}{'reviews':>9}{'particip.':>11}{'not moved':>11}"
    lines = [f"{head}  published"]
    keys = ("users", "points_after", "reviews_moved", "participations_moved", "not_moved", "at")
    for market, s in statements.items():
        users, points, reviews, participations, not_moved, at = (s[k] for k in keys) if s else ("-",) * 6
        lines.append(f"{market:<7}{users:>8}{points:>14}{reviews:>9}{participations:>11}{not_moved:>11}  {at}")
    return [*lines, STATEMENTS_LEGEND]


def _redirect_lines(redirects: dict[str, dict[str, Any] | None]) -> list[str]:
    """Each market's redirect map as its cutover published and probed it."""
    lines = [f"{'market':<7}{'URLs':>8}{'probed':>8}{'301s':>8}  published"]
    for market, r in redirects.items():
        urls, probed, answered, at = (r["urls"], r["probed"], r["answered_301"], r["at"]) if r else ("-",) * 4
        lines.append(f"{market:<7}{urls:>8}{probed:>8}{answered:>8}  {at}")
    return [*lines, REDIRECTS_LEGEND]


def _shutdown_lines(app: dict[str, Any] | None, archive: dict[str, Any] | None) -> list[str]:
    """The POCO Store app's retirement and the source's archive, once the shutdown did them."""
    lines = [
        f"app: {app['answered_410']} endpoints answer 410 Gone since {app['at']} (notice {app['path']})"
        if app
        else "app: not retired yet"
    ]
    if archive:
        rows = archive["rows"]
        total, where = sum(rows.values()), archive["path"]
        lines.append(f"archive: {where}, {total} rows in {len(rows)} tables at {archive['at']}; {archive['checksum']}")
        lines.append("  " + ", ".join(f"{table} {n}" for table, n in rows.items()))
    else:
        lines.append("archive: not written yet")
    return [*lines, SHUTDOWN_LEGEND]


def write_json(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out
