"""The audit's speed: POCO rows compared per second when nothing differs.

At each size, for reviews and for points, on the throughput benchmark's generated source
(``throughput.generate``) in throw-away PostgreSQL databases: the real full move into an
empty target, then the audit of that domain (``poco_migration.audit``), each in a child
process of its own. Rows compared are the source rows in scope that the audit proves;
the target is at least 1,000,000 of them a second with no difference found.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from poco_migration_tools.bench.throughput import (
    MARKET,
    BenchConfig,
    environment,
    generate,
    in_child,
    measure_move,
    recreate_database,
    reset_target,
)
from poco_migration_tools.local_airflow import airflow_uri

ROWS_PER_SECOND_MIN = 1_000_000


def measure_audit(domain: str) -> dict[str, Any]:
    """The audit of one domain against the configured connections, timed by the audit itself."""
    from poco_migration.audit.run import audit_domain
    from poco_migration.connections import SOURCE_CONN_ID, TARGET_CONN_ID, engine_for
    from poco_migration.plan import load_plan

    audited = audit_domain(domain, engine_for(SOURCE_CONN_ID), engine_for(TARGET_CONN_ID), load_plan())
    compared = sum(audited.compared.values())
    return {
        "compared": compared,
        "seconds": round(audited.seconds, 3),
        "rows_per_second": round(compared / audited.seconds),
        "differences": sum(audited.counts.values()),
        "held": sum(audited.held.values()),
        **{name.replace(" ", "_"): n for name, n in audited.stats.items()},
    }


def audit_size(config: BenchConfig, domain: str, rows: int, say: Callable[[str], None]) -> dict[str, Any]:
    source_url, target_url = config.url("source"), config.url("target")
    generate(source_url, domain, rows)
    reset_target(target_url)
    with environment(AIRFLOW_CONN_POCO_SOURCE=airflow_uri(source_url), AIRFLOW_CONN_MI_TARGET=airflow_uri(target_url)):
        move = in_child(measure_move, domain, rows, None)
        audit = in_child(measure_audit, domain)
    say(
        f"{domain} {rows:,}: moved in {move['seconds']:.1f}s ({move['status']}); audit "
        f"{audit['rows_per_second']:,} rows/s ({audit['compared']:,} rows in {audit['seconds']:.2f}s, "
        f"{audit['differences']} differences, peak {audit['peak_rss_mb']:.0f} MB)"
    )
    met = audit["rows_per_second"] >= ROWS_PER_SECOND_MIN and audit["differences"] == 0
    return {"rows": rows, "move_status": move["status"], "audit": audit, "met": met}


def run_audit_bench(config: BenchConfig, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every domain at every size; writes ``audit.json`` into ``config.out_dir``."""
    started = dt.datetime.now(dt.UTC)
    source_url, target_url = config.url("source"), config.url("target")
    for url in (source_url, target_url):
        recreate_database(config.pg_url, url)
    try:
        results = {d: [audit_size(config, d, n, say) for n in config.sizes] for d in config.domains}
    finally:
        for url in (source_url, target_url):
            recreate_database(config.pg_url, url, create=False)
    report = {
        "started_at": started.isoformat(timespec="seconds"),
        "method": __doc__,
        "market": MARKET,
        "target_rows_per_second_min": ROWS_PER_SECOND_MIN,
        "results": results,
        "met": all(r["met"] for sizes in results.values() for r in sizes),
    }
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "audit.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
