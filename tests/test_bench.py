"""The benchmark still runs end to end (small sizes, no rehearsal); no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from conftest import PG_HELP, PG_URL, _pg_admin

SIZES = (1000, 3000)
RATIOS = {"move_over_copy", "move_over_dlt", "incremental_over_full"}
DOMAIN_TARGETS = {
    "move_over_copy_min",
    "move_over_dlt_min",
    "rows_per_second_5m_over_1m_min",
    "memory_growth_max",
    "checkpoint_seconds_max",
    "incremental_over_full_max",
}
NO_CHANGES = {"inserted": 0, "updated": 0, "quarantined": 0, "released": 0, "held": 0}


def expected_updates(domain: str, rows: int) -> int:
    """The rows the 1 % change (``throughput.CHANGE_SQL``: keys 100, 200, ...) makes the sync
    update, from the generator: every changed review was moved (at these sizes none of them is
    unlinked, a bad rating or an empty body); a changed account was moved unless its key is a
    multiple of 500 (unlinked: a zero balance, or below zero at multiples of 1,000)."""
    changed = rows // 100
    return changed if domain == "reviews" else changed - rows // 500


def test_the_benchmark_runs_and_writes_every_field(tmp_path) -> None:
    if _pg_admin() is None:
        pytest.skip(PG_HELP.format(url=PG_URL))
    prefix = f"poco_bench_ci_{uuid.uuid4().hex[:8]}"
    args = ["--pg-url", PG_URL, "--sizes", ",".join(map(str, SIZES)), "--out", str(tmp_path)]
    command = [sys.executable, "-m", "poco_migration_tools.bench", *args, "--database-prefix", prefix, "--no-rehearsal"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((tmp_path / "results.json").read_text())
    assert {"machine", "config", "results", "dag_parse", "rehearsal", "targets"} <= set(report)
    for domain in ("reviews", "points"):
        assert [size["rows"] for size in report["results"][domain]] == list(SIZES)
        for size in report["results"][domain]:
            for method in ("copy", "dlt", "move"):
                assert size[method]["rows"] == size["rows"], (domain, method)
                assert size[method]["rows_per_second"] > 0, (domain, method)
                assert size[method]["peak_rss_mb"] > 0, (domain, method)
            assert {"extract", "normalize", "load"} <= set(size["dlt"]["steps"])
            assert size["move"]["status"] == "moved"
            assert set(size["move"]["checkpoints"]) == {"extract", "staged", "reconciled"}
            incremental = size["incremental"]
            assert incremental["status"] == "moved"
            assert incremental["changed_rows"] == size["rows"] // 100
            updated = expected_updates(domain, size["rows"])
            assert incremental["changes"] == {**NO_CHANGES, "updated": updated}
            assert set(incremental["checkpoints"]) == {"extract", "staged", "reconciled"}
            assert set(size["ratios"]) == RATIOS
            assert all(value is not None and value > 0 for value in size["ratios"].values())
    assert report["dag_parse"]["import_errors"] == 0
    targets = report["targets"]
    per_domain = {f"{domain}.{target}" for domain in ("reviews", "points") for target in DOMAIN_TARGETS}
    assert set(targets) == per_domain | {"dag_parse_seconds_max"}
    for name, verdict in targets.items():
        assert set(verdict) == {"target", "observed", "at_rows", "met"}, name
    # No size of 1M and above ran: the rows/s ratio between them has nothing to observe.
    assert targets["reviews.rows_per_second_5m_over_1m_min"] == {
        "target": 1.0,
        "observed": None,
        "at_rows": None,
        "met": False,
    }
    assert targets["points.move_over_dlt_min"]["at_rows"] == SIZES[-1]
    assert (tmp_path / "throughput.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
