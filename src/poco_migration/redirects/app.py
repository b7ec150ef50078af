"""The POCO Store app's retirement: the notice its API answers with, and the check
that it does (:func:`check_app_retired`).

The app is not redirected: its last version calls an API that is gone. So every
URL of that API answers ``410 Gone`` with a JSON notice (message, Mi Store link,
date) generated from the ``app`` rules of ``config/redirects.yaml``, the one
source for what the gateway is given and for what the check expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from poco_migration.redirects.probe import Sessions
from poco_migration.redirects.rules import Rules


@dataclass(frozen=True)
class CheckResult:
    """The app check: the URLs asked, and what was wrong with their answers."""

    checked: tuple[str, ...]
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def app_retirement_notice(rules: Rules) -> dict[str, Any]:
    """The exact answer of every URL of the retired app's API: what the API gateway is
    configured with, and what :func:`check_app_retired` expects."""
    app = rules.app
    return {
        "status": 410,
        "headers": {"Content-Type": "application/json", "Link": f'<{app.mi_store_url}>; rel="{app.link_rel}"'},
        "body": {
            "app": app.name,
            "message": app.message,
            "mi_store_url": app.mi_store_url,
            "retired_on": app.retired_on.isoformat(),
        },
    }


def check_app_retired(api_base_url: str, rules: Rules, timeout: float = 5, retries: int = 2) -> CheckResult:
    """Ask the app API's base path and its sample endpoints on ``api_base_url`` (scheme
    and host); each must give exactly :func:`app_retirement_notice`."""
    notice = app_retirement_notice(rules)
    base = api_base_url.rstrip("/") + rules.app.api_base_path
    urls = (base, *(base + endpoint for endpoint in rules.app.endpoints))
    with Sessions(retries) as sessions:
        failures = [
            f"{url}: {problem}" for url in urls for problem in _retired_problems(sessions.get(), url, notice, timeout)
        ]
    return CheckResult(urls, tuple(failures))


def _retired_problems(session: requests.Session, url: str, notice: dict[str, Any], timeout: float) -> list[str]:
    try:
        response = session.get(url, allow_redirects=False, timeout=timeout)
    except requests.RequestException as exc:
        return [f"no answer ({type(exc).__name__})"]
    problems = []
    if response.status_code != notice["status"]:
        problems.append(f"status {response.status_code} instead of {notice['status']}")
    for header, expected in notice["headers"].items():
        got = response.headers.get(header)
        if header == "Content-Type" and got is not None:
            got = got.split(";")[0].strip()
        if got != expected:
            problems.append(f"{header} {got!r} instead of {expected!r}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if body != notice["body"]:
        problems.append(f"body {response.text[:200]!r} is not the notice")
    return problems
