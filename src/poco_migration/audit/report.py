"""The audit's report: text for a person, JSON for a machine, a row per market and domain
in the bookkeeping for the dashboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from poco_migration import schemas
from poco_migration.audit.run import Audit
from poco_migration.report import default_json_path

UNPLACED = "(no market)"  # target or quarantine rows with no POCO row to place them


def as_json(audit: Audit) -> dict[str, Any]:
    return {
        "audited_at": audit.audited_at.isoformat(timespec="seconds"),
        "markets": audit.markets,
        "verdict": "passed" if audit.passed else "differs",
        "domains": {
            d.domain: {
                "seconds": round(d.seconds, 3),
                "compared": sum(d.compared.values()),
                "rows_per_second": round(sum(d.compared.values()) / d.seconds) if d.seconds else None,
                **{name.replace(" ", "_"): n for name, n in sorted(d.stats.items())},
            }
            for d in audit.domains
        },
        "cells": audit.cells(),
    }


def render_text(audit: Audit) -> str:
    lines = [
        f"Audit of POCO against Xiaomi at {audit.audited_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"markets {', '.join(audit.markets) or 'none'}: {'PASSED' if audit.passed else 'DIFFERS'}",
        "(compared: POCO rows in scope now, read from the source; held: moved rows kept as they were)",
        "",
        f"{'market':<11}{'domain':<14}{'compared':>10}{'held':>6}{'differences':>13}  verdict",
    ]
    for cell in audit.cells():
        market = cell["market"] or UNPLACED
        lines.append(
            f"{market:<11}{cell['domain']:<14}{cell['compared']:>10}{cell['held']:>6}"
            f"{cell['differences']:>13}  {cell['verdict']}"
        )
        lines.extend(f"    {kind}: {n}" for kind, n in cell["by_kind"].items())
        for finding in cell["findings"]:
            lines.append("    " + _finding_line(finding))
    for d in audit.domains:
        lines.append(
            f"{d.domain}: {sum(d.compared.values())} rows in {d.seconds:.2f}s, "
            f"{d.stats['ranges']} ranges compared, {d.stats['differing ranges']} differing, "
            f"{d.stats['rows read']} rows read one by one"
        )
    return "\n".join(lines)


def _finding_line(finding: dict[str, Any]) -> str:
    line = f"{finding['source_ref']}: {finding['kind']}"
    if finding["column"]:
        line += f" in {finding['column']}: POCO maps to {finding['source']!r}, Xiaomi has {finding['target']!r}"
    return line


def publish(target: Engine, audit: Audit, run_id: str | None, path: Path | None = None) -> Path:
    """Record the audit for the dashboard and write its JSON (beside the reconciliation report's)."""
    record(target, audit, run_id)
    path = path or default_json_path().with_name("audit.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(as_json(audit), indent=2) + "\n", encoding="utf-8")
    return path


def record(target: Engine, audit: Audit, run_id: str | None) -> None:
    """A row per market and domain, for the dashboard's last audit per market."""
    schemas.create_target(target)
    rows = [
        {
            "run_id": run_id,
            "market": cell["market"] or UNPLACED,
            "domain": cell["domain"],
            "compared": cell["compared"],
            "held": cell["held"],
            "differences": cell["differences"],
            "verdict": cell["verdict"],
            "findings": cell["findings"],
            "audited_at": audit.audited_at,
        }
        for cell in audit.cells()
    ]
    with target.begin() as conn:
        conn.execute(schemas.audits.insert(), rows)
