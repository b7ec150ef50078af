"""The benchmark: ``python -m poco_migration_tools.bench`` (README, "Performance").

Throughput of the moves (full and incremental) against COPY and dlt at each size
(``throughput``), or with ``--scale-out`` the bulk DAG on a real scheduler with one
and two workers (``scale_out``); results in ``bench/results.json`` and its plot. With
``--audit`` the independent audit's rows/s on clean moves (``audit``), in ``bench/audit.json``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from poco_migration.config_files import PROJECT
from poco_migration_tools.bench.audit import run_audit_bench
from poco_migration_tools.bench.scale_out import scale_out, write_scale_out
from poco_migration_tools.bench.throughput import BENCH_DOMAINS, DEFAULT_PG_URL, BenchConfig, run


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m poco_migration_tools.bench", description=__doc__)
    parser.add_argument("--pg-url", default=os.environ.get("POCO_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--sizes", default="100000,1000000,5000000", help="comma-separated source row counts")
    parser.add_argument("--domains", default=",".join(BENCH_DOMAINS))
    parser.add_argument("--out", type=Path, default=PROJECT / "bench", help="where results.json and throughput.png go")
    parser.add_argument("--database-prefix", default="poco_bench")
    parser.add_argument("--no-rehearsal", dest="rehearsal", action="store_false")
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile of each move into --out")
    parser.add_argument(
        "--scale-out",
        metavar="MARKETS",
        help="only the 1-vs-2-worker run of the bulk DAG over these comma-separated markets (e.g. IT,PL,TH,ES,FR,DE)",
    )
    parser.add_argument("--scale-out-seed-scale", type=int, default=2000, help="users seeded for --scale-out")
    parser.add_argument("--audit", action="store_true", help="only the audit's speed at --sizes, into audit.json")
    args = parser.parse_args(argv)
    if args.scale_out:
        result = scale_out(args.pg_url, args.scale_out.split(","), args.scale_out_seed_scale)
        print(f"written to {write_scale_out(result, args.out)}: speed-up {result['speed_up']}")
        return 0
    config = BenchConfig(
        pg_url=args.pg_url,
        sizes=tuple(int(n) for n in args.sizes.split(",")),
        domains=tuple(args.domains.split(",")),
        out_dir=args.out,
        database_prefix=args.database_prefix,
        rehearsal=args.rehearsal,
        profile=args.profile,
    )
    if args.audit:
        audited = run_audit_bench(config)
        print(f"written to {config.out_dir / 'audit.json'}; target met: {audited['met']}")
        return 0
    report = run(config)
    missed = [name for name, verdict in report["targets"].items() if not verdict["met"]]
    print(f"written to {config.out_dir}; targets missed: {', '.join(missed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
