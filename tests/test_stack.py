"""The compose stack's Airflow as local processes, on PostgreSQL and its own Redis: the
scheduler and two Celery workers run a cutover; clearing each of its tasks by hand
leaves the target as it was; the dashboard shows it all in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import PG_URL, REPO, _pg_admin
from stack import Stack
from test_gate_failure import spoil_it_reviews
from test_rehearsal import checksum

from poco_migration import schemas
from poco_migration.plan import load_plan
from poco_migration.support import lookup, unlinked
from poco_migration.support.people import Query
from poco_migration_tools.local_airflow import LocalAirflow, databases, free_port
from poco_migration_tools.stack import USERS, LocalRedis, prepare, stack_environment

CUTOVER = "poco_migration_cutover_th"
ARTIFACTS = Path(os.environ.get("POCO_TEST_ARTIFACTS", REPO / "var" / "test-artifacts"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """Seeded, rehearsed from 18 to 25 November (IT's reviews refused, PL cut over), running."""
    if _pg_admin() is None:
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    home = tmp_path_factory.mktemp("stack")
    # The compose file's users, in FAB: admin (Admin), operator (User), support (Viewer).
    passwords = {name: uuid.uuid4().hex for name in USERS}
    port = free_port()
    names = {role: f"stack_{role}_{uuid.uuid4().hex[:8]}" for role in ("airflow", "poco_source", "mi_target")}
    with databases(PG_URL, names) as urls, LocalRedis(home) as redis:
        env = stack_environment(home, urls, port, broker_url=redis.url)
        with LocalAirflow(home, env) as airflow:
            running = Stack(airflow, f"http://127.0.0.1:{port}", urls, passwords, redis, port)
            prepare(airflow, passwords)
            seeded = running.cli("poco-migration", "seed", "--scale", "300", "--seed", "7")
            assert seeded.returncode == 0, seeded.stderr[-3000:]
            spoil_it_reviews(urls["poco_source"])
            rehearsal = running.cli("poco-migration", "rehearse", "--from", "2024-11-18", "--to", "2024-11-25")
            assert rehearsal.returncode == 1, rehearsal.stdout[-3000:] + rehearsal.stderr[-3000:]
            assert "2024-11-25 poco_migration_cutover_pl: ok" in rehearsal.stdout
            running.start()
            running.wait_for(lambda: _dag_listed(running), "the dag-processor parses the DAGs", 180)
            yield running


def _dag_listed(stack: Stack) -> bool:
    return stack.api("GET", f"/api/v2/dags/{CUTOVER}").status_code == 200


def _run(stack: Stack) -> dict | None:
    runs = stack.api("GET", f"/api/v2/dags/{CUTOVER}/dagRuns").json()["dag_runs"]
    return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None


def _task_instances(stack: Stack, run_id: str) -> dict[str, dict]:
    answer = stack.api("GET", f"/api/v2/dags/{CUTOVER}/dagRuns/{run_id}/taskInstances").json()
    return {ti["task_id"]: ti for ti in answer["task_instances"]}


def test_the_scheduler_runs_a_cutover_and_the_dashboard_reads_it(stack: Stack) -> None:
    assert stack.api("PATCH", f"/api/v2/dags/{CUTOVER}", json={"is_paused": False}).status_code == 200
    run = stack.wait_for(lambda: _run(stack), "the scheduler runs TH's cutover", 420)
    assert run["state"] == "success", stack.logs()
    tis = _task_instances(stack, run["dag_run_id"])
    assert {t: ti["state"] for t, ti in tis.items()} == {
        "freeze": "success",
        "final_sync.points": "success",
        "final_sync.reviews": "success",
        "final_sync.initiatives": "success",
        "final_sync.participants": "success",
        "audit": "success",
        "statements": "success",
        "redirects": "success",
        "cut_over": "success",
    }

    import requests

    # No one in without a login: neither Airflow's API nor the dashboard.
    for path in ("/api/v2/dags", "/poco-migration/api/state", "/poco-migration/"):
        assert requests.get(f"{stack.base_url}{path}", timeout=30).status_code == 401, path
    state = stack.api("GET", "/poco-migration/api/state").json()
    cells = {(c["market"], c["domain"]): c["state"] for c in state["cells"]}
    assert {cells["TH", d] for d in ("points", "reviews", "initiatives", "participants")} == {"cut over"}
    assert {cells["PL", d] for d in ("points", "reviews", "initiatives", "participants")} == {"cut over"}
    assert cells["IT", "reviews"] == "gate failed"
    assert cells["IT", "points"] == cells["ES", "reviews"] == cells["GL", "points"] == "syncing"
    assert state["reasons"]["invalid_rating"] > 0


def test_clearing_any_task_leaves_the_target_as_it_was(stack: Stack) -> None:
    run = _run(stack)
    target = sa.create_engine(stack.urls["mi_target"])
    before = checksum(target)
    for task_id, ti in _task_instances(stack, run["dag_run_id"]).items():
        body = {"dry_run": False, "task_ids": [task_id], "dag_run_id": run["dag_run_id"], "only_failed": False}
        assert stack.api("POST", f"/api/v2/dags/{CUTOVER}/clearTaskInstances", json=body).status_code == 200

        def rerun(task_id: str = task_id, tries: int = ti["try_number"]) -> bool:
            """The task ran again and succeeded, and the scheduler has finished the run again: a
            clear sent while it is still closing the run can be lost (seen under load)."""
            again = _task_instances(stack, run["dag_run_id"])[task_id]
            finished = _run(stack)
            ran = again["try_number"] > tries and again["state"] == "success"
            return ran and finished is not None and finished["state"] == "success"

        stack.wait_for(rerun, f"the scheduler reruns {task_id}", 180)
        assert checksum(target) == before, task_id
    target.dispose()


@contextmanager
def browser(stack: Stack, user: str) -> Iterator[Any]:
    """Debian's Chromium at 1600x1000, logged in as ``user`` through the UI's login page (FAB's)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = chromium.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{stack.base_url}/poco-migration/")
        assert page.url.startswith(f"{stack.base_url}/auth/login") or "Not authenticated" in page.content()
        page.goto(f"{stack.base_url}/")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", stack.passwords[user])
        page.keyboard.press("Enter")
        page.wait_for_url(f"{stack.base_url}/")
        yield page
        chromium.close()


def test_the_dashboard_in_chromium(stack: Stack) -> None:
    with browser(stack, "admin") as page:
        # The page inside the Airflow UI, under its navigation, readable in its frame.
        page.goto(f"{stack.base_url}/plugin/poco-migration")
        frame = page.frame_locator("iframe")
        grid = frame.locator("#grid td.cell")
        grid.first.wait_for()
        assert grid.count() == 11 * 4
        assert frame.locator('td[data-market="TH"][data-domain="points"]').get_attribute("data-state") == "cut over"
        assert frame.locator('td[data-market="IT"][data-domain="reviews"]').get_attribute("data-state") == "gate failed"
        box = page.locator("iframe").bounding_box()
        assert box is not None and box["height"] >= 700, box
        # The plan clock is at the plan's dates (TH's cutover, 26 November), not the wall clock's.
        assert frame.locator("#plan-clock").get_attribute("data-plan-date") == "2024-11-26"
        assert "next cutover IT on 2024-11-29" in frame.locator("#plan-clock").inner_text()
        assert "shutdown 2024-12-31 in 35 plan days" in frame.locator("#plan-clock").inner_text()
        # The headline: PL and TH cut over; IT's refused reviews alerted once and still open.
        assert frame.locator("#cut-over b").inner_text() == "2 of 11"
        assert frame.locator("#refused b").inner_text() != "0"
        assert frame.locator("#alerts").inner_text().endswith("1 open")
        assert frame.locator("#open-alerts td").all_inner_texts()[:3] == ["IT", "reviews", "extract"]
        page.screenshot(path=str(ARTIFACTS / "dashboard-in-airflow.png"))

        # A cell opens its last move's DAG run in the Airflow UI: PL's points, moved by its cutover.
        frame.locator('td[data-market="PL"][data-domain="points"] a.run').click()
        page.wait_for_url(f"{stack.base_url}/dags/poco_migration_cutover_pl/runs/**")
        page.get_by_text("final_sync", exact=False).first.wait_for()
        page.screenshot(path=str(ARTIFACTS / "dashboard-cell-to-run.png"))

        # The quarantine browser, filtered by reason: emails masked, Data Docs pages open.
        page.goto(f"{stack.base_url}/poco-migration/?reason=invalid_rating&market=IT")
        rows = page.locator("#quarantine tr").all()[1:]
        assert rows and all(r.locator("td").nth(3).inner_text() == "invalid_rating" for r in rows)
        assert all("***@" in r.locator("td").nth(5).inner_text() for r in rows)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        link = page.locator("#checkpoints a").first.get_attribute("href")
        docs = page.goto(f"{stack.base_url}/poco-migration/{link}")
        assert docs.status == 200
        assert page.title() == "Data documentation compiled by Great Expectations"
    assert (ARTIFACTS / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _pl_user(stack: Stack) -> tuple[int, str]:
    """A PL user (cut over by the rehearsal) with a linked account and points: id and email."""
    u, a = schemas.poco_users, schemas.poco_points_accounts
    source = sa.create_engine(stack.urls["poco_source"])
    query = (
        sa.select(u.c.user_id, u.c.email)
        .join(a, a.c.user_id == u.c.user_id)
        .where(u.c.market == "PL", u.c.mi_account_id.is_not(None), a.c.balance > 0, u.c.email.like("%@%"))
        .order_by(u.c.user_id)
        .limit(1)
    )
    with source.connect() as conn:
        user_id, email = conn.execute(query).one()
    source.dispose()
    return user_id, email


def _unlinked(stack: Stack) -> dict:
    """Every market's unlinked users with points, after planting one in IT (the seed plants them
    within each market's quarantine budget only, which a market of this scale has none of)."""
    source = sa.create_engine(stack.urls["poco_source"])
    user = {"user_id": 9_000_001, "mi_account_id": None, "email": "remind.me@example.com", "market": "IT"}
    account = {"user_id": 9_000_001, "balance": 77, "tier": "bronze"}
    try:
        with source.begin() as conn:
            if not conn.execute(
                sa.select(schemas.poco_users.c.user_id).where(schemas.poco_users.c.user_id == 9_000_001)
            ).first():
                conn.execute(schemas.poco_users.insert().values(user))
                conn.execute(schemas.poco_points_accounts.insert().values(account))
        return unlinked.by_market(source, load_plan())
    finally:
        source.dispose()


def _looked_up(stack: Stack, user_id: int) -> dict:
    """What the lookup says of the user, computed here on the stack's databases."""
    source, target = (sa.create_engine(stack.urls[name]) for name in ("poco_source", "mi_target"))
    try:
        result = lookup.look_up(source, target, load_plan(), Query.number("user_id", str(user_id)))
    finally:
        source.dispose()
        target.dispose()
    return result["people"][0]


def test_roles_keep_support_agents_to_reading(stack: Stack) -> None:
    user_id, email = _pl_user(stack)
    # A support agent (Airflow's viewer role) reads and looks people up...
    assert stack.api("GET", "/poco-migration/api/state", as_user="support").status_code == 200
    answer = stack.api("POST", "/poco-migration/api/lookup", as_user="support", json={"kind": "email", "value": email})
    assert answer.status_code == 200, answer.text
    assert answer.json()["query"] == {"kind": "email", "value": None}
    assert answer.json()["people"] == [_looked_up(stack, user_id)]
    # ...but neither pauses, resumes, rolls back nor triggers anything, nor reads the lookup log.
    refused = {
        "/poco-migration/api/markets/GL/pause": {"reason": "try"},
        "/poco-migration/api/markets/GL/resume": {},
        "/poco-migration/api/markets/IT/rollback": {"confirm": "IT"},
        f"/api/v2/dags/{CUTOVER}/dagRuns": {"logical_date": None},
    }
    for path, body in refused.items():
        assert stack.api("POST", path, as_user="support", json=body).status_code == 403, path
    assert stack.api("GET", "/poco-migration/api/lookups", as_user="support").status_code == 403
    # An operator (Airflow's user role) does; a rollback still needs the market paused first.
    pause = stack.api("POST", "/poco-migration/api/markets/gl/pause", as_user="operator", json={"reason": "drill"})
    assert pause.json() == {"market": "GL", "paused": True}
    resume = stack.api("POST", "/poco-migration/api/markets/GL/resume", as_user="operator", json={})
    assert resume.json() == {"market": "GL", "resumed": True}
    rollback = stack.api("POST", "/poco-migration/api/markets/IT/rollback", as_user="operator", json={"confirm": "IT"})
    assert (rollback.status_code, rollback.json()["detail"]) == (
        409,
        "IT is not paused: run `poco-migration pause IT` first",
    )
    assert stack.api("GET", "/poco-migration/api/lookups", as_user="operator").status_code == 403
    # Administrators see who looked up whom, and never the address asked for.
    log = stack.api("GET", "/poco-migration/api/lookups", as_user="admin").json()
    mine = [row for row in log if row["asked_by"] == "support" and row["via"] == "api"]
    assert [(r["kind"], r["query"], r["users"]) for r in mine] == [("email", None, [user_id])]
    assert email.lower() not in json.dumps(log).lower()
    assert email.lower() not in stack.logs().lower()


def test_a_support_agent_looks_a_user_up_in_chromium_and_is_refused_a_rollback(stack: Stack) -> None:
    user_id, email = _pl_user(stack)
    expected = _looked_up(stack, user_id)
    with browser(stack, "support") as page:
        planted = _unlinked(stack)
        page.goto(f"{stack.base_url}/poco-migration/")
        # A reader's dashboard: the search box, no operator actions, no lookup log.
        assert page.locator("#operations").count() == 0 and page.locator("#lookups-link").count() == 0
        # The unlinked users with points, per market, as POCO holds them now.
        shown = {
            r.get_attribute("data-market"): int(r.locator(".count").inner_text())
            for r in page.locator("#unlinked tr[data-market]").all()
        }
        assert shown == {m: u["count"] for m, u in planted.items() if u["count"]} and shown["IT"] >= 1
        page.select_option("#lookup-form select[name=kind]", "email")
        page.fill("#lookup-form input[name=q]", email.upper())
        page.click("#lookup-form button")
        person = page.locator(f'section.person[data-user-id="{user_id}"]')
        person.wait_for()
        assert person.locator(".mi-account").inner_text() == str(expected["mi_account_id"])
        assert person.locator(".email").inner_text() == expected["email"]
        assert person.locator(".market").get_attribute("data-state") == "cut over"
        points = expected["points"]
        cells = person.locator("table.points tr").nth(1).locator("td").all_inner_texts()
        assert cells[:5] == [
            str(points["balance"]),
            points["tier"],
            points["conversion_rate"],
            str(points["converted"]),
            f"{points['credited']} (equal)",
        ]
        assert cells[5] == "moved"
        ledger = person.locator("table.ledger tr").all()[1:]
        assert [r.locator("td").first.inner_text() for r in ledger] == [e["source_ref"] for e in points["ledger"]]
        shown = person.locator("table.reviews tr[data-ref]").all()
        assert [r.get_attribute("data-ref") for r in shown] == [r["source_ref"] for r in expected["reviews"]]
        page.screenshot(path=str(ARTIFACTS / "support-lookup.png"), full_page=True)
        # The agent tries a rollback anyway, with the session's own cookie: the server refuses it.
        status = page.evaluate(
            """async () => (await fetch("/poco-migration/api/markets/PL/rollback", {method: "POST",
                headers: {"Content-Type": "application/json"}, body: JSON.stringify({confirm: "PL"})})).status"""
        )
        assert status == 403
    assert email.lower() not in stack.logs().lower()
