"""The reconciliation report: what is where, per market and domain, on both sides.

Every in-scope source row must be moved or quarantined; ``drift`` counts the ones
that are neither (zero when the migration is complete and nothing has changed
since), and for points the difference between the converted POCO balances and
what the Xiaomi ledger holds.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poco_migration import schemas
from poco_migration.moves.checks import fits_int32
from poco_migration.moves.engine import MoveRequest, market_expr
from poco_migration.moves.points import convert
from poco_migration.plan import Plan

REPO = Path(__file__).resolve().parents[2]


def default_json_path() -> Path:
    return Path(os.environ.get("POCO_MIGRATION_REPORT", REPO / "var" / "report.json"))


def _target_counts(target: Engine) -> tuple[dict, dict]:
    m, q = schemas.moved, schemas.quarantine
    moved: dict[tuple[str, str], int] = defaultdict(int)
    reasons: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    with target.connect() as conn:
        for domain, market, n in conn.execute(
            sa.select(m.c.domain, m.c.market, sa.func.count()).group_by(m.c.domain, m.c.market)
        ):
            moved[domain, market] = n
        for domain, market, reason, n in conn.execute(
            sa.select(q.c.domain, q.c.market, q.c.reason, sa.func.count()).group_by(q.c.domain, q.c.market, q.c.reason)
        ):
            reasons[domain, market][reason] = n
    return moved, reasons


def _points(source: Engine, target: Engine, plan: Plan) -> dict[str, dict[str, int]]:
    """Converted POCO balances of moved-eligible accounts against what the ledger credited."""
    a, u, b = schemas.poco_points_accounts, schemas.poco_users, schemas.points_balances
    totals: dict[str, dict[str, int]] = {m: {"source": 0, "target": 0} for m in plan.codes}
    valid = sa.and_(a.c.balance > 0, u.c.mi_account_id.is_not(None))
    query = (
        sa.select(market_expr(u.c.market, plan).label("market"), a.c.balance)
        .select_from(a.join(u, u.c.user_id == a.c.user_id))
        .where(valid)
    )
    with source.connect() as conn:
        for market, balance in conn.execution_options(stream_results=True, yield_per=10_000).execute(query):
            credit = convert(balance, plan.market(market).conversion_rate)
            totals[market]["source"] += credit if fits_int32(credit) else 0  # out_of_range: quarantined
    with target.connect() as conn:
        for market, credited in conn.execute(sa.select(b.c.market, sa.func.sum(b.c.credited)).group_by(b.c.market)):
            totals.setdefault(market, {"source": 0, "target": 0})["target"] = int(credited or 0)
        ledger = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(schemas.mi_points_ledger.c.delta), 0))).scalar()
    totals["ALL"] = {
        "source": sum(t["source"] for t in totals.values()),
        "target": sum(t["target"] for t in totals.values()),
        "ledger": int(ledger),
    }
    return totals


def _gates(target: Engine) -> dict[str, int]:
    c = schemas.checkpoints
    with target.connect() as conn:
        passed, failed = conn.execute(
            sa.select(sa.func.count().filter(c.c.success.is_(True)), sa.func.count().filter(c.c.success.is_(False)))
        ).one()
    return {"passed": passed, "failed": failed}


def build_report(source: Engine, target: Engine, plan: Plan) -> dict[str, Any]:
    from poco_migration.moves import MOVES

    schemas.create_target(target)
    moved, reasons = _target_counts(target)
    rows = []
    with source.connect() as conn:
        for market in plan.codes:
            for domain, move in MOVES.items():
                req = MoveRequest(domain, market, plan, as_of=None)  # type: ignore[arg-type]
                in_scope = conn.execute(move.count(req)).scalar_one()
                everything = conn.execute(move.count(req, in_scope=False)).scalar_one()
                quarantined = sum(reasons[domain, market].values())
                rows.append(
                    {
                        "market": market,
                        "domain": domain,
                        "in_scope": in_scope,
                        "moved": moved[domain, market],
                        "quarantined": quarantined,
                        "quarantine_reasons": dict(sorted(reasons[domain, market].items())),
                        "out_of_scope": everything - in_scope,
                        "drift": in_scope - moved[domain, market] - quarantined,
                    }
                )
    points = _points(source, target, plan)
    totals = {key: sum(r[key] for r in rows) for key in ("in_scope", "moved", "quarantined", "out_of_scope")}
    totals["drift"] = sum(abs(r["drift"]) for r in rows) + abs(points["ALL"]["source"] - points["ALL"]["target"])
    return {"rows": rows, "points": points, "gates": _gates(target), "totals": totals}


def render_text(report: dict[str, Any]) -> str:
    head = f"{'market':<7}{'domain':<14}{'in scope':>9}{'moved':>8}{'quar.':>7}{'out':>7}{'drift':>7}  reasons"
    lines = ["POCO -> Xiaomi reconciliation", "", head, "-" * len(head)]
    for r in report["rows"]:
        reasons = ", ".join(f"{k} {v}" for k, v in r["quarantine_reasons"].items())
        lines.append(
            f"{r['market']:<7}{r['domain']:<14}{r['in_scope']:>9}{r['moved']:>8}{r['quarantined']:>7}"
            f"{r['out_of_scope']:>7}{r['drift']:>7}  {reasons}"
        )
    lines += ["", f"{'market':<7}{'POCO points (converted)':>24}{'Mi points credited':>20}{'drift':>8}"]
    for market, p in report["points"].items():
        lines.append(f"{market:<7}{p['source']:>24}{p['target']:>20}{p['source'] - p['target']:>8}")
    t, g = report["totals"], report["gates"]
    lines += [
        "",
        f"in scope {t['in_scope']}, moved {t['moved']}, quarantined {t['quarantined']}, "
        f"out of scope {t['out_of_scope']}, drift {t['drift']}",
        f"ledger total {report['points']['ALL']['ledger']}; checkpoints passed {g['passed']}, failed {g['failed']}",
    ]
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out
