"""A market far above the quarantine ratio: exactly that move is refused, alerted once
(on the webhook and by email), and everything else moves (CONTRACT.md, Gates)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from smtp_sink import smtp_sink
from webhook_sink import webhook_sink

from poco_migration import schemas
from poco_migration.cli import main


def spoil_it_reviews(source_url: str, share: int = 10) -> int:
    """Give every ``share``-th published review of a linked Italian author, on a mapped
    product, an invalid rating (so that no earlier rule claims it first)."""
    r, u, p = schemas.poco_reviews, schemas.poco_users, schemas.poco_products
    italian = sa.select(u.c.user_id).where(u.c.market == "IT", u.c.mi_account_id.is_not(None))
    mapped = sa.select(p.c.sku).where(p.c.mi_product_id.is_not(None))
    candidates = sa.select(r.c.review_id).where(
        r.c.user_id.in_(italian), r.c.sku.in_(mapped), r.c.status == "published"
    )
    engine = sa.create_engine(source_url)
    with engine.begin() as conn:
        ids = conn.execute(candidates.order_by(r.c.review_id)).scalars()
        spoiled = list(ids)[::share]
        conn.execute(sa.update(r).where(r.c.review_id.in_(spoiled)).values(rating=0))
    return len(spoiled)


def counts(target_url: str, domain: str) -> dict[str, int]:
    m = schemas.moved
    with sa.create_engine(target_url).connect() as conn:
        rows = conn.execute(sa.select(m.c.market, sa.func.count()).where(m.c.domain == domain).group_by(m.c.market))
        return dict(rows.tuples().all())


def test_one_market_above_the_ratio_fails_only_its_gate_and_alerts_once(connections, capsys, monkeypatch) -> None:
    assert main(["seed", "--scale", "300", "--seed", "7"]) == 0
    spoiled = spoil_it_reviews(connections["source"])
    with webhook_sink() as (url, received), smtp_sink() as (smtp_port, mails):
        monkeypatch.setenv("AIRFLOW_CONN_MIGRATION_ALERTS", json.dumps({"conn_type": "http", "extra": {"url": url}}))
        smtp = {"to": "oncall@poco-migration.test", "from_email": "airflow@poco-migration.test"}
        smtp |= {"disable_ssl": True, "disable_tls": True}  # the local sink speaks plain SMTP
        smtp_conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port, "extra": smtp}
        monkeypatch.setenv("AIRFLOW_CONN_MIGRATION_ALERTS_SMTP", json.dumps(smtp_conn))
        assert main(["rehearse", "--to", "2024-10-07"]) == 1
    out = capsys.readouterr().out
    assert "[1/1] 2024-10-07 poco_migration_sync: FAILED (move[IT])" in out

    assert len(received) == 1
    alert = received[0]
    assert (alert["dag_id"], alert["task_id"], alert["map_index"]) == ("poco_migration_sync", "move", 0)
    assert (alert["kind"], alert["market"], alert["domain"], alert["stage"]) == ("refused", "IT", "reviews", "extract")
    assert "reviews IT: gate_failed" in alert["error"]
    # The source extract's own suite sees the share of bad ratings first, before anything is staged.
    assert "checkpoint 'extract' failed" in alert["error"]
    assert "reviews.extract: expect_column_values_to_be_between(rating)" in alert["error"]
    headline = "IT reviews refused at extract: poco_migration_sync.move[IT] failed"
    assert alert["text"].startswith(f":rotating_light: POCO migration: {headline}")
    [refused] = alert["checkpoints"]
    assert (refused["market"], refused["domain"], refused["stage"]) == ("IT", "reviews", "extract")
    assert refused["failures"][0].startswith("reviews.extract: expect_column_values_to_be_between(rating) observed")
    assert refused["data_docs"].endswith("poco_source-extract.reviews.extract.html")
    assert refused["evaluated"] == 8 and refused["failed"] == len(refused["failures"]) >= 1

    # The same alert, once, by email: the second channel.
    [mail] = mails
    assert mail["To"] == "oncall@poco-migration.test" and mail["From"] == "airflow@poco-migration.test"
    assert mail["Subject"] == f"POCO migration: {headline} (" + alert["run_id"] + ")"
    html = next(part for part in mail.walk() if part.get_content_type() == "text/html").get_payload(decode=True)
    assert b"checkpoint &#x27;extract&#x27; failed" in html
    assert b"poco_source-extract.reviews.extract.html" in html

    # Nothing of the refused move is in the target; its quarantined rows are recorded.
    assert counts(connections["target"], "reviews").get("IT") is None
    q = schemas.quarantine
    with sa.create_engine(connections["target"]).connect() as conn:
        invalid = conn.execute(
            sa.select(sa.func.count()).where(
                q.c.domain == "reviews", q.c.market == "IT", q.c.reason == "invalid_rating"
            )
        ).scalar()
        failed = conn.execute(
            sa.select(schemas.checkpoints.c.stage).where(schemas.checkpoints.c.success.is_(False))
        ).scalars()
        assert list(failed) == ["extract"]
    assert invalid == spoiled
    # Everything else of the day moved: the other markets' reviews, and every domain of IT.
    assert set(counts(connections["target"], "reviews")) == {"PL", "TH"}
    for domain in ("points", "initiatives", "participants"):
        assert set(counts(connections["target"], domain)) == {"IT", "PL", "TH"}, domain


PERSISTENT = """
shutdown: 2024-10-13
max_quarantine_ratio: 0.01
waves:
  - name: refused-until-fixed
    start: 2024-10-07
    markets:
      - {market: PL, cutover: 2024-10-11}
      - {market: IT, cutover: 2024-10-12}
      - {market: GL, cutover: 2024-10-13}
"""


def mend_it_reviews(source_url: str) -> int:
    """Give the spoiled reviews a valid rating again: the source is fixed."""
    r = schemas.poco_reviews
    with sa.create_engine(source_url).begin() as conn:
        return conn.execute(sa.update(r).where(r.c.rating == 0).values(rating=4)).rowcount


def alert_log(target_url: str) -> list[tuple]:
    a = schemas.alerts
    with sa.create_engine(target_url).connect() as conn:
        query = sa.select(a.c.kind, a.c.market, a.c.domain, a.c.stage).order_by(a.c.id)
        return [tuple(row) for row in conn.execute(query)]


def test_a_refusal_that_persists_alerts_once_and_its_fix_once(connections, plan_in_force, capsys, monkeypatch) -> None:
    """IT's reviews refused every day from its wave's start: one alert, not one per daily sync;
    every other market's instances of each day succeed; fixed, one "resolved" message."""
    from poco_migration.alert_log import open_refusals

    plan_in_force(PERSISTENT)
    assert main(["seed", "--scale", "300", "--seed", "7"]) == 0
    spoil_it_reviews(connections["source"])
    with webhook_sink() as (url, received):
        monkeypatch.setenv("AIRFLOW_CONN_MIGRATION_ALERTS", json.dumps({"conn_type": "http", "extra": {"url": url}}))
        assert main(["rehearse", "--to", "2024-10-10"]) == 1
        refused = capsys.readouterr().out
        assert [(a["kind"], a["market"], a["domain"], a["stage"]) for a in received] == [
            ("refused", "IT", "reviews", "extract")
        ]
        with sa.create_engine(connections["target"]).connect() as conn:
            [still_open] = open_refusals(conn)
        assert (still_open.market, still_open.domain, still_open.stage) == ("IT", "reviews", "extract")

        assert mend_it_reviews(connections["source"]) > 0
        assert main(["rehearse", "--from", "2024-10-11", "--to", "2024-10-13"]) == 0
        fixed = capsys.readouterr().out
    # Each day's sync failed IT's instance only (its other domains moved): PL's and GL's passed.
    for day in ("07", "08", "09", "10"):
        assert f"2024-10-{day} poco_migration_sync: FAILED (move[IT])" in refused, day
    assert "2024-10-11 poco_migration_sync: ok" in fixed
    assert "2024-10-12 poco_migration_cutover_it: ok" in fixed
    [_, resolved] = received
    assert (resolved["kind"], resolved["market"], resolved["domain"]) == ("resolved", "IT", "reviews")
    assert resolved["text"].startswith(":white_check_mark: POCO migration: IT reviews passes its gates again")
    assert alert_log(connections["target"]) == [
        ("refused", "IT", "reviews", "extract"),
        ("resolved", "IT", "reviews", "extract"),
    ]
    with sa.create_engine(connections["target"]).connect() as conn:
        assert open_refusals(conn) == []
