"""What each task of the migration DAGs does. The DAG files only declare structure.

Every function takes plain arguments (a domain, a market, a logical date), so
that it is testable without a scheduler, and returns a small JSON-able summary
that lands in XCom for the UI. A gate failure fails its task without retries
(rerunning a refused move refuses it again until the data is fixed); a database
or network problem raises normally, so Airflow retries it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.connections import SOURCE_CONN_ID, TARGET_CONN_ID, engine_for, sqlalchemy_url
from poco_migration.plan import Plan, load_plan

log = logging.getLogger(__name__)


def _failure(message: str, gates_only: bool) -> Exception:
    """Refused gates fail for good (no retry, one alert); anything else may pass on a retry."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(message) if gates_only else RuntimeError(message)


def as_of(logical_date: dt.datetime) -> dt.datetime:
    """Timestamps in both databases are naive UTC."""
    if logical_date.tzinfo is not None:
        logical_date = logical_date.astimezone(dt.UTC).replace(tzinfo=None)
    return logical_date


def frozen_markets() -> set[str]:
    source = engine_for(SOURCE_CONN_ID)
    state = schemas.poco_market_state
    with source.connect() as conn:
        return set(conn.execute(sa.select(state.c.market).where(state.c.frozen_at.is_not(None))).scalars())


def selected(markets: Iterable[str], params: dict[str, Any] | None) -> list[str]:
    wanted = (params or {}).get("markets") or []
    return [m for m in markets if not wanted or m in wanted]


def move_markets(
    domain: str,
    markets: Iterable[str],
    logical_date: dt.datetime,
    *,
    run_id: str | None = None,
    full: bool = False,
    dry_run: bool = False,
    plan: Plan | None = None,
) -> dict[str, Any]:
    """Move one domain for each market in turn; one market's failure does not stop the others."""
    from poco_migration.moves import MOVES
    from poco_migration.moves.engine import GateFailed, MoveError, MoveRequest, run_move

    plan = plan or load_plan()
    source, target_url = engine_for(SOURCE_CONN_ID), sqlalchemy_url(TARGET_CONN_ID)
    summary: dict[str, Any] = {}
    failures: list[str] = []
    gates_only = True
    markets = list(markets)
    for done, market in enumerate(markets, start=1):
        request = MoveRequest(domain, market, plan, as_of(logical_date), run_id, full=full, dry_run=dry_run)
        try:
            result = run_move(MOVES[domain], request, source, target_url)
        except GateFailed as exc:
            result = exc.result
            failures.append(result.message)
        except MoveError as exc:
            gates_only = False
            failures.append(str(exc))
            log.error("%s", exc)
            continue
        summary[market] = {"status": result.status, "staged": result.staged, **result.changes}
        log.info("[%d/%d markets] %s", done, len(markets), result.message)
        for checkpoint in result.checkpoints:
            verdict = "passed" if checkpoint.success else "FAILED"
            log.info("  checkpoint %s %s; Data Docs: %s", checkpoint.stage, verdict, checkpoint.data_docs)
    if failures:
        message = f"{domain}: {len(failures)} of {len(markets)} markets failed:\n" + "\n".join(failures)
        raise _failure(message, gates_only)
    return summary


def sync(domain: str, logical_date: dt.datetime, run_id: str | None, params: dict[str, Any] | None) -> dict:
    """The daily sync of one domain: every market whose wave has started and that is not frozen."""
    wanted = (params or {}).get("domains") or []
    if wanted and domain not in wanted:
        log.info("%s: not among the domains asked for (%s)", domain, ", ".join(wanted))
        return {}
    plan = load_plan()
    frozen = frozen_markets()
    markets = [m for m in selected(plan.syncing_on(as_of(logical_date).date()), params) if m not in frozen]
    if not markets:
        log.info("%s: no market to sync on %s", domain, logical_date.date())
        return {}
    dry_run = bool((params or {}).get("dry_run"))
    return move_markets(domain, markets, logical_date, run_id=run_id, dry_run=dry_run, plan=plan)


def freeze(market: str, logical_date: dt.datetime) -> str:
    """Set the market read-only on POCO (the migration's only write to the source)."""
    state = schemas.poco_market_state
    source = engine_for(SOURCE_CONN_ID)
    with source.begin() as conn:
        current = conn.execute(sa.select(state.c.frozen_at).where(state.c.market == market)).one_or_none()
        if current is None:
            conn.execute(state.insert().values(market=market, frozen_at=as_of(logical_date)))
        elif current.frozen_at is None:
            conn.execute(state.update().where(state.c.market == market).values(frozen_at=as_of(logical_date)))
    log.info("%s frozen (since %s)", market, current.frozen_at if current and current.frozen_at else logical_date)
    return market


def final_move(domain: str, market: str, logical_date: dt.datetime, run_id: str | None) -> dict:
    """The cutover's final sync: a full move, gated by the full reconciliation."""
    return move_markets(domain, [market], logical_date, run_id=run_id, full=True)


def report(json_path: str | None = None) -> dict[str, Any]:
    from poco_migration.report import build_report, render_text, write_json

    built = build_report(engine_for(SOURCE_CONN_ID), engine_for(TARGET_CONN_ID), load_plan())
    log.info("\n%s", render_text(built))
    if json_path:
        write_json(built, json_path)
    return {"drift": built["totals"]["drift"], "moved": built["totals"]["moved"]}


def check_all_frozen() -> list[str]:
    """The shutdown goes ahead only when every market of the plan is frozen."""
    missing = sorted(set(load_plan().codes) - frozen_markets())
    if missing:
        raise RuntimeError(f"markets not frozen yet: {', '.join(missing)}; run their cutover DAGs first")
    return sorted(load_plan().codes)


def final_report() -> dict[str, Any]:
    from poco_migration.report import default_json_path

    return report(str(default_json_path()))
