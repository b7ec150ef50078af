"""What each task of the migration DAGs does. The DAG files only declare structure.

Every function takes plain arguments (a domain, a market, a logical date), so
that it is testable without a scheduler, and returns a small JSON-able summary
that lands in XCom for the UI. A gate failure fails its task without retries
(rerunning a refused move refuses it again until the data is fixed); a database
or network problem raises normally, so Airflow retries it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.config_files import PROJECT
from poco_migration.connections import SOURCE_CONN_ID, TARGET_CONN_ID, engine_for, sqlalchemy_url
from poco_migration.plan import load_plan

if TYPE_CHECKING:
    from poco_migration.moves.types import TaskOrigin

log = logging.getLogger(__name__)


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


def paused_markets() -> dict[str, str | None]:
    from poco_migration.operations import paused_markets

    with engine_for(TARGET_CONN_ID).connect() as conn:
        return paused_markets(conn)


def skip_if_paused(market: str) -> None:
    """A paused market's cutover waits: its tasks skip until it is resumed and cleared."""
    from airflow.sdk.exceptions import AirflowSkipException

    paused = paused_markets()
    if market in paused:
        raise AirflowSkipException(f"{market} is paused ({paused[market]}): resume it, then clear this run")


def selected(markets: Iterable[str], params: dict[str, Any] | None) -> list[str]:
    wanted = (params or {}).get("markets") or []
    return [m for m in markets if not wanted or m in wanted]


@cache
def bookkeeping_ready(target_url: str) -> None:
    """The target's tables exist and have this version's columns (``schemas.create_target``),
    checked once per process: a version deployed in the middle of the migration finds a target
    an earlier one made, and its first move brings the bookkeeping up to date."""
    target = engine_for(target_url)
    try:
        schemas.create_target(target)
    finally:
        target.dispose()


def move_market(
    domain: str,
    market: str,
    logical_date: dt.datetime,
    *,
    run_id: str | None = None,
    origin: TaskOrigin | None = None,
    full: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """One domain's move of one market, in one task instance, so that a refused market fails
    its own instance and a rerun of it moves it alone. A refusal fails for good (no retry:
    the same data is refused again until it is fixed) and names itself for the alert; any
    other error may pass on a retry. A move that passes resolves the alerts of its refusals."""
    from poco_migration.alert_log import Refusal
    from poco_migration.alerts import GateRefused, announce_resolved
    from poco_migration.moves import MOVES
    from poco_migration.moves.pipeline import run_move
    from poco_migration.moves.types import GateFailed, MoveError, MoveRequest

    request = MoveRequest(
        domain, market, load_plan(), as_of(logical_date), run_id, full=full, dry_run=dry_run, origin=origin
    )
    target = sqlalchemy_url(TARGET_CONN_ID)
    try:
        bookkeeping_ready(target.render_as_string(hide_password=False))
    except sa.exc.OperationalError as exc:  # unreachable: the move says so in its own words
        log.warning("the target's bookkeeping could not be checked: %s", exc.orig or exc)
    try:
        result = run_move(MOVES[domain], request, engine_for(SOURCE_CONN_ID), target)
    except GateFailed as exc:
        _log_checkpoints(exc.result)
        gate = exc.result.failed_gate
        refusals = [Refusal.of(market, domain, gate)] if gate else []
        raise GateRefused(exc.result.message, refusals) from None
    except MoveError as exc:
        raise RuntimeError(str(exc)) from exc
    log.info("%s", result.message)
    _log_checkpoints(result)
    if not dry_run:
        announce_resolved(market, domain, run_id)
    return {"market": market, "status": result.status, "staged": result.staged, **result.changes}


def _log_checkpoints(result: Any) -> None:
    for checkpoint in result.checkpoints:
        verdict = "passed" if checkpoint.success else "FAILED"
        log.info("  checkpoint %s %s; Data Docs: %s", checkpoint.stage, verdict, checkpoint.data_docs)


def origin_of(ti: Any) -> TaskOrigin | None:
    """The task instance a move runs in (None outside Airflow), for the dashboard's links."""
    from poco_migration.moves.types import TaskOrigin

    return TaskOrigin(ti.dag_id, ti.task_id, ti.map_index if ti.map_index is not None else -1) if ti else None


def markets_to_sync(logical_date: dt.datetime, params: dict[str, Any] | None) -> list[str]:
    """The markets the daily sync maps its moves over: those whose wave has started that day,
    not frozen and not paused (or those of a manual trigger's Params among them)."""
    plan = load_plan()
    frozen, paused = frozen_markets(), paused_markets()
    for market, reason in paused.items():
        log.warning("%s is paused (%s); not synced", market, reason)
    day = as_of(logical_date).date()
    markets = [m for m in selected(plan.syncing_on(day), params) if m not in frozen and m not in paused]
    log.info("markets to sync on %s: %s", day, ", ".join(markets) or "none")
    return markets


def sync(
    market: str,
    logical_date: dt.datetime,
    run_id: str | None,
    params: dict[str, Any] | None,
    origin: TaskOrigin | None = None,
) -> dict[str, Any]:
    """The daily sync of one market: each domain (or those of the ``domains`` Param) in order,
    participants after initiatives. One domain refused does not stop the others; the task
    then fails naming every refusal (for good: a retry would be refused again), or, after an
    error that a retry may clear, fails to be retried (each move is idempotent)."""
    from poco_migration.alerts import GateRefused
    from poco_migration.schemas import DOMAINS

    wanted = (params or {}).get("domains") or DOMAINS
    dry_run = bool((params or {}).get("dry_run"))
    done: dict[str, Any] = {}
    refused: list[GateRefused] = []
    errors: list[str] = []
    for domain in (d for d in DOMAINS if d in wanted):
        try:
            done[domain] = move_market(domain, market, logical_date, run_id=run_id, origin=origin, dry_run=dry_run)
        except GateRefused as exc:
            refused.append(exc)
        except RuntimeError as exc:
            log.error("%s", exc)
            errors.append(str(exc))
    if errors:
        raise RuntimeError(f"{market}: {len(errors)} moves failed:\n" + "\n".join([*errors, *map(str, refused)]))
    if refused:
        message = "\n".join(map(str, refused))
        raise GateRefused(message, [r for exc in refused for r in exc.refusals])
    return done


def freeze(market: str, logical_date: dt.datetime) -> str:
    """Set the market read-only on POCO (the migration's only write to the source)."""
    skip_if_paused(market)
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


def final_move(
    domain: str, market: str, logical_date: dt.datetime, run_id: str | None, origin: TaskOrigin | None = None
) -> dict:
    """The cutover's final sync: a full move, gated by the full reconciliation."""
    skip_if_paused(market)
    return move_market(domain, market, logical_date, run_id=run_id, origin=origin, full=True)


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
    """The shutdown's final reconciliation over everything: any drift fails it."""
    from airflow.sdk.exceptions import AirflowFailException

    from poco_migration.report import default_json_path

    summary = report(str(default_json_path()))
    if summary["drift"]:
        raise AirflowFailException(f"final reconciliation: drift {summary['drift']} (see {default_json_path()})")
    return summary


def _rehearsal_dir(name: str) -> Path:
    return Path(os.environ.get("POCO_MIGRATION_OUTPUT", PROJECT / "var")) / name


def write_statements(market: str) -> dict[str, Any]:
    """The market's statement per user (``support.statements``), CSV and JSONL, for the CRM to
    tell each person what moved and what to do about what did not; written after the audit, so
    that it states what was proved, and recorded for the report. The log says counts and paths
    only: the lines are personal data."""
    from poco_migration import publications
    from poco_migration.support.statements import write

    target = engine_for(TARGET_CONN_ID)
    written = write(engine_for(SOURCE_CONN_ID), target, load_plan(), market, _rehearsal_dir("statements"))
    log.info("%s: statements written to %s and %s: %s", market, written.csv, written.jsonl, written.counts)
    publications.record(target, publications.STATEMENTS, written.counts, str(written.csv), market)
    return {**written.counts, "csv": str(written.csv), "jsonl": str(written.jsonl)}


def publish_redirects(market: str) -> dict[str, Any]:
    """Generate, validate and verify the market's redirect map.

    The map is built once: what is validated and written is what is probed. It is
    refused (nothing written) if any POCO URL is uncovered or any target is
    off-host, a POCO URL, a chain or a loop. Then every URL is probed over HTTP
    for exactly one 301 to its target: on ``POCO_REDIRECTS_BASE_URL`` (the live POCO
    web servers) when set, else on a local stand-in serving the generated nginx map.
    What was written and what the probe found are recorded for the report, passed or not.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from poco_migration import publications
    from poco_migration.redirects.build import build_map
    from poco_migration.redirects.outputs import export
    from poco_migration.redirects.probe import probe
    from poco_migration.redirects.rules import load_rules
    from poco_migration.redirects.server import nginx_map_routes, serve
    from poco_migration.redirects.validate import RedirectError

    rules = load_rules()
    source, target = engine_for(SOURCE_CONN_ID), engine_for(TARGET_CONN_ID)
    mapped = list(build_map(source, target, market, rules))
    try:
        exported = export(source, target, market, rules, _rehearsal_dir("redirects"), redirects=mapped)
    except RedirectError as exc:
        raise AirflowFailException(str(exc)) from exc
    log.info("%s: %d redirects written to %s (%s)", market, exported.redirects, exported.nginx_file, exported.by_rule)
    live = os.environ.get("POCO_REDIRECTS_BASE_URL")
    with serve(nginx_map_routes(exported.nginx_file)) as stand_in:
        report = probe(live or stand_in, mapped)
    where = live or "the local stand-in serving the generated map"
    log.info("%s: probed %d URLs on %s in %.1fs", market, len(report.results), where, report.elapsed)
    answered = sum(r.ok for r in report.results)
    probed = {"urls": exported.redirects, "probed": len(report.results), "answered_301": answered}
    publications.record(target, publications.REDIRECTS, probed, str(exported.nginx_file), market)
    if not report.ok:
        shown = "\n".join(f"  {r.url}: {r.reason} {r.detail}" for r in report.failures[:20])
        raise AirflowFailException(f"{market}: {len(report.failures)} redirects failed the probe:\n{shown}")
    return {"redirects": exported.redirects, "probed": len(report.results), "map": str(exported.nginx_file)}


def retire_app() -> dict[str, Any]:
    """Check that the POCO Store app's API answers 410 Gone with the way to the Mi Store.

    On ``POCO_APP_API_BASE_URL`` when set; else on a local stand-in that serves the
    notice generated from the configuration (what the gateway is to be given). Once it
    passes, the retirement is recorded for the report.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from poco_migration import publications
    from poco_migration.redirects.app import app_retirement_notice, check_app_retired
    from poco_migration.redirects.rules import load_rules
    from poco_migration.redirects.server import app_routes, serve

    rules = load_rules()
    out = _rehearsal_dir("app") / "retirement_notice.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(app_retirement_notice(rules), indent=2, default=str) + "\n", encoding="utf-8")
    live = os.environ.get("POCO_APP_API_BASE_URL")
    with serve(app_routes(rules)) as stand_in:
        result = check_app_retired(live or stand_in, rules)
    if not result.ok:
        raise AirflowFailException("the POCO Store app is not retired: " + "; ".join(result.failures))
    log.info("POCO Store app retired: %d endpoints answer 410 Gone; notice in %s", len(result.checked), out)
    counts = {"answered_410": len(result.checked)}
    publications.record(engine_for(TARGET_CONN_ID), publications.APP, counts, str(out))
    return {"checked": list(result.checked), "notice": str(out)}


def archive_source(logical_date: dt.datetime) -> dict[str, Any]:
    """The compressed, checksummed export of the whole POCO source, kept for retention; once
    verified, recorded for the report (its path and rows per table)."""
    from poco_migration import publications
    from poco_migration.archive import export_source, verify

    out = _rehearsal_dir("archive") / f"poco_source_{as_of(logical_date):%Y%m%d}"
    counts = export_source(engine_for(SOURCE_CONN_ID), out)
    if bad := verify(out):
        raise RuntimeError(f"archive {out}: checksum mismatch right after writing: {', '.join(bad)}")
    log.info("POCO source archived to %s: %s", out, counts)
    publications.record(engine_for(TARGET_CONN_ID), publications.ARCHIVE, {"rows": counts}, str(out))
    return {"path": str(out), "rows": counts}


def audit(markets: list[str] | None, run_id: str | None) -> dict[str, Any]:
    """The independent audit (``poco_migration.audit``) of the given markets, default all of the
    plan's: any difference fails the task for good, which sends one alert naming what differs."""
    from airflow.sdk.exceptions import AirflowFailException

    from poco_migration.audit.report import publish, render_text
    from poco_migration.audit.run import run_audit

    plan, target = load_plan(), engine_for(TARGET_CONN_ID)
    result = run_audit(engine_for(SOURCE_CONN_ID), target, plan, markets or plan.codes)
    path = publish(target, result, run_id)
    log.info("\n%s", render_text(result))
    differing = [c for c in result.cells() if c["verdict"] != "passed"]
    if differing:
        shown = [f"{c['market']} {c['domain']}: {c['differences']} ({c['by_kind']})" for c in differing]
        raise AirflowFailException(f"audit: POCO and Xiaomi differ (see {path}):\n" + "\n".join(shown))
    return {"markets": result.markets, "compared": sum(c["compared"] for c in result.cells()), "verdict": "passed"}
