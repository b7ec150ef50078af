"""The migration at a glance: the plan clock and the headline, shown at the top of the
dashboard, of ``status`` and of the report.

Two time bases never share a column: the plan's dates (the logical date of the last run
that moved anything, the next cutover, the days left to the shutdown counted from there)
and the wall clock (when things ran). A dress rehearsal of the 2024 plan run today is at
the plan's dates, however long ago they are on the wall clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poco_migration import alert_log, schemas, status
from poco_migration.plan import Plan
from poco_migration.status import CUT_OVER


def cut_over(cells: list[dict[str, Any]]) -> list[str]:
    """The markets every domain of which is cut over, in plan order."""
    markets = dict.fromkeys(c["market"] for c in cells)
    return [m for m in markets if all(c["state"] == CUT_OVER for c in cells if c["market"] == m)]


def latest_run_date(plan: Plan) -> dt.date | None:
    """The latest logical date of a finished run of the plan's DAGs (the sync, the cutovers,
    the shutdown), from Airflow's metadata: a sync that found nothing new records no move, but
    it did process its day. None where the metadata cannot be read."""
    try:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        from poco_migration.dag_common import dag_ids

        query = sa.select(sa.func.max(DagRun.logical_date)).where(
            DagRun.dag_id.in_(dag_ids(plan)), DagRun.state.in_(("success", "failed"))
        )
        with create_session() as session:
            latest = session.scalar(query)
    except Exception:  # no Airflow metadata here: the moves' own dates say it
        return None
    return latest.date() if latest else None


def plan_clock(conn: Connection | None, plan: Plan, cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the plan stands: the latest logical date processed (a run finished, or a move
    made), the next market to cut over (the first by date that is not cut over yet), and the
    days from the one to the shutdown. Before anything ran, the plan stands at its start."""
    moved = conn.execute(sa.select(sa.func.max(schemas.moves.c.as_of))).scalar() if conn is not None else None
    dates = [d for d in (latest_run_date(plan), moved.date() if isinstance(moved, dt.datetime) else None) if d]
    latest = max(dates, default=None)
    day = latest or plan.start
    done = set(cut_over(cells))
    upcoming = sorted((m.cutover, m.market) for m in plan.cutovers() if m.market not in done)
    return {
        "plan_date": latest.isoformat() if latest else None,
        "next_cutover": {"market": upcoming[0][1], "date": upcoming[0][0].isoformat()} if upcoming else None,
        "shutdown": plan.shutdown.isoformat(),
        "days_to_shutdown": (plan.shutdown - day).days,
    }


def headline(
    conn: Connection | None,
    plan: Plan,
    cells: list[dict[str, Any]],
    report: dict[str, Any] | None,
    clock: dict[str, Any],
) -> dict[str, Any]:
    """Markets cut over out of all; rows moved and quarantined per domain; the report's drift
    over the markets whose wave has started; gates refused; alerts sent, and the refusals
    still open."""
    per_domain = {
        d: {k: sum(c[k] for c in cells if c["domain"] == d) for k in ("moved", "quarantined")} for d in schemas.DOMAINS
    }
    return {
        "markets_cut_over": len(cut_over(cells)),
        "markets": len(plan.codes),
        "domains": per_domain,
        "drift": _drift(report, plan, clock) if report else None,
        "gates_refused": report["gates"]["failed"] if report else 0,
        "alerts_sent": alert_log.sent(conn) if conn is not None else 0,
        "open_alerts": [_shown(o) for o in alert_log.open_refusals(conn)] if conn is not None else [],
    }


def _drift(report: dict[str, Any], plan: Plan, clock: dict[str, Any]) -> int:
    """The report's drift (rows in no place, points not credited) of the markets whose wave has
    started by the plan clock: a market not started yet has everything still to move, which
    is the plan, not drift."""
    day = dt.date.fromisoformat(clock["plan_date"]) if clock["plan_date"] else None
    started = {m for m in plan.codes if day is not None and plan.market(m).wave_start <= day}
    rows = sum(abs(r["drift"]) for r in report["rows"] if r["market"] in started)
    return rows + sum(abs(p["source"] - p["target"]) for m, p in report["points"].items() if m in started)


def _shown(refusal: alert_log.OpenRefusal) -> dict[str, Any]:
    shown = asdict(refusal)
    for key in ("opened_at", "last_sent_at"):
        shown[key] = shown[key].isoformat(sep=" ", timespec="seconds")
    return shown


def at_a_glance(source: Engine, target: Engine, plan: Plan, report: dict[str, Any] | None) -> dict[str, Any]:
    """The plan clock and the headline over every market, with the report's drift and gates
    (None before the target exists: nothing has moved and nothing is read from it)."""
    grid = [asdict(c) for c in status.cells(source, target, plan)]
    with target.connect() as conn:
        ready = report is not None and status.migrated(conn)
        clock = plan_clock(conn if ready else None, plan, grid)
        return {"plan_clock": clock, "headline": headline(conn if ready else None, plan, grid, report, clock)}


def glance(source: Engine, target: Engine, plan: Plan) -> dict[str, Any]:
    """The plan clock and the headline as ``status`` and the dashboard show them: from the
    report (built without rereading the archive) once the target has the bookkeeping; before
    that, from nothing moved, without writing to a target not created yet."""
    from poco_migration.report import build_report  # the report itself shows the glance

    with target.connect() as conn:
        ready = status.migrated(conn)
    if not ready:
        return at_a_glance(source, target, plan, None)
    report = build_report(source, target, plan, check_archive=False)
    return {"plan_clock": report["plan_clock"], "headline": report["headline"]}


def render_text(clock: dict[str, Any], head: dict[str, Any]) -> str:
    """The two lines at the top of ``status`` and of the report, and the refusals still open."""
    nxt = clock["next_cutover"]
    upcoming = f"next cutover {nxt['market']} on {nxt['date']}" if nxt else "every market cut over"
    at = clock["plan_date"] or "not started"
    moved = "; ".join(f"{d} {n['moved']} moved, {n['quarantined']} quarantined" for d, n in head["domains"].items())
    drift = "unknown" if head["drift"] is None else head["drift"]
    lines = [
        f"plan clock: at {at}; {upcoming}; shutdown {clock['shutdown']} in {clock['days_to_shutdown']} plan days",
        f"headline: {head['markets_cut_over']} of {head['markets']} markets cut over; {moved}; drift {drift}; "
        f"gates refused {head['gates_refused']}; alerts sent {head['alerts_sent']}, open {len(head['open_alerts'])}",
    ]
    for a in head["open_alerts"]:
        lines.append(f"open alert: {a['market']} {a['domain']} refused at {a['stage']} since {a['opened_at']} UTC")
    return "\n".join(lines)
