"""Alerts to ``migration_alerts`` when a task of the migration fails for good.

The connection is an HTTP(S) endpoint that takes a JSON POST; the payload carries
a Slack-compatible ``text``, so a Slack incoming-webhook URL works as it is. The
notifier is Airflow's failure callback, which runs once when a task has failed
its last try, not on every retry. Without the connection the alert is logged at
ERROR level: never dropped silently.

Email is the second channel: when the SMTP connection ``migration_alerts_smtp``
exists (its extra names ``to`` and ``from_email``), the same alert goes out through
the SMTP provider's notifier too. Deadlines missed (a cutover not done by its date,
the shutdown at risk) come through ``deadline_missed``, Airflow's deadline callback.

A gate's refusal is alerted once while it lasts, and resolved once (``alert_log``); every
alert sent is logged in the target's bookkeeping, for the dashboard.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from poco_migration import alert_log
from poco_migration.alert_log import FAILED, LATE, REFUSED, REMINDER, RESOLVED, Refusal
from poco_migration.connections import ALERTS_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10
SMTP_CONN_ID = "migration_alerts_smtp"
ICONS = {
    FAILED: ":rotating_light:",
    REFUSED: ":rotating_light:",
    REMINDER: ":repeat:",
    RESOLVED: ":white_check_mark:",
    LATE: ":alarm_clock:",
}
T = TypeVar("T")


class GateRefused(AirflowFailException):
    """A move its gates refused: it fails for good (a retry would be refused again), and it
    says which refusals, so that the alert goes once per refusal, not once per day."""

    def __init__(self, message: str, refusals: list[Refusal]) -> None:
        super().__init__(message)
        self.refusals = refusals


def _with_log(use: Callable[[Connection], T], otherwise: T) -> T:
    """``use`` on a transaction of the target's alert log; ``otherwise`` when the log cannot be
    used (the target unreachable, or made before the log existed): an alert never waits on
    its log, it goes unfiltered and uncounted instead."""
    from poco_migration.connections import TARGET_CONN_ID, engine_for

    try:
        engine = engine_for(TARGET_CONN_ID)
        try:
            with engine.begin() as conn:
                return use(conn)
        finally:
            engine.dispose()
    except Exception:
        log.exception("the alert log in the target cannot be used; alerting without it")
        return otherwise


def endpoint(conn_id: str = ALERTS_CONN_ID) -> tuple[str, tuple[str, str] | None] | None:
    """The URL (and basic auth) of the alerts connection, or None when it is not configured."""
    from airflow.sdk import Connection

    try:
        conn = Connection.get(conn_id)
    except Exception:  # not defined anywhere: alerts are logged instead
        return None
    url = (conn.extra_dejson or {}).get("url")
    if not url:
        port = f":{conn.port}" if conn.port else ""
        path = f"/{conn.schema}" if conn.schema else ""
        url = f"{conn.conn_type}://{conn.host}{port}{path}"
    return url, (conn.login, conn.password) if conn.login else None


def refused_checkpoints(run_id: str | None, refusal: Refusal | None = None) -> list[dict[str, Any]]:
    """The run's failed checkpoints, from the bookkeeping: market, domain, stage, how many
    expectations were evaluated and failed, what failed (observed values), the Data Docs
    page. Empty when the target cannot be read (the alert still goes)."""
    import sqlalchemy as sa

    from poco_migration import schemas
    from poco_migration.connections import TARGET_CONN_ID, engine_for

    c = schemas.checkpoints
    columns = (c.c.market, c.c.domain, c.c.stage, c.c.evaluated, c.c.failed, c.c.failures, c.c.data_docs)
    query = sa.select(*columns).where(c.c.run_id == run_id, c.c.success.is_(False))
    if refusal is not None:
        query = query.where(c.c.market == refusal.market, c.c.domain == refusal.domain, c.c.stage == refusal.stage)
    try:
        with engine_for(TARGET_CONN_ID).connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.order_by(c.c.id))]
    except Exception:  # an alert about a broken target must not fail on the broken target
        log.exception("could not read the failed checkpoints of run %s", run_id)
        return []


def payload(context: Mapping[str, Any], refusal: Refusal | None = None, kind: str = FAILED) -> dict[str, Any]:
    """What an operator needs to act: which DAG, task, market, run, which gates refused, and why."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    dag_id, task_id = getattr(ti, "dag_id", None), getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", None)
    label = refusal.market if refusal else getattr(ti, "rendered_map_index", None) or map_index
    task = f"{dag_id}.{task_id}" + (f"[{label}]" if map_index not in (None, -1) else "")
    run_id = context.get("run_id")
    if refusal is None:
        headline = f"{task} failed ({run_id})"
    else:
        still = "still " if kind == REMINDER else ""
        headline = f"{refusal.market} {refusal.domain} {still}refused at {refusal.stage}: {task} failed ({run_id})"
    message = str(error) if error else "task failed"
    return {
        "text": f"{ICONS[kind]} POCO migration: {headline}\n{message}",
        "kind": kind,
        "key": refusal.key if refusal else f"{FAILED}:{task}",
        **_about(refusal),
        "dag_id": dag_id,
        "task_id": task_id,
        "map_index": map_index,
        "run_id": run_id,
        "logical_date": str(context.get("logical_date")),
        "try_number": getattr(ti, "try_number", None),
        "error": message,
        "log_url": getattr(ti, "log_url", None),
        "checkpoints": refused_checkpoints(run_id, refusal),
    }


def _about(refusal: Refusal | Any | None) -> dict[str, Any]:
    if refusal is None:
        return {"market": None, "domain": None, "stage": None}
    return {"market": refusal.market, "domain": refusal.domain, "stage": refusal.stage}


def send(body: dict[str, Any]) -> None:
    """Deliver an alert on every configured channel (log it when there is none or one
    fails), then log it in the target's alert log."""
    import requests

    target = endpoint()
    if target is None:
        log.error("ALERT (no %s connection): %s", ALERTS_CONN_ID, json.dumps(body, default=str))
    else:
        url, auth = target
        try:
            requests.post(url, json=body, auth=auth, timeout=TIMEOUT_SECONDS).raise_for_status()
        except requests.RequestException as exc:
            log.error("ALERT not delivered to %s (%s): %s", ALERTS_CONN_ID, exc, json.dumps(body, default=str))
    _email(body)
    _with_log(lambda conn: alert_log.record(conn, body, alert_log.now()), None)


def announce_refusals(context: Mapping[str, Any], refusals: list[Refusal]) -> None:
    """Alert the refusals that are new (or due a reminder); say in the task's log which are
    not repeated, and since when they are open."""
    every = [(refusal, REFUSED) for refusal in refusals]
    due = _with_log(lambda conn: alert_log.to_announce(conn, refusals, alert_log.now()), every)
    for refusal in set(refusals) - {r for r, _ in due}:
        log.warning("%s %s refused again at %s: alerted before, not repeated", *_about(refusal).values())
    for refusal, kind in due:
        send(payload(context, refusal, kind))


def announce_resolved(market: str, domain: str, run_id: str | None) -> None:
    """One "resolved" message for each open refusal of a market's domain that has just moved."""
    none: list[alert_log.OpenRefusal] = []
    resolved = _with_log(lambda conn: alert_log.resolved_by(conn, market, domain), none)
    for refusal in resolved:
        since = f"{refusal.opened_at:%Y-%m-%d %H:%M} UTC"
        text = f"{market} {domain} passes its gates again (refused at {refusal.stage} since {since})"
        body = {"text": f"{ICONS[RESOLVED]} POCO migration: {text}", "kind": RESOLVED, "key": refusal.key}
        send(body | _about(refusal) | {"run_id": run_id, "opened_run_id": refusal.run_id})


def _email(body: dict[str, Any]) -> None:
    """The alert by email, through the SMTP provider, when ``migration_alerts_smtp`` exists."""
    import html

    from airflow.sdk import Connection

    try:
        conn = Connection.get(SMTP_CONN_ID)
    except Exception:  # not configured: email is optional
        return
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    extra = conn.extra_dejson or {}
    notifier = SmtpNotifier(
        to=extra.get("to") or conn.login,
        from_email=extra.get("from_email"),
        subject=body["text"].splitlines()[0].partition(" ")[2],
        html_content=f"<pre>{html.escape(json.dumps(body, indent=2, default=str))}</pre>",
        smtp_conn_id=SMTP_CONN_ID,
    )
    try:
        notifier.notify({})
    except Exception as exc:  # the webhook (or the log) already has the alert
        log.error("ALERT not delivered by email through %s (%s)", SMTP_CONN_ID, exc)


class MigrationAlert(BaseNotifier):
    """Posts a failed task to ``migration_alerts`` (and by email), or logs it when there is
    none; a refused move only when its refusal is new (``alert_log``)."""

    def notify(self, context: Context) -> None:
        refusals = getattr(context.get("exception"), "refusals", None)
        if refusals:
            announce_refusals(context, refusals)
        else:
            send(payload(context))


def deadline_body(context: dict[str, Any], what: str) -> dict[str, Any]:
    """A missed deadline, in the same shape as a failed task's alert."""
    run = context.get("dag_run") or {}
    get = run.get if isinstance(run, dict) else lambda key: getattr(run, key, None)
    return {
        "text": f"{ICONS[LATE]} POCO migration: {what}",
        "kind": LATE,
        "key": f"{LATE}:{get('dag_id')}:{what}",
        "dag_id": get("dag_id"),
        "task_id": None,
        "run_id": get("run_id"),
        "logical_date": str(get("logical_date")),
        "error": what,
        "deadline": str(context.get("deadline")),
        "checkpoints": refused_checkpoints(get("run_id")),
    }


async def deadline_missed(context: dict[str, Any], what: str) -> None:
    """Airflow's deadline callback (it runs in the triggerer): alert that ``what`` is late."""
    import asyncio

    await asyncio.to_thread(send, deadline_body(context, what))
