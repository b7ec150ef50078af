"""The benchmark still runs end to end (small sizes, no rehearsal); no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from conftest import PG_HELP, PG_URL, _pg_admin


def test_the_benchmark_runs_and_writes_every_field(tmp_path) -> None:
    if _pg_admin() is None:
        pytest.skip(PG_HELP.format(url=PG_URL))
    prefix = f"poco_bench_ci_{uuid.uuid4().hex[:8]}"
    args = ["--pg-url", PG_URL, "--sizes", "1000,3000", "--naive-sample", "200", "--out", str(tmp_path)]
    command = [sys.executable, "-m", "poco_migration_tools.bench", *args, "--database-prefix", prefix, "--no-rehearsal"]
    subprocess.run(command, check=True, capture_output=True)

    report = json.loads((tmp_path / "results.json").read_text())
    assert {"machine", "config", "results", "dag_parse", "rehearsal", "targets"} <= set(report)
    for domain in ("reviews", "points"):
        assert [size["rows"] for size in report["results"][domain]] == [1000, 3000]
        for size in report["results"][domain]:
            for method in ("copy", "pandas_to_sql", "sqlalchemy_per_row", "move"):
                assert size[method]["rows_per_second"] > 0, (domain, method)
            assert size["move"]["status"] == "moved"
            assert set(size["move"]["checkpoints"]) == {"extract", "staged", "reconciled"}
            assert size["move"]["peak_rss_mb"] > 0
            assert set(size["ratios"]) == {"move_over_copy", "move_over_pandas_to_sql", "move_over_sqlalchemy_per_row"}
    assert report["dag_parse"]["import_errors"] == 0
    assert {"met", "observed", "target"} <= set(report["targets"]["reviews.move_over_copy_min"])
    assert (tmp_path / "throughput.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
