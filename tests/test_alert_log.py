"""Which alerts go out: a refusal once while it lasts, a reminder only when configured and
due, a refusal of another kind at once, every other failure always, resolved once."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

from webhook_sink import webhook_sink

from poco_migration.alert_log import (
    REFUSED,
    REMINDER,
    REMINDER_ENV,
    RESOLVED,
    Refusal,
    open_refusals,
    record,
    resolved_by,
    to_announce,
)
from poco_migration.gates import CheckpointOutcome, Failure

RATING = "reviews.extract:expect_column_values_to_be_between(rating)"
EXTRACT = Refusal("IT", "reviews", "extract", (RATING,))
STAGED = Refusal("IT", "reviews", "staged", ("reviews.staged:expect_column_values_to_not_be_null(mi_account_id)",))
AT = dt.datetime(2024, 10, 7, 1, 0)


def sent(refusal: Refusal, kind: str) -> dict[str, str]:
    about = {"market": refusal.market, "domain": refusal.domain, "stage": refusal.stage}
    return {"key": refusal.key, "kind": kind, **about}


def test_a_refusal_is_keyed_by_what_failed_not_by_what_it_observed() -> None:
    def outcome(observed: int) -> CheckpointOutcome:
        failure = Failure("reviews.extract", "expect_column_values_to_be_between", "rating", observed)
        return CheckpointOutcome("extract", False, 8, [failure])

    assert Refusal.of("IT", "reviews", outcome(3)) == Refusal.of("IT", "reviews", outcome(7)) == EXTRACT
    assert EXTRACT.key == f"refused:IT/reviews/extract:{RATING}"


def test_once_while_it_lasts_reminded_when_due_resolved_once(target_engine, monkeypatch) -> None:
    monkeypatch.delenv(REMINDER_ENV, raising=False)
    with target_engine.begin() as conn:
        assert to_announce(conn, [EXTRACT], AT) == [(EXTRACT, REFUSED)]
        record(conn, sent(EXTRACT, REFUSED), AT)
        # The next day's identical refusal is not sent; another stage's is new, at once.
        assert to_announce(conn, [EXTRACT], AT + dt.timedelta(days=1)) == []
        assert to_announce(conn, [EXTRACT, STAGED], AT + dt.timedelta(days=1)) == [(STAGED, REFUSED)]
        monkeypatch.setenv(REMINDER_ENV, "24")
        assert to_announce(conn, [EXTRACT], AT + dt.timedelta(hours=23)) == []
        assert to_announce(conn, [EXTRACT], AT + dt.timedelta(hours=24)) == [(EXTRACT, REMINDER)]
        record(conn, sent(EXTRACT, REMINDER), AT + dt.timedelta(hours=24))
        assert to_announce(conn, [EXTRACT], AT + dt.timedelta(hours=47)) == []

        [still] = open_refusals(conn)
        assert (still.key, still.market, still.domain, still.stage) == (EXTRACT.key, "IT", "reviews", "extract")
        assert (still.opened_at, still.last_sent_at) == (AT, AT + dt.timedelta(hours=24))
        assert resolved_by(conn, "IT", "points") == []
        assert resolved_by(conn, "PL", "reviews") == []
        assert resolved_by(conn, "IT", "reviews") == [still]

        record(conn, sent(EXTRACT, RESOLVED), AT + dt.timedelta(days=3))
        assert open_refusals(conn) == []
        # Refused again after its fix: a new refusal, alerted at once.
        assert to_announce(conn, [EXTRACT], AT + dt.timedelta(days=4)) == [(EXTRACT, REFUSED)]


def test_the_notifier_sends_a_new_refusal_once_and_every_other_failure(connections, monkeypatch) -> None:
    from poco_migration.alerts import GateRefused, MigrationAlert

    ti = SimpleNamespace(dag_id="poco_migration_sync", task_id="move", map_index=0, rendered_map_index="IT")
    ti.try_number, ti.log_url = 1, None
    refused = {"ti": ti, "run_id": "scheduled__2024-10-07", "exception": GateRefused("refused", [EXTRACT])}
    broken = {"ti": ti, "run_id": "scheduled__2024-10-08", "exception": RuntimeError("the target is read-only")}
    with webhook_sink() as (url, received):
        monkeypatch.setenv("AIRFLOW_CONN_MIGRATION_ALERTS", json.dumps({"conn_type": "http", "extra": {"url": url}}))
        for context in (refused, refused, broken, broken):
            MigrationAlert().notify(context)
    assert [(a["kind"], a["run_id"]) for a in received] == [
        ("refused", "scheduled__2024-10-07"),
        ("failed", "scheduled__2024-10-08"),
        ("failed", "scheduled__2024-10-08"),
    ]
    assert received[0]["text"].startswith(
        ":rotating_light: POCO migration: IT reviews refused at extract: poco_migration_sync.move[IT] failed"
    )
    assert received[1]["text"] == (
        ":rotating_light: POCO migration: poco_migration_sync.move[IT] failed (scheduled__2024-10-08)\n"
        "the target is read-only"
    )
