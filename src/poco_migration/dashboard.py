"""The migration dashboard: a FastAPI app that the Airflow api-server mounts (see
``plugins/poco_migration_plugin.py``) and shows as a page of its own UI.

Every route needs an Airflow login (the UI's session cookie or a bearer token), as
the rest of the API does. It only reads, through ``status``; emails arrive masked.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse

from poco_migration import status
from poco_migration.schemas import DOMAINS

URL_PREFIX = "/poco-migration"
TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_SIZE = 50


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


def _login_required() -> Any:
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return Depends(requires_authenticated())


@cache
def _templates() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


def _render(name: str, **context: Any) -> str:
    return _templates().get_template(name).render(**context)


def create_app() -> FastAPI:
    app = FastAPI(title="POCO migration dashboard", dependencies=[_login_required()])

    @app.get("/", response_class=HTMLResponse)
    def page(reason: str | None = None, market: str | None = None, offset: int = Query(0, ge=0)) -> str:
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

    @app.get("/data-docs/{path:path}")
    def data_docs(path: str) -> FileResponse:
        root = data_docs_root()
        page = (root / path).resolve() if root else None
        if root is None or page is None or not page.is_relative_to(root) or not page.is_file():
            raise HTTPException(status_code=404, detail="no such Data Docs page")
        return FileResponse(page)

    return app


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
