"""The redirects benchmark still runs (at a small size; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_the_redirects_benchmark_runs_and_finds_no_problem(tmp_path) -> None:
    out = tmp_path / "bench.json"
    script = REPO / "scripts" / "bench_redirects.py"
    args = ["--urls", "2000", "--probe", "300", "--json", str(out)]
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert (result["urls"], result["problems"], result["probe_urls"], result["probe_failures"]) == (2000, 0, 300, 0)
    assert result["probe_urls_per_second"] > 0
