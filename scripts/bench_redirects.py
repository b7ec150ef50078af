"""Benchmark of the redirects (not a test): a million POCO URLs mapped from a database
and validated, and the live probe's rate against a local server in another process.

    .venv/bin/python scripts/bench_redirects.py [--urls 1000000] [--probe 3000] [--json var/bench_redirects.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.redirects.build import build_map, page_urls
from poco_migration.redirects.outputs import write_nginx_map
from poco_migration.redirects.probe import probe
from poco_migration.redirects.rules import load_rules
from poco_migration.redirects.server import nginx_map_routes, serve
from poco_migration.redirects.validate import validate


def fill(engine: sa.Engine, urls: int) -> None:
    """``urls`` product pages over 1,000 mapped SKUs, in the IT market."""
    schemas.create_source(engine)
    with engine.begin() as conn:
        conn.execute(
            schemas.poco_products.insert(), [{"sku": f"SKU{i}", "name": "x", "mi_product_id": i} for i in range(1000)]
        )
        for start in range(0, urls, 50_000):
            conn.execute(
                schemas.poco_site_pages.insert(),
                [
                    {
                        "url": f"https://www.po.co/it/product/p{n}",
                        "market": "IT",
                        "kind": "product",
                        "ref": f"SKU{n % 1000}",
                    }
                    for n in range(start, min(start + 50_000, urls))
                ],
            )


def _serve_forever(map_file: str, port: multiprocessing.Value) -> None:
    with serve(nginx_map_routes(Path(map_file))) as base:
        port.value = int(base.rsplit(":", 1)[1])
        while True:
            time.sleep(1)


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--urls", type=int, default=1_000_000)
    args.add_argument("--probe", type=int, default=3_000)
    args.add_argument("--json", default="var/bench_redirects.json")
    opts = args.parse_args()
    rules = load_rules()
    with tempfile.TemporaryDirectory() as tmp:
        source = sa.create_engine(f"sqlite:///{tmp}/source.db")
        target = sa.create_engine(f"sqlite:///{tmp}/target.db")
        schemas.create_target(target)
        fill(source, opts.urls)
        began = time.monotonic()
        mapped = list(build_map(source, target, "IT", rules))
        built = time.monotonic() - began
        problems = validate(mapped, rules, page_urls(source, "IT"))
        validated = time.monotonic() - began - built
        sample = mapped[: opts.probe]
        map_file = Path(tmp) / "sample.map"
        write_nginx_map(sample, map_file)
        port = multiprocessing.Value("i", 0)
        server = multiprocessing.Process(target=_serve_forever, args=(str(map_file), port), daemon=True)
        server.start()
        while not port.value:
            time.sleep(0.05)
        report = probe(f"http://127.0.0.1:{port.value}", sample)
        server.terminate()
    result = {
        "urls": len(mapped),
        "problems": len(problems),
        "build_seconds": round(built, 2),
        "validate_seconds": round(validated, 2),
        "probe_urls": len(report.results),
        "probe_failures": len(report.failures),
        "probe_urls_per_second": round(len(report.results) / report.elapsed),
    }
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
