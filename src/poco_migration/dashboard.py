"""The migration dashboard: a FastAPI app that the Airflow api-server mounts (see
``plugins/poco_migration_plugin.py``) and shows as a page of its own UI.

Every route needs an Airflow login (the UI's session cookie or a bearer token), as the
rest of the API does, and the right the auth manager gives that login (``access``): any
reader sees the dashboard and looks people up (support agents); only operators pause,
resume or roll back a market; only administrators read who looked up whom. Emails arrive
masked; an email asked for arrives in a POST body (never in a URL, which access logs keep)
and is hashed before anything else sees it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Body, Depends, FastAPI, Form, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse

from poco_migration import access, operations, status
from poco_migration.schemas import DOMAINS
from poco_migration.support import lookup, lookup_log, unlinked
from poco_migration.support.people import EMAIL
from poco_migration.support.people import Query as Asked

URL_PREFIX = "/poco-migration"
TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_SIZE = 50
UNLINKED_SHOWN = 5  # per market: the report's JSON has 20, `poco-migration report` prints them


@cache
def _engines() -> tuple[Any, Any]:
    from poco_migration.connections import configured

    return configured()


def _plan() -> Any:
    from poco_migration.plan import load_plan

    return load_plan()


def data_docs_root() -> Path | None:
    from poco_migration.gates import data_docs_dir

    root = data_docs_dir()
    return root.resolve() if root else None


def docs_link(url: str | None) -> str | None:
    """A checkpoint's Data Docs page as a link into this app (the files live on the
    machine that ran the move; the app serves them when it can read them)."""
    root = data_docs_root()
    if not url or not url.startswith("file://") or root is None:
        return url
    try:
        relative = Path(url.removeprefix("file://")).resolve().relative_to(root)
    except ValueError:
        return url
    return f"data-docs/{relative.as_posix()}"


@cache
def _templates() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


def _render(name: str, **context: Any) -> str:
    return _templates().get_template(name).render(**context)


def create_app() -> FastAPI:
    app = FastAPI(title="POCO migration dashboard", dependencies=[Depends(access.reader)])

    @app.get("/", response_class=HTMLResponse)
    def page(user: Reader, reason: str | None = None, market: str | None = None, offset: int = Query(0, ge=0)) -> str:
        source, target = _engines()
        plan = _plan()
        snapshot = status.snapshot(source, target, plan)
        for row in snapshot["checkpoints"]:
            row["link"] = docs_link(row["data_docs"])
        rows = status.quarantine(source, target, reason=reason, market=market, limit=PAGE_SIZE, offset=offset)
        return _render(
            "dashboard.html",
            snap=snapshot,
            grid=_grid(snapshot["cells"]),
            markets=list(plan.codes),
            domains=DOMAINS,
            quarantine=rows,
            reason=reason or "",
            market=market or "",
            offset=offset,
            page_size=PAGE_SIZE,
            unlinked=unlinked.by_market(source, plan, limit=UNLINKED_SHOWN),
            may_operate=access.may_operate(user),
            may_administer=access.may_administer(user),
        )

    @app.get("/api/state")
    def state() -> dict[str, Any]:
        source, target = _engines()
        return status.snapshot(source, target, _plan())

    @app.get("/api/quarantine")
    def quarantine(
        reason: str | None = None,
        market: str | None = None,
        limit: int = Query(PAGE_SIZE, ge=1, le=500),
        offset: int = Query(0, ge=0),
    ) -> list[dict[str, Any]]:
        source, target = _engines()
        return status.quarantine(source, target, reason=reason, market=market, limit=limit, offset=offset)

    _support_routes(app)
    _operator_routes(app)

    @app.get("/data-docs/{path:path}")
    def data_docs(path: str) -> FileResponse:
        root = data_docs_root()
        page = (root / path).resolve() if root else None
        if root is None or page is None or not page.is_relative_to(root) or not page.is_file():
            raise HTTPException(status_code=404, detail="no such Data Docs page")
        return FileResponse(page)

    return app


Reader = Annotated[Any, Depends(access.reader)]
Operator = Annotated[Any, Depends(access.operator)]
Administrator = Annotated[Any, Depends(access.administrator)]


def _asked(kind: str, value: str) -> Asked:
    try:
        return Asked.email(value) if kind == EMAIL else Asked.number(kind, value)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


def _look_up(asked: Asked, user: Any, via: str) -> dict[str, Any]:
    """The lookup, recorded before it is answered."""
    source, target = _engines()
    result = lookup.look_up(source, target, _plan(), asked)
    lookup_log.record(target, asked, [p["user_id"] for p in result["people"]], user.get_name(), via)
    return result


def _support_routes(app: FastAPI) -> None:
    """The lookup of one person (page and API) and the lookup log (administrators)."""

    @app.post("/lookup", response_class=HTMLResponse)
    def lookup_page(user: Reader, kind: Annotated[str, Form()], q: Annotated[str, Form()]) -> str:
        return _render("lookup.html", result=_look_up(_asked(kind, q), user, "dashboard"), kind=kind)

    @app.post("/api/lookup")
    def lookup_api(user: Reader, kind: Annotated[str, Body()], value: Annotated[str, Body()]) -> dict[str, Any]:
        return _look_up(_asked(kind, value), user, "api")

    @app.get("/lookups", response_class=HTMLResponse)
    def lookups_page(user: Administrator) -> str:
        return _render("lookups.html", rows=lookup_log.recent(_engines()[1], 200))

    @app.get("/api/lookups")
    def lookups_api(user: Administrator, limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        return lookup_log.recent(_engines()[1], limit)


def _operator_routes(app: FastAPI) -> None:
    """What an operator does to a market by hand, as the runbook's commands do it."""

    @app.post("/api/markets/{market}/pause")
    def pause(market: str, user: Operator, reason: Annotated[str, Body(embed=True, min_length=1)]) -> dict[str, Any]:
        code = _market(market)
        return {"market": code, "paused": operations.pause(_engines()[1], code, f"{reason} ({user.get_name()})")}

    @app.post("/api/markets/{market}/resume")
    def resume(market: str, user: Operator) -> dict[str, Any]:
        code = _market(market)
        return {"market": code, "resumed": operations.resume(_engines()[1], code)}

    @app.post("/api/markets/{market}/rollback")
    def rollback(market: str, user: Operator, confirm: Annotated[str, Body(embed=True)]) -> dict[str, Any]:
        code = _market(market)
        if confirm.strip().upper() != code:
            raise HTTPException(status_code=400, detail=f"confirm the rollback by giving the market's code, {code}")
        source, target = _engines()
        try:
            return {"market": code, "removed": operations.rollback(target, source, code)}
        except operations.OperationRefused as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None


def _market(text: str) -> str:
    code = text.strip().upper()
    if code not in _plan().codes:
        raise HTTPException(status_code=404, detail=f"{text!r} is not a market of the plan")
    return code


def _grid(cells: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    grid: dict[str, dict[str, dict[str, Any]]] = {}
    for cell in cells:
        grid.setdefault(cell["market"], {})[cell["domain"]] = cell | airflow_links(cell)
    return grid


def airflow_links(cell: dict[str, Any]) -> dict[str, str | None]:
    """The Airflow UI's pages of a cell's last move: its DAG run, and its task instance (whose
    first tab is the log). Relative to the dashboard, which the api-server serves beside the
    UI, so that they hold under any base URL."""
    if not (cell.get("dag_id") and cell.get("run_id") and cell.get("task_id")):
        return {"run_link": None, "log_link": None}
    run = f"../dags/{quote(cell['dag_id'], safe='')}/runs/{quote(cell['run_id'], safe='')}"
    task = f"{run}/tasks/{quote(cell['task_id'], safe='')}"
    mapped = cell.get("map_index")
    return {"run_link": run, "log_link": f"{task}/mapped/{mapped}" if mapped is not None and mapped >= 0 else task}


def plugin_spec() -> dict[str, Any]:
    """What the Airflow plugin registers: the app, and the page in the UI's navigation."""
    return {
        "fastapi_apps": [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "POCO migration dashboard"}],
        "external_views": [
            {
                "name": "POCO migration",
                "href": f"{URL_PREFIX}/",
                "url_route": "poco-migration",
                "destination": "nav",
                "category": os.environ.get("POCO_MIGRATION_DASHBOARD_MENU", "browse"),
            }
        ],
    }
